"""HubSpot CRM v3: `after` cursor from `paging.next.after`; X-HubSpot-RateLimit-* headers.

List tools (`contacts`, `companies`, `deals`) are declarative `Resource`s. Search is a
POST with the cursor in the body and two HubSpot rules of its own, handled here:

- at most 10,000 results per query: paging past them is a 400, so the tool stops at the
  ceiling itself and ends the job with `SEARCH_RESULT_CEILING` (the records up to the
  ceiling are delivered) instead of an opaque vendor 400 or a silent stop;
- its own per-second limit (~5 req/s) and no X-HubSpot-RateLimit headers: a 429 with
  `policyName: SECONDLY` is waited out for one second.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from connectors.base import Cursor, Http, Page, RatePolicy, Tool, Vendor
from connectors.errors import ConnectorError, VendorError
from connectors.pagination import BodyCursor, PageRequest
from connectors.resource import Resource
from connectors.specs import error_classifier


class ListArgs(BaseModel):
    """Arguments of the `hubspot.*.list` tools."""

    model_config = ConfigDict(extra="forbid")

    properties: list[str] = Field(
        default_factory=list,
        description="Properties to return; empty: HubSpot's defaults",
        max_length=200,
    )
    limit: int = Field(100, ge=1, le=100, description="Records per vendor page (max 100)")


AFTER = BodyCursor(cursor="paging.next.after", param="after")
QUERY = {"limit": "{{args.limit}}", "properties": "{{args.properties:csv}}", "archived": "false"}


def _list(kind: str, defaults: str) -> Resource:
    return Resource(
        name=f"hubspot.{kind}.list",
        description=(
            f"List HubSpot CRM {kind}, every page fetched for you (CRM v3 "
            f"/crm/v3/objects/{kind}); default properties: {defaults}. Use `fields` to "
            "project only what you need."
        ),
        args=ListArgs,
        method="GET",
        path=f"/crm/v3/objects/{kind}",
        query=QUERY,
        records="results",
        paginate=AFTER,
    )


contacts_list = Resource(
    name="hubspot.contacts.list",
    description=(
        "List HubSpot CRM contacts, every page fetched for you (CRM v3 "
        "/crm/v3/objects/contacts). Use `fields` to project only what you need."
    ),
    args=ListArgs,
    method="GET",
    path="/crm/v3/objects/contacts",
    query=QUERY,
    records="results",
    paginate=AFTER,
)
companies_list = _list("companies", "createdate, domain, hs_lastmodifieddate, hs_object_id, name")
deals_list = _list(
    "deals",
    "amount, closedate, createdate, dealname, dealstage, hs_lastmodifieddate, hs_object_id, "
    "pipeline",
)

# ---- search -------------------------------------------------------------------------------

SEARCH_CEILING = 10_000  # HubSpot returns at most this many results for one search query
SEARCH_MAX_LIMIT = 200
Scalar = str | int | float | bool


class SearchFilter(BaseModel):
    """One HubSpot search filter, in HubSpot's own shape."""

    model_config = ConfigDict(extra="forbid")

    propertyName: str = Field(  # HubSpot's own field name
        min_length=1, max_length=200, description="Property to filter on, e.g. `email`"
    )
    operator: str = Field(
        min_length=1,
        max_length=40,
        description=(
            "EQ, NEQ, LT, LTE, GT, GTE, BETWEEN (with highValue), IN / NOT_IN (with values), "
            "HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN (`*` wildcards), "
            "NOT_CONTAINS_TOKEN. HubSpot itself checks it."
        ),
    )
    value: Scalar | None = Field(
        None, description="Value to compare; dates as epoch milliseconds or ISO-8601"
    )
    highValue: Scalar | None = Field(  # HubSpot's own field name
        None, description="Upper bound for BETWEEN"
    )
    values: list[Scalar] | None = Field(None, max_length=100, description="Values for IN / NOT_IN")


class FilterGroup(BaseModel):
    """Filters ANDed together; groups are ORed."""

    model_config = ConfigDict(extra="forbid")

    filters: list[SearchFilter] = Field(min_length=1, max_length=6)


class SearchSort(BaseModel):
    model_config = ConfigDict(extra="forbid")

    propertyName: str = Field(min_length=1, max_length=200)
    direction: Literal["ASCENDING", "DESCENDING"] = "ASCENDING"


class SearchArgs(BaseModel):
    """Arguments of `hubspot.contacts.search`."""

    model_config = ConfigDict(extra="forbid")

    filter_groups: list[FilterGroup] = Field(
        default_factory=list,
        max_length=5,
        description=(
            'HubSpot filterGroups, e.g. [{"filters": [{"propertyName": "email", '
            '"operator": "CONTAINS_TOKEN", "value": "*@acme.example"}]}]; empty: every '
            "contact. Filters in a group are ANDed, groups ORed."
        ),
    )
    properties: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="Properties to return; empty: HubSpot's defaults",
    )
    sorts: list[SearchSort] = Field(
        default_factory=list,
        max_length=1,
        description="At most one sort; default: creation order (oldest first)",
    )
    limit: int = Field(
        100, ge=1, le=SEARCH_MAX_LIMIT, description="Records per vendor page (max 200)"
    )


SEARCH_PATH = "/crm/v3/objects/contacts/search"
SEARCH_AFTER = BodyCursor(cursor="paging.next.after", param="after", in_body=True)


def _search_body(args: SearchArgs) -> dict[str, Any]:
    body: dict[str, Any] = {
        "filterGroups": [g.model_dump(mode="json", exclude_none=True) for g in args.filter_groups],
        "limit": args.limit,
    }
    if args.sorts:
        body["sorts"] = [s.model_dump(mode="json") for s in args.sorts]
    if args.properties:
        body["properties"] = list(args.properties)
    return body


