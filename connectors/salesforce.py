"""Salesforce REST: SOQL query paged by the relative `nextRecordsUrl` until `done`.

The batch size travels in the `Sforce-Query-Options` header (which a declarative resource
cannot set), so the tool is a small `fetch` over the shared `NextUrl` dialect. Rate-limit
refusals (403 REQUEST_LIMIT_EXCEEDED, no timing) and 401 INVALID_SESSION_ID are left to the
generic layer; every other error array becomes VendorError(errorCode, message).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from connectors import ratelimit, salesforce_writes
from connectors.base import Cursor, Http, Page, Record, Tool, Vendor
from connectors.errors import VendorError
from connectors.pagination import NextUrl, PageRequest

API_VERSION = "v62.0"
QUERY_PATH = f"/services/data/{API_VERSION}/query"


class QueryArgs(BaseModel):
    """Arguments of `salesforce.query`."""

    model_config = ConfigDict(extra="forbid")

    soql: str = Field(
        min_length=1,
        max_length=100_000,
        description=(
            'The SOQL query, e.g. "SELECT Id, FirstName, LastName, Email, Account.Name FROM '
            'Contact WHERE CreatedDate = LAST_N_DAYS:30". Select only the fields you need.'
        ),
    )
    batch_size: int | None = Field(
        None,
        ge=200,
        le=2000,
        description=(
            "Records per vendor page (Sforce-Query-Options batchSize, 200-2000; Salesforce "
            "treats it as a hint). Default: Salesforce's 2000."
        ),
    )


PAGES = NextUrl(url="nextRecordsUrl", done="done")


def fetch(http: Http, args: QueryArgs, cursor: Cursor | None) -> Page:
    """One batch: the query itself, or the `nextRecordsUrl` the previous batch named."""
    headers = {"Sforce-Query-Options": f"batchSize={args.batch_size}"} if args.batch_size else {}
    req = PAGES.apply(PageRequest("GET", QUERY_PATH, {"q": args.soql}), cursor)
    resp = http.request(req.method, req.path, params=req.params or None, headers=headers)
    doc = orjson.loads(resp.content) if resp.content else {}
    records = doc.get("records") or []
    return Page(list(records), PAGES.next(resp, doc, records))


def record_id(record: Record) -> str:
    """`Id` when selected; otherwise the id at the end of `attributes.url`."""
    if record.get("Id"):
        return str(record["Id"])
    url = (record.get("attributes") or {}).get("url") or ""
    return url.rsplit("/", 1)[-1] or "?"


def classify(resp: Any) -> None:
    """Salesforce errors are arrays of `{"message", "errorCode"}`; keep its code and text."""
    status = resp.status_code
    if status < 400 or status == 401 or status >= 500:
        return
    if ratelimit.parse(resp.headers, status, resp.content).limited:
        return  # 403 REQUEST_LIMIT_EXCEEDED: the generic layer defers the job
    try:
        doc = resp.json()
    except ValueError:
        return
    if isinstance(doc, list) and doc and isinstance(doc[0], dict) and doc[0].get("errorCode"):
        raise VendorError(str(doc[0]["errorCode"]), str(doc[0].get("message", "")), status=status)
    if isinstance(doc, dict) and doc.get("error"):  # OAuth-style bodies
        raise VendorError(
            str(doc["error"]), str(doc.get("error_description") or doc["error"]), status=status
        )


query = Tool(
    name="salesforce.query",
    description=(
        "Run a SOQL query against Salesforce (REST /services/data/v62.0/query) and return "
        "every matching record, all batches fetched for you. Records keep Salesforce's shape: "
        "an `attributes` object plus the selected fields, relationship fields nested "
        '(`Account.Name` -> {"Account": {"Name": ...}}). Use `fields` to project only '
        "what you need."
    ),
    args=QueryArgs,
    fetch=fetch,
    record_id=record_id,
)

# ---- Bulk API 2.0 query: create a job, poll it, page its CSV results -------------------------

BULK_PATH = f"/services/data/{API_VERSION}/jobs/query"
BULK_POLL_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # then every 30 s


class BulkQueryArgs(BaseModel):
    """Arguments of `salesforce.bulk_query`."""

    model_config = ConfigDict(extra="forbid")

    soql: str = Field(
        min_length=1,
        max_length=100_000,
        description='The SOQL query, e.g. "SELECT Id, Email FROM Contact". No subqueries.',
    )
    max_records: int = Field(
        10_000,
        ge=1,
        le=50_000,
        description="Rows per downloaded results page (Bulk API `maxRecords`).",
    )


def bulk_fetch(http: Http, args: BulkQueryArgs, cursor: Cursor | None) -> Page:
    """A small state machine over the cursor: create → poll (waiting_vendor) → results."""
    if cursor is None:
        resp = http.request("POST", BULK_PATH, json={"operation": "query", "query": args.soql})
        job = orjson.loads(resp.content)
        return Page([], {"job": job["id"], "polls": 0}, wait_s=BULK_POLL_S[0], note="job created")
    if "locator" not in cursor:
        resp = http.request("GET", f"{BULK_PATH}/{cursor['job']}")
        info = orjson.loads(resp.content)
        state = info.get("state")
        if state in ("Failed", "Aborted"):
            raise VendorError(
                f"bulk_job_{state.lower()}",
                str(info.get("errorMessage") or f"the Bulk API job was {state.lower()}"),
            )
        if state != "JobComplete":
            polls = cursor["polls"] + 1
            wait = BULK_POLL_S[min(polls, len(BULK_POLL_S) - 1)]
            return Page([], {**cursor, "polls": polls}, wait_s=wait, note=f"Bulk API: {state}")
        cursor = {"job": cursor["job"], "locator": None}
    params: dict[str, Any] = {"maxRecords": args.max_records}
    if cursor["locator"]:
        params["locator"] = cursor["locator"]
    resp = http.request("GET", f"{BULK_PATH}/{cursor['job']}/results", params=params)
    locator = resp.headers.get("Sforce-Locator", "null")
    records = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8"))))
    nxt = None if locator in ("null", "") else {"job": cursor["job"], "locator": locator}
    return Page(records, nxt)


bulk_query = Tool(
    name="salesforce.bulk_query",
    description=(
        "Run a large SOQL query through Salesforce's Bulk API 2.0: the query runs "
        "asynchronously at Salesforce (the job waits in `waiting_vendor`, polled on a backoff "
        "schedule), then every CSV results page is downloaded for you. Records are flat "
        'objects of the selected columns as strings (`"Account.Name"` keys for relationship '
        "fields; empty string for null). Prefer `salesforce.query` for small result sets."
    ),
    args=BulkQueryArgs,
    fetch=bulk_fetch,
    record_id=record_id,
)


VENDOR = Vendor(
    name="salesforce",
    # No shared API host: an account's base_url must be its instance_url (My Domain).
    base_url="https://{my-domain}.my.salesforce.com",
    token_url="/services/oauth2/token",  # served by every instance / My Domain
    classify=classify,
    rate_limit="salesforce",
    tools=(query, bulk_query),
    extra=salesforce_writes.EXTRA,  # bulk_threshold: TOOLQUEUE_SALESFORCE_BULK_THRESHOLD
)
