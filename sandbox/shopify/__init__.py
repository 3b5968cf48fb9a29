"""Shopify Admin double: REST customers/orders, a GraphQL subset, two buckets, bulk
operations with their webhook, OAuth refresh.

URL layout, as on a real shop (``https://{shop}.myshopify.com``), under the ``/shopify`` prefix:

- ``GET  /admin/api/{version}/customers.json`` and ``/orders.json`` (REST, ``link`` paging:
  :mod:`.rest`);
- ``POST /admin/api/{version}/graphql.json`` (GraphQL: ``customers``/``orders`` connections,
  :mod:`.connection`; bulk operations, :mod:`.bulk_api`; the ``customerUpdate`` mutation,
  :mod:`.customers`, with its effects ledger at ``/shopify/_sandbox/effects``);
- ``POST /admin/oauth/access_token`` (refresh grant; expiring offline tokens, rotating:
  :mod:`.oauth`).

``{version}`` must look like ``2025-10`` (or ``unstable``), else 404; versions older than the
oldest supported one fall forward to it, as Shopify does (``X-Shopify-API-Version`` says which).

Rate limits, both derived from the live config so tests can shrink them: the REST leaky
bucket (:mod:`.bucket`) and the GraphQL cost bucket (:mod:`.cost`).

Bulk operations: ``bulkOperationRunQuery``, ``currentBulkOperation`` and ``node(id:)`` on the
GraphQL endpoint, a signed JSONL file under ``/shopify/_files/bulk/``, the
``bulk_operations/finish`` webhook (shop ``SHOP_DOMAIN``, :mod:`.webhooks`), and sandbox-only
controls ``/shopify/_sandbox/bulk`` and ``/shopify/_sandbox/webhooks``. Records are a pure
function of their index (:mod:`.data`); GraphQL is parsed by :mod:`sandbox.graphql`.
"""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.graphql import tokenize
from sandbox.shopify import bulk_api, customers, graphql, oauth, rest, webhooks
from sandbox.shopify.connection import encode_cursor
from sandbox.shopify.data import CUSTOMER_BASE, ORDER_BASE, customer, customer_node, line_items
from sandbox.shopify.http import NAME, UNAUTHORIZED
from sandbox.shopify.webhooks import SHOP_DOMAIN

ROTATES_REFRESH_TOKENS = True  # expiring offline tokens: every refresh issues a new pair

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])
for _part in (rest, graphql, bulk_api, webhooks, oauth, customers):
    router.include_router(_part.router)

# The names the tests imported from the single-file module, by their old spelling.
_encode_cursor = encode_cursor
_line_items = line_items

__all__ = [
    "CUSTOMER_BASE",
    "NAME",
    "ORDER_BASE",
    "ROTATES_REFRESH_TOKENS",
    "SHOP_DOMAIN",
    "UNAUTHORIZED",
    "customer",
    "customer_node",
    "encode_cursor",
    "line_items",
    "router",
    "tokenize",
]