def _ceiling_error(total: Any) -> ConnectorError:
    matched = f"{total:,}" if isinstance(total, int) else "more than 10,000"
    return ConnectorError(
        "SEARCH_RESULT_CEILING",
        f"HubSpot search returns at most {SEARCH_CEILING:,} results per query and this one "
        f"matched {matched}; the first {SEARCH_CEILING:,} were delivered, the rest cannot be "
        "paged to. Narrow the filters (e.g. a createdate range per call) or use "
        "hubspot.contacts.list to read every contact.",
    )


def _offset(after: Any) -> int | None:
    try:
        return int(str(after))
    except ValueError:
        return None


def search_contacts(http: Http, args: SearchArgs, cursor: Cursor | None) -> Page:
    """One search page. The cursor is HubSpot's `after` string, or, once the next page would
    start at the 10,000-result ceiling, a marker carrying `total` that ends the job."""
    if isinstance(cursor, dict):  # the ceiling marker: the previous page was the last one
        raise _ceiling_error(cursor.get("total"))
    offset = _offset(cursor) if cursor is not None else 0
    if offset is not None and offset >= SEARCH_CEILING:
        raise _ceiling_error(None)
    req = SEARCH_AFTER.apply(PageRequest("POST", SEARCH_PATH, json=_search_body(args)), cursor)
    resp = http.request(req.method, req.path, json=req.json)
    doc = resp.json() if resp.content else {}
    records = list(doc.get("results") or [])
    nxt = SEARCH_AFTER.next(resp, doc, records)
    total = doc.get("total")
    after = _offset(nxt) if nxt is not None else None
    if after is not None and after >= SEARCH_CEILING:
        # HubSpot still offers `after: "10000"`, but asking for it is a 400: end here, loudly.
        return Page(records, {"ceiling": SEARCH_CEILING, "after": str(nxt), "total": total})
    return Page(records, nxt)


contacts_search = Tool(
    name="hubspot.contacts.search",
    description=(
        "Search HubSpot CRM contacts with filters and sorts (CRM v3 POST "
        "/crm/v3/objects/contacts/search), every page fetched for you. HubSpot returns at "
        "most 10,000 results per query: a query matching more ends with error "
        "SEARCH_RESULT_CEILING after the first 10,000 (narrow the filters, or use "
        "hubspot.contacts.list for everything). Search has its own limit of about 5 "
        "requests per second."
    ),
    args=SearchArgs,
    fetch=search_contacts,
)

# ---- CRM export (async): start, poll, download the file ---------------------------------------

EXPORTS = "/crm/v3/exports/export/async"
EXPORT_POLL_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # then every 30 s


class ExportArgs(BaseModel):
    """Arguments of `hubspot.contacts.export`."""

    model_config = ConfigDict(extra="forbid")

    properties: list[str] = Field(
        default_factory=lambda: ["email", "firstname", "lastname"],
        min_length=1,
        max_length=200,
        description="Contact properties to export (hs_object_id is always added)",
    )


def export_contacts(http: Http, args: ExportArgs, cursor: Cursor | None) -> Page:
    """Start the export, poll it (waiting_vendor), then download and parse its CSV."""
    if cursor is None:
        props = ["hs_object_id", *[p for p in args.properties if p != "hs_object_id"]]
        body = {
            "exportType": "VIEW",
            "format": "CSV",
            "exportName": "toolqueue export",
            "objectType": "CONTACT",
            "objectProperties": props,
            "language": "EN",
        }
        started = orjson.loads(http.request("POST", EXPORTS, json=body).content)
        return Page([], {"export": started["id"], "polls": 0}, EXPORT_POLL_S[0], "export started")
    resp = http.request("GET", f"{EXPORTS}/tasks/{cursor['export']}/status")
    task = orjson.loads(resp.content)
    status = task.get("status")
    if status == "CANCELED":
        reasons = [str(e.get("message")) for e in task.get("errors") or [] if isinstance(e, dict)]
        why = "; ".join(r for r in reasons if r) or "no reason given"
        raise VendorError("export_canceled", f"HubSpot canceled the export: {why}")
    if status != "COMPLETE":
        polls = cursor["polls"] + 1
        wait = EXPORT_POLL_S[min(polls, len(EXPORT_POLL_S) - 1)]
        return Page([], {**cursor, "polls": polls}, wait, f"HubSpot export: {status}")
    text = http.download(str(task["result"])).decode("utf-8-sig")
    return Page(list(csv.DictReader(io.StringIO(text))), None)


contacts_export = Tool(
    name="hubspot.contacts.export",
    description=(
        "Export every HubSpot contact through the CRM exports API: HubSpot builds the file "
        "asynchronously (the job waits in `waiting_vendor`, polled on a backoff schedule), then "
        "the CSV is downloaded for you. Records are flat objects of the requested properties "
        "as strings, plus hs_object_id. Prefer it over hubspot.contacts.list for whole-portal "
        'exports; use `delivery: "blocks"` to receive them all.'
    ),
    args=ExportArgs,
    fetch=export_contacts,
    record_id=lambda r: str(r.get("hs_object_id", "?")),
)

VENDOR = Vendor(
    name="hubspot",
    base_url="https://api.hubapi.com",
    token_url="/oauth/v1/token",
    # HubSpot errors carry `category` and `message`; 401/429/5xx are handled generically.
    classify=error_classifier("category || errorType", "message"),
    rate_limit="hubspot",
    # 100 per 10 s rolling (OAuth apps); responses state the portal's real max and interval
    budget=RatePolicy(100, 10.0),
    tools=(
        contacts_list.tool(),
        companies_list.tool(),
        deals_list.tool(),
        contacts_search,
        contacts_export,
    ),
)
