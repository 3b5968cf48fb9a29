"""The GraphQL endpoint: connection pages (:mod:`sandbox.shopify.connection`), bulk
operations (:mod:`sandbox.shopify.bulk_api`), the ``customerUpdate`` mutation and the
``customer(id:)`` query (:mod:`sandbox.shopify.customers`) on one URL.

A page requests ``first + 2`` points (``first`` capped at 250) and is charged ``nodes
returned + 2``. Syntax errors, unknown fields, undeclared variables, bad cursors and a
missing ``first`` answer HTTP 200 with graphql-ruby shaped errors.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from sandbox.common import sandbox_state
from sandbox.graphql import Document, GraphQLError, parse
from sandbox.shopify import cost
from sandbox.shopify.bulk_api import bulk_request
from sandbox.shopify.connection import connection, connection_field, window
from sandbox.shopify.customers import customer_read, customer_update
from sandbox.shopify.data import COLLECTIONS
from sandbox.shopify.http import gate, json_response

MAX_FIRST = 250
MISSING_QUERY = {"errors": {"query": "Required parameter missing or invalid"}}

router = APIRouter()


async def _read_body(request: Request) -> tuple[Any, Any]:
    """(query text, variables) from a JSON body, or from an ``application/graphql`` one."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/graphql"):
        return raw.decode("utf-8", "replace"), {}
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return None, {}
    return body.get("query"), body.get("variables") or {}


def _page(request: Request, doc: Document, variables: dict[str, Any]) -> Response:
    """One connection page, charged to the cost bucket."""
    state = sandbox_state(request)
    try:
        conn = connection_field(doc)
        coll = COLLECTIONS[conn.name]
        first, start = window(conn, coll, variables)
    except GraphQLError as exc:
        return cost.errors(exc.body)
    first = min(first, MAX_FIRST)
    requested = float(first + 2)
    refused, available = cost.charge(state, requested)
    if refused is not None:
        return refused
    page, count = connection(state, conn, coll, first, start)
    actual = float(count + 2)
    available = cost.refund(state, requested - actual)
    charged = cost.cost(state, requested, actual, available)
    return json_response({"data": {conn.key: page}, "extensions": {"cost": charged}})


@router.post("/admin/api/{version}/graphql.json")
async def graphql(request: Request, version: str) -> Response:
    denied, _ = await gate(request, version)
    if denied is not None:
        return denied
    text, variables = await _read_body(request)
    if not isinstance(text, str) or not text.strip() or not isinstance(variables, dict):
        return json_response(MISSING_QUERY, 400)
    try:
        doc = parse(text)
    except GraphQLError as exc:
        return cost.errors(exc.body)
    bulk = bulk_request(request, doc, variables)
    if bulk is not None:
        return bulk
    update = await customer_update(request, doc, variables)
    if update is not None:
        return update
    read = customer_read(request, doc, variables)
    return read if read is not None else _page(request, doc, variables)
