"""Shopify Admin API: REST customers/orders (``link`` header paging) and GraphQL connections.

Where the account points (``base_url``), both forms work:

- the shop root, ``https://{shop}.myshopify.com`` (recommended): API paths get the pinned
  version prefix ``/admin/api/2025-10``, and the vendor's relative ``token_url``
  ``/admin/oauth/access_token`` lands on the shop's real token endpoint;
- the admin API root, ``https://{shop}.myshopify.com/admin/api/{version}``: paths are used
  as is under that version; give the account an absolute ``token_url``
  (``https://{shop}.myshopify.com/admin/oauth/access_token``), since a relative one would be
  appended to the API root.

Auth is the ``X-Shopify-Access-Token`` header. Rate limits are normalized by
``connectors.ratelimit`` (REST ``X-Shopify-Shop-Api-Call-Limit`` + 429 ``Retry-After``;
GraphQL ``extensions.cost`` with ``THROTTLED`` in an HTTP 200 or a 429), so ``classify``
lets those through and raises every other refusal, GraphQL ``errors`` on a 200 included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import orjson
import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import Cursor, Http, Page, Record, Tool, Vendor
from connectors.errors import ConnectorError, VendorError
from connectors.pagination import GraphQLPageInfo, LinkHeader, PageRequest, search
from connectors.resource import Resource

API_VERSION = "2025-10"
_API_ROOT = re.compile(r"/admin/api/[^/]+$")


def api_path(http: Http, path: str) -> str:
    """``path`` (e.g. ``customers.json``) under the account's API root; absolute URLs pass."""
    if path.startswith(("http://", "https://")):
        return path
    path = path.lstrip("/")
    if _API_ROOT.search(http.base_url.rstrip("/")):
        return f"/{path}"
    return f"/admin/api/{API_VERSION}/{path}"


# ---- errors -------------------------------------------------------------------------------


def _rest_message(doc: Any) -> str:
    """Shopify REST refusals: ``{"errors": "text"}``, ``{"errors": {"field": ["msg"]}}`` or,
    for page_info misuse, ``{"status": "status cannot be passed when page_info is present…"}``."""
    if not isinstance(doc, dict):
        return ""
    errors = doc.get("errors", doc)
    if isinstance(errors, str):
        return errors
    if isinstance(errors, dict):
        parts = []
        for key, value in errors.items():
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            parts.append(text if text.startswith(str(key)) else f"{key}: {text}")
        return "; ".join(parts)
    if isinstance(errors, list):
        return "; ".join(str(e) for e in errors)
    return ""


def _graphql_errors(doc: Any) -> list[dict[str, Any]]:
    errors = doc.get("errors") if isinstance(doc, dict) else None
    if not isinstance(errors, list):
        return []
    return [e if isinstance(e, dict) else {"message": str(e)} for e in errors]


def classify(resp: requests.Response) -> None:
    """Raise Shopify's refusals; 401, 429, 5xx and THROTTLED are left to the generic path.

    A 2xx body is read only for GraphQL (errors ride in a 200 there); REST pages are not
    parsed here a second time.
    """
    status = resp.status_code
    if status == 401 or status == 429 or status >= 500:
        return
    if status < 300 and not urlsplit(resp.url or "").path.endswith("/graphql.json"):
        return
    try:
        doc = orjson.loads(resp.content) if resp.content else None
    except orjson.JSONDecodeError:
        doc = None
    errors = _graphql_errors(doc)
    if errors and status < 300:
        if any(search("extensions.code", e) == "THROTTLED" for e in errors):
            return  # connectors.ratelimit turns it into a wait
        code = search("extensions.code", errors[0]) or "graphql_error"
        message = "; ".join(str(e.get("message") or e) for e in errors)
        raise VendorError(str(code), message[:1000], status=status)
    if status >= 400:
        message = _rest_message(doc) or resp.text[:500] or resp.reason
        raise VendorError(f"http_{status}", message, status=status)


# ---- REST ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageInfo(LinkHeader):
    """Shopify's ``link`` paging: the cursor is the ``page_info`` of ``rel="next"``.

    A request carrying ``page_info`` may only add ``limit`` and ``fields`` (Shopify answers
    400 to anything else), so later pages drop the first page's filters; the page_info
    carries them. Following only the opaque token keeps every request on the account's own
    host and API root, whatever host the link names.
    """

    keep: tuple[str, ...] = ("limit", "fields")

    def apply(self, req: PageRequest, cursor: Cursor | None) -> PageRequest:
        if cursor is None:
            return req
        params = {k: v for k, v in req.params.items() if k in self.keep}
        return replace(req, params={**params, "page_info": cursor})

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        url = super().next(resp, doc, records)
        if url is None:
            return None
        values = parse_qs(urlsplit(url).query).get("page_info")
        if not values or not values[0]:
            raise ConnectorError("bad_link", f"Shopify's rel=next link has no page_info: {url}")
        return values[0]


@dataclass(frozen=True)
class ShopResource(Resource):
    """A REST resource whose path is placed under the account's admin API root."""

    def fetch(self, http: Http, args: BaseModel, cursor: Cursor | None) -> Page:
        req = self.paginate.apply(self.request(args), cursor)
        resp = http.request(
            req.method, api_path(http, req.path), params=req.params or None, json=req.json
        )
        doc = orjson.loads(resp.content) if resp.content else {}
        records = search(self.records, doc) or []
        return Page(list(records), self.paginate.next(resp, doc, records))


