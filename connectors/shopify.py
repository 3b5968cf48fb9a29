"""Shopify Admin API: REST customers/orders (``link`` header paging), GraphQL connections and
GraphQL bulk operations (``shopify.bulk_query``: run, poll or await the webhook, download JSONL).

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

# ---- GraphQL bulk operations: run, poll (waiting_vendor), download the JSONL ---------------

BULK_POLL_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)  # then every 60 s
BULK_MAX_QUERY_BYTES = 50_000
_BULK_FIELDS = "id status errorCode objectCount url partialDataUrl createdAt completedAt query"
BULK_RUN = (
    "mutation($query: String!) { bulkOperationRunQuery(query: $query) "
    "{ bulkOperation { id status } userErrors { field message } } }"
)
BULK_CURRENT = f"{{ currentBulkOperation(type: QUERY) {{ {_BULK_FIELDS} }} }}"
BULK_NODE = f"query($id: ID!) {{ node(id: $id) {{ ... on BulkOperation {{ {_BULK_FIELDS} }} }} }}"
_IN_PROGRESS = re.compile(r"already in progress: (gid://shopify/BulkOperation/\d+)")
_BULK_WAITING = ("CREATED", "RUNNING", "CANCELING")


class BulkQueryArgs(BaseModel):
    """Arguments of ``shopify.bulk_query``."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(
        min_length=1,
        max_length=BULK_MAX_QUERY_BYTES,
        description="The bulk query: one connection, no paging arguments (no `first`/`after`, "
        "no `pageInfo`), e.g. `{ customers { edges { node { id email } } } }`. A nested "
        "connection (e.g. an order's `lineItems { edges { node { id title } } }`) needs the "
        "parent to select `id`; its nodes arrive under the parent record's `__children`.",
    )

    @field_validator("query")
    @classmethod
    def _shape(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the query is empty")
        if len(value.encode()) > BULK_MAX_QUERY_BYTES:
            raise ValueError(f"the query is over {BULK_MAX_QUERY_BYTES:,} bytes")
        if "{" not in value:
            raise ValueError("the query has no selection set: e.g. `{ customers { edges { node "
                             "{ id } } } }`")  # fmt: skip
        return value


def _gql(http: Http, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"query": query}
    if variables:
        body["variables"] = variables
    resp = http.request("POST", api_path(http, "graphql.json"), json=body)
    doc = orjson.loads(resp.content) if resp.content else {}
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise ConnectorError("bad_response", "Shopify's GraphQL answer has no `data`")
    return data


def _same_query(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _bulk_start(http: Http, args: BulkQueryArgs) -> Page:
    data = _gql(http, BULK_RUN, {"query": args.query})
    run = data.get("bulkOperationRunQuery") or {}
    errors = [e for e in run.get("userErrors") or [] if isinstance(e, dict)]
    op = run.get("bulkOperation") or {}
    if errors or not op.get("id"):
        message = "; ".join(str(e.get("message") or e) for e in errors) or "no operation"
        busy = _IN_PROGRESS.search(message)
        if busy:
            # Ours if it runs this very query: our earlier attempt whose answer was lost
            # (a retried step) or an identical job; either way its file is what we want.
            current = _gql(http, BULK_CURRENT).get("currentBulkOperation") or {}
            if current.get("id") == busy.group(1) and _same_query(
                str(current.get("query") or ""), args.query
            ):
                gid = str(current["id"])
                return _bulk_waiting(gid, 0, "joined the bulk operation already running it")
            message += (
                " Shopify runs one bulk query per app and shop at a time: retry once it "
                "has finished."
            )
        raise VendorError("bulk_query_rejected", message[:1000])
    return _bulk_waiting(str(op["id"]), 0, "bulk operation created")


def _bulk_waiting(gid: str, polls: int, note: str) -> Page:
    wait = BULK_POLL_S[min(polls, len(BULK_POLL_S) - 1)]
    return Page([], {"op": gid, "polls": polls}, wait_s=wait, note=note, await_ref=gid)


def _bulk_status(http: Http, gid: str) -> dict[str, Any]:
    current = _gql(http, BULK_CURRENT).get("currentBulkOperation")
    if isinstance(current, dict) and current.get("id") == gid:
        return current
    node = _gql(http, BULK_NODE, {"id": gid}).get("node")
    if not isinstance(node, dict) or node.get("id") != gid:
        raise VendorError(
            "bulk_operation_not_found", f"Shopify no longer knows bulk operation {gid}"
        )
    return node


def jsonl_records(raw: bytes) -> list[Record]:
    """Shopify's bulk JSONL as records: each line without ``__parentId`` is a record; a line
    with one (a nested connection's node, written after its parent) joins that parent's
    ``__children`` without the key. A child whose parent is not in the file stays a record
    of its own with its ``__parentId``; a cut-off last line (partial data) is dropped."""
    records: list[Record] = []
    by_id: dict[str, Record] = {}
    lines = raw.splitlines()
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            if n == len(lines) - 1:
                break
            raise ConnectorError(
                "bad_jsonl", f"line {n + 1} of the bulk file is not JSON"
            ) from None
        if not isinstance(doc, dict):
            continue
        parent = by_id.get(str(doc.get("__parentId"))) if "__parentId" in doc else None
        if parent is not None:
            child = {k: v for k, v in doc.items() if k != "__parentId"}
            parent.setdefault("__children", []).append(child)
            continue
        records.append(doc)
        if doc.get("id") is not None:
            by_id[str(doc["id"])] = doc
    return records


def bulk_fetch(http: Http, args: BulkQueryArgs, cursor: Cursor | None) -> Page:
    """A state machine over the cursor: run the query → poll it (waiting_vendor, resumed early
    by the ``bulk_operations/finish`` webhook naming ``await_ref``) → download the JSONL."""
    if cursor is None:
        return _bulk_start(http, args)
    gid = str(cursor["op"])
    if cursor.get("failed"):  # partial data delivered by the previous page: now the failure
        raise VendorError("bulk_operation_failed", str(cursor["failed"]))
    op = _bulk_status(http, gid)
    status = str(op.get("status") or "")
    code = op.get("errorCode") or "no errorCode"
    if status in _BULK_WAITING:
        return _bulk_waiting(
            gid, int(cursor.get("polls", 0)) + 1, f"Shopify bulk operation: {status}"
        )
    if status == "COMPLETED":
        url = op.get("url")
        return Page(jsonl_records(http.download(str(url))) if url else [], None)
    if status == "FAILED" and op.get("partialDataUrl"):
        records = jsonl_records(http.download(str(op["partialDataUrl"])))
        why = (
            f"Shopify's bulk operation {gid} failed ({code}) after {len(records):,} records: "
            "those (its partialDataUrl) were delivered, the rest are missing. Run the query "
            "again, narrowed (e.g. a `query:` filter on created_at) if it keeps failing."
        )
        return Page(records, {"op": gid, "failed": why})
    if status in ("FAILED", "CANCELED", "EXPIRED"):
        what = {"FAILED": "failed", "CANCELED": "canceled", "EXPIRED": "expired"}[status]
        hint = {
            "FAILED": "; no partial data. Run the query again",
            "CANCELED": " (someone canceled it)",
            "EXPIRED": " (its results are kept 7 days; run the query again)",
        }[status]
        raise VendorError(
            f"bulk_operation_{what}", f"Shopify's bulk operation {gid} {what}: {code}{hint}"
        )
    raise VendorError(
        "bulk_operation_failed", f"bulk operation {gid} has unknown status {status!r}"
    )


bulk_query = Tool(
    name="shopify.bulk_query",
    description=(
        "Run a Shopify Admin GraphQL bulk query (bulkOperationRunQuery) and return every node "
        "it selects: Shopify builds a JSONL file in the background (the job waits in "
        "`waiting_vendor`, polled on a backoff schedule or resumed by Shopify's "
        "bulk_operations/finish webhook), then the file is downloaded for you. Prefer it over "
        "shopify.graphql.query for whole collections (thousands of records and more): no "
        "paging, no query-cost throttling. Use shopify.graphql.query for small or filtered "
        "reads that should start at once. One bulk query runs per shop at a time: another "
        "job's running one makes this fail with bulk_query_rejected. Records are the selected "
        'node fields (`id` is the gid); a nested connection\'s nodes are in `"__children"`. '
        'Use `delivery: "blocks"` to receive them all.'
    ),
    args=BulkQueryArgs,
    fetch=bulk_fetch,
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
    tools=(customers_list.tool(), orders_list.tool(), graphql_query, bulk_query),
)