class RestListArgs(BaseModel):
    """Arguments shared by the REST ``shopify.*.list`` tools."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(250, ge=1, le=250, description="Records per Shopify page (max 250)")
    fields: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Shopify's `fields`: only these record keys (e.g. ['id','email']); "
        "empty: every field",
    )
    created_at_min: str | None = Field(
        None,
        max_length=64,
        description="Only records created at or after this ISO 8601 time "
        "(e.g. 2024-01-31T00:00:00-05:00)",
    )
    created_at_max: str | None = Field(
        None, max_length=64, description="Only records created at or before this ISO 8601 time"
    )


class OrdersListArgs(RestListArgs):
    status: Literal["any", "open", "closed", "cancelled"] = Field(
        "any",
        description="Order status filter; `any` (default here) includes closed and "
        "cancelled orders (Shopify's own default is `open`)",
    )


_REST_QUERY = {
    "limit": "{{args.limit}}",
    "fields": "{{args.fields:csv}}",
    "created_at_min": "{{args.created_at_min}}",
    "created_at_max": "{{args.created_at_max}}",
}

customers_list = ShopResource(
    name="shopify.customers.list",
    description=(
        "List a Shopify shop's customers (Admin REST GET /customers.json), every page fetched "
        "for you, oldest id first. Use `fields` (job) to project what you need."
    ),
    args=RestListArgs,
    path="customers.json",
    query=_REST_QUERY,
    records="customers",
    paginate=PageInfo(),
)

orders_list = ShopResource(
    name="shopify.orders.list",
    description=(
        "List a Shopify shop's orders (Admin REST GET /orders.json?status=any), every page "
        "fetched for you, oldest id first. Use `fields` (job) to project what you need."
    ),
    args=OrdersListArgs,
    path="orders.json",
    query={**_REST_QUERY, "status": "{{args.status}}"},
    records="orders",
    paginate=PageInfo(),
)

# ---- GraphQL ------------------------------------------------------------------------------

_CONNECTION = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class GraphQLArgs(BaseModel):
    """Arguments of ``shopify.graphql.query``."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1,
        max_length=50_000,
        description="A GraphQL query over one connection, taking the page cursor as `$after` "
        "and selecting `pageInfo { hasNextPage endCursor }`, e.g. `query($after: String) "
        "{ customers(first: 250, after: $after) { nodes { id email } pageInfo { hasNextPage "
        "endCursor } } }`. The page size is the query's own `first:` (max 250).",
    )
    variables: dict[str, Any] = Field(
        default_factory=dict, description="Other variables of the query (`after` is set per page)"
    )
    connection: str = Field(
        min_length=1,
        max_length=200,
        description="Dotted path of the connection inside `data`, e.g. `customers` or "
        "`collection.products`; its `nodes` (or `edges[].node`) are the records",
    )

    @field_validator("query")
    @classmethod
    def _pages(cls, value: str) -> str:
        missing = [
            what
            for what, pattern in (
                ("a `$after` variable", r"\$after\b"),
                ("`pageInfo`", r"\bpageInfo\b"),
                ("`hasNextPage`", r"\bhasNextPage\b"),
                ("`endCursor`", r"\bendCursor\b"),
            )
            if not re.search(pattern, value)
        ]
        if missing:
            raise ValueError(
                "the query must page with " + ", ".join(missing) + " (see this tool's example)"
            )
        return value

    @field_validator("connection")
    @classmethod
    def _path(cls, value: str) -> str:
        if not _CONNECTION.match(value):
            raise ValueError("connection must be a dotted path of field names, e.g. `customers`")
        return value


def graphql_fetch(http: Http, args: GraphQLArgs, cursor: Cursor | None) -> Page:
    where = f"data.{args.connection}"
    dialect = GraphQLPageInfo(page_info=f"{where}.pageInfo", variable="after")
    body = {"query": args.query, "variables": dict(args.variables)}
    req = dialect.apply(PageRequest("POST", "graphql.json", json=body), cursor)
    resp = http.request("POST", api_path(http, req.path), json=req.json)
    doc = orjson.loads(resp.content) if resp.content else {}
    conn = search(where, doc)
    if not isinstance(conn, dict):
        keys = sorted(doc.get("data") or {}) if isinstance(doc, dict) else []
        raise ConnectorError(
            "connection_not_found",
            f"the response has no connection at `{where}` (data has {keys}); "
            "`connection` is the path inside `data`",
        )
    if isinstance(conn.get("nodes"), list):
        records = conn["nodes"]
    elif isinstance(conn.get("edges"), list):
        records = [e.get("node") for e in conn["edges"] if isinstance(e, dict)]
    else:
        raise ConnectorError(
            "connection_not_found", f"`{where}` has neither `nodes` nor `edges`: select one"
        )
    if not isinstance(conn.get("pageInfo"), dict):
        raise ConnectorError("invalid_query", f"`{where}` has no `pageInfo`: select it")
    records = [r for r in records if isinstance(r, dict)]
    return Page(records, dialect.next(resp, doc, records))


graphql_query = Tool(
    name="shopify.graphql.query",
    description=(
        "Run a paginated Shopify Admin GraphQL query over one connection (POST /graphql.json) "
        "and collect the connection's nodes across every page; the query's cost-based "
        "throttling is waited out for you."
    ),
    args=GraphQLArgs,
    fetch=graphql_fetch,
)

VENDOR = Vendor(
    name="shopify",
    # Accounts always name their own shop; this is the shape of the value.
    base_url="https://{shop}.myshopify.com",
    token_url="/admin/oauth/access_token",
    classify=classify,
    auth_header="X-Shopify-Access-Token",
    auth_format="{token}",
    rate_limit="shopify",
    limits_in_body=True,  # GraphQL answers THROTTLED inside an HTTP 200
    tools=(customers_list.tool(), orders_list.tool(), graphql_query),
)
