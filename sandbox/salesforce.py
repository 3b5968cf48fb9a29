"""Salesforce REST double: SOQL query with query locators, Sforce-Limit-Info, OAuth refresh.

A tiny SOQL subset: ``SELECT <fields> FROM Contact|Account [WHERE …] [ORDER BY …]
[LIMIT n] [OFFSET n]`` (WHERE and ORDER BY are parsed loosely and ignored). Pages follow the
real protocol: ``nextRecordsUrl`` is relative (``/services/data/v62.0/query/01g…-200``) and
absent once ``done`` is true; the batch size comes from ``Sforce-Query-Options: batchSize=N``
(200–2000, default 2000) on the first request and is remembered by the locator.

Order of checks mirrors the real edge: latency/fault, auth (a 401 carries no limit header,
the org is unknown), the API request limit (refusals are free), then the query.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import preamble, sandbox_state, token_call
from sandbox.state import RateDecision, TokenError

NAME = "salesforce"
ROTATES_REFRESH_TOKENS = False  # refresh-token rotation is an opt-in Connected App setting

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])

DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000
MAX_OFFSET = 2000
MAX_LOCATORS = 10_000  # open cursors kept per sandbox (real orgs expire them after 15 min)
VERSION = re.compile(r"^v\d{2}\.0$")
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

# ---- deterministic data, generated per index (page k of N costs O(batch)) ----------------

_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_id(prefix: str, n: int) -> str:
    """An 18-character Salesforce id: key prefix, pod ``RO``, the number, case checksum."""
    base = f"{prefix}RO{n:010d}"
    suffix = ""
    for chunk in (base[0:5], base[5:10], base[10:15]):
        suffix += _CHECKSUM[sum(1 << j for j, c in enumerate(chunk) if c.isupper())]
    return base + suffix


def contact_id(i: int) -> str:
    return sf_id("003", i)


def account_id(j: int) -> str:
    return sf_id("001", j)


# fmt: off
FIRST = (
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter",
    "Yvonne",
)
UNICODE_FIRST = ("José", "Zoë", "Łukasz", "李雷", "Дмитрий", "Nguyễn", "𠮷乃", "Renée", "Çağrı")
LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez",
    "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
)
COMPANIES = (
    ("Acme Corp", "acme.example"), ("Globex", "globex.example"),
    ("Initech", "initech.example"), ("Umbrella", "umbrella.example"),
    ("Hooli", "hooli.example"), ("Stark Industries", "stark.example"),
    ("Wayne Enterprises", "wayne.example"), ("Tyrell", "tyrell.example"),
    ("Soylent", "soylent.example"), ("Vandelay Industries", "vandelay.example"),
    ("Cyberdyne", "cyberdyne.example"),
)
INDUSTRIES = (
    "Technology", "Manufacturing", "Finance", "Healthcare", "Retail", "Energy", "Media",
    "Education", None,
)
ACCOUNTS_FOR_CONTACTS = 50  # contacts point at accounts 1..50 whatever the account volume
# fmt: on


def _datetime(ms: int) -> str:
    """Salesforce's dateTime form: ``2024-01-15T10:30:00.000+0000``."""
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def account(j: int) -> dict[str, Any]:
    """Account number ``j`` (1-based), every field; a pure function of ``j``."""
    company, _ = COMPANIES[(j - 1) % len(COMPANIES)]
    name = company if j <= len(COMPANIES) else f"{company} {(j - 1) // len(COMPANIES) + 1}"
    created = j * 3_600_007
    return {
        "Id": account_id(j),
        "Name": name,
        "Industry": INDUSTRIES[j % len(INDUSTRIES)],
        "CreatedDate": _datetime(created),
        "LastModifiedDate": _datetime(created + (j * 104_729) % 2_592_000_000),
    }


def contact(i: int) -> dict[str, Any]:
    """Contact number ``i`` (1-based), every field; every 25th has no account."""
    first = UNICODE_FIRST[(i // 7) % len(UNICODE_FIRST)] if i % 7 == 0 else FIRST[i % len(FIRST)]
    last = LAST[(i * 31) % len(LAST)]
    j = None if i % 25 == 0 else (i * 17) % ACCOUNTS_FOR_CONTACTS + 1
    domain = COMPANIES[((j or 1) - 1) % len(COMPANIES)][1]
    created = i * 1_000_003 + (i * 7919) % 1000
    return {
        "Id": contact_id(i),
        "FirstName": first,
        "LastName": last,
        "Name": f"{first} {last}",
        "Email": f"{last.lower()}.{i}@{domain}",
        "Phone": f"(555) {i % 1000:03d}-{(i * 7) % 10000:04d}",
        "AccountId": account_id(j) if j else None,
        "Account": account(j) if j else None,
        "CreatedDate": _datetime(created),
        "LastModifiedDate": _datetime(created + (i * 104_729) % 2_592_000_000),
    }


@dataclass(frozen=True)
class SObject:
    name: str
    key_prefix: str
    fields: tuple[str, ...]
    relationships: dict[str, str]  # relationship name -> target sObject
    volume: str
    row: Any  # index -> full record


OBJECTS = {
    "contact": SObject(
        "Contact",
        "003",
        (
            "Id",
            "FirstName",
            "LastName",
            "Name",
            "Email",
            "Phone",
            "AccountId",
            "CreatedDate",
            "LastModifiedDate",
        ),
        {"account": "account"},
        "salesforce.contacts",
        contact,
    ),
    "account": SObject(
        "Account",
        "001",
        ("Id", "Name", "Industry", "CreatedDate", "LastModifiedDate"),
        {},
        "salesforce.accounts",
        account,
    ),
}

# ---- the SOQL subset --------------------------------------------------------------------


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Query:
    sobject: SObject
    fields: tuple[tuple[str, ...], ...]  # canonical paths: ("Id",) or ("Account", "Name")
    offset: int
    limit: int | None


def _located(soql: str, pos: int, text: str) -> str:
    """Salesforce's error text: the query, a caret under the column, then the reason."""
    line = " ".join(soql.split("\n"))
    return f"\n{line}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{text}"


def _unexpected(soql: str, pos: int) -> SoqlError:
    m = re.compile(r"\S+").search(soql, pos)
    token = m.group(0) if m else "<EOF>"
    return SoqlError(
        "MALFORMED_QUERY",
        _located(soql, m.start() if m else len(soql), f"unexpected token: '{token}'"),
    )


_IDENT = r"[A-Za-z][A-Za-z0-9_]*"
_SELECT = re.compile(r"\s*SELECT\s+", re.I)
_FROM = re.compile(r"\s+FROM\s+(" + _IDENT + r")\b", re.I)
_TAIL = re.compile(
    r"\s*(?:WHERE\s+.+?)?\s*(?:ORDER\s+BY\s+.+?)?\s*(?:LIMIT\s+(?P<limit>\S+))?"
    r"\s*(?:OFFSET\s+(?P<offset>\S+))?\s*$",
    re.I | re.S,
)


def parse_soql(soql: str) -> Query:
    if not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
    head = _SELECT.match(soql)
    if not head:
        raise _unexpected(soql, 0)
    frm = _FROM.search(soql, head.end())
    if not frm:
        raise _unexpected(soql, len(soql))
    sobject = OBJECTS.get(frm.group(1).lower())
    if sobject is None:
        raise SoqlError(
            "INVALID_TYPE",
            _located(
                soql,
                frm.start(1),
                f"sObject type '{frm.group(1)}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            ),
        )
    fields: list[tuple[str, ...]] = []
    pos = head.end()
    for raw in soql[head.end() : frm.start()].split(","):
        name = raw.strip()
        at = pos + len(raw) - len(raw.lstrip())
        pos += len(raw) + 1
        if not re.fullmatch(_IDENT + r"(\." + _IDENT + r")?", name):
            raise _unexpected(soql, at)
        path = _field(sobject, name, soql, at)
        if path not in fields:
            fields.append(path)
    tail = _TAIL.fullmatch(soql, frm.end())
    if not tail:
        raise _unexpected(soql, frm.end())
    limit = offset = None
    for key in ("limit", "offset"):
        value = tail.group(key)
        if value is not None and not value.isdigit():
            raise _unexpected(soql, tail.start(key))
    if tail.group("limit") is not None:
        limit = int(tail.group("limit"))
    if tail.group("offset") is not None:
        offset = int(tail.group("offset"))
        if offset > MAX_OFFSET:
            raise SoqlError(
                "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
            )
    return Query(sobject, tuple(fields), offset or 0, limit)


def _field(sobject: SObject, name: str, soql: str, at: int) -> tuple[str, ...]:
    parts = name.split(".")
    if len(parts) == 2:
        target = sobject.relationships.get(parts[0].lower())
        if target is None:
            raise SoqlError(
                "INVALID_FIELD",
                _located(
                    soql,
                    at,
                    f"Didn't understand relationship '{parts[0]}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name. Please reference your WSDL or the describe call "
                    "for the appropriate names.",
                ),
            )
        rel = OBJECTS[target]
        return (rel.name, *_field(rel, parts[1], soql, at + len(parts[0]) + 1))
    for canonical in sobject.fields:
        if canonical.lower() == name.lower():
            return (canonical,)
    raise SoqlError(
        "INVALID_FIELD",
        _located(
            soql,
            at,
            f"No such column '{name}' on entity '{sobject.name}'. If you are attempting to use a "
            "custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names.",
        ),
    )


def _attributes(sobject: SObject, record_id: str, version: str) -> dict[str, str]:
    return {
        "type": sobject.name,
        "url": f"/services/data/{version}/sobjects/{sobject.name}/{record_id}",
    }


def project(query: Query, full: dict[str, Any], version: str) -> dict[str, Any]:
    """One row as the REST API renders it: ``attributes`` first, fields in SELECT order,
    relationship fields nested under the relationship (``null`` when there is none)."""
    out: dict[str, Any] = {"attributes": _attributes(query.sobject, full["Id"], version)}
    for path in query.fields:
        if len(path) == 1:
            out[path[0]] = full[path[0]]
            continue
        rel, field = path
        target = full.get(rel)
        if target is None:
            out[rel] = None
            continue
        nested = out.get(rel) or {
            "attributes": _attributes(OBJECTS[rel.lower()], target["Id"], version)
        }
        nested[field] = target[field]
        out[rel] = nested
    return out


# ---- query locators (open cursors), per sandbox app ----------------------------------------


@dataclass(frozen=True)
class Cursor:
    query: Query
    start: int  # first row index (0-based) of the result set
    total: int
    batch: int


def _cursors(request: Request) -> dict[str, Cursor]:
    cursors = getattr(request.app.state, "salesforce_cursors", None)
    if cursors is None:
        cursors = {}
        request.app.state.salesforce_cursors = cursors
    return cursors


def _open_cursor(request: Request, cursor: Cursor) -> str:
    """Register a cursor; the oldest is forgotten past MAX_LOCATORS (INVALID_QUERY_LOCATOR)."""
    app_state = request.app.state
    cursors = _cursors(request)
    app_state.salesforce_seq = getattr(app_state, "salesforce_seq", 0) + 1
    locator = sf_id("01g", app_state.salesforce_seq)
    cursors[locator] = cursor
    if len(cursors) > MAX_LOCATORS:
        del cursors[next(iter(cursors))]
    return locator


def _batch_size(request: Request) -> int:
    """``Sforce-Query-Options: batchSize=N``; out-of-range sizes are clamped to 200–2000."""
    m = re.search(r"batchSize\s*=\s*(\d+)", request.headers.get("sforce-query-options", ""), re.I)
    return min(MAX_BATCH, max(MIN_BATCH, int(m.group(1)))) if m else DEFAULT_BATCH


# ---- Salesforce-shaped responses ------------------------------------------------------------


def _errors(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        [{"message": message, "errorCode": code}], status_code=status, headers=headers
    )


def _unavailable() -> Any:
    return [{"message": "Server temporarily unavailable", "errorCode": "SERVER_UNAVAILABLE"}]


def limit_header(d: RateDecision) -> dict[str, str]:
    """``Sforce-Limit-Info: api-usage=used/limit`` (the sandbox's rolling budget stands in for
    the org's 24-hour allocation)."""
    return {"Sforce-Limit-Info": f"api-usage={d.limit - d.remaining}/{d.limit}"}


def _token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() in ("bearer", "oauth") else None


async def _gate(request: Request) -> tuple[Response | None, dict[str, str]]:
    """Fault, auth and limit checks shared by every data endpoint."""
    state = sandbox_state(request)
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault, {}
    if state.check_access(NAME, _token(request)) is not None:
        return _errors(401, "INVALID_SESSION_ID", "Session expired or invalid"), {}
    decision = state.take_rate(NAME)
    headers = limit_header(decision)
    if decision.policy is not None:
        return _errors(
            403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", headers
        ), headers
    return None, headers


def _page(
    cursor: Cursor, locator: str | None, pos: int, version: str, headers: dict[str, str]
) -> JSONResponse:
    stop = min(cursor.total, pos + cursor.batch)
    records = [
        project(cursor.query, cursor.query.sobject.row(cursor.start + k + 1), version)
        for k in range(pos, stop)
    ]
    body: dict[str, Any] = {"totalSize": cursor.total, "done": stop >= cursor.total}
    if stop < cursor.total:
        body["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{stop}"
    body["records"] = records
    return JSONResponse(body, headers=headers)


# ---- endpoints ------------------------------------------------------------------------------


@router.get("/services/data/{version}/query")
async def query(request: Request, version: str) -> Response:
    """``q`` = SOQL; the first batch plus a locator URL when there is more."""
    denied, headers = await _gate(request)
    if denied is not None:
        return denied
    if not VERSION.match(version):
        return _errors(404, "NOT_FOUND", "The requested resource does not exist", headers)
    soql = request.query_params.get("q")
    if soql is None:
        return _errors(400, "MALFORMED_QUERY", "A query string has to be specified", headers)
    try:
        parsed = parse_soql(soql)
    except SoqlError as exc:
        return _errors(400, exc.code, exc.message, headers)
    volume = sandbox_state(request).config.volume(parsed.sobject.volume)
    total = max(0, volume - parsed.offset)
    if parsed.limit is not None:
        total = min(total, parsed.limit)
    cursor = Cursor(parsed, parsed.offset, total, _batch_size(request))
    locator = _open_cursor(request, cursor) if total > cursor.batch else None
    return _page(cursor, locator, 0, version, headers)


@router.get("/services/data/{version}/query/{locator_pos}")
async def query_more(request: Request, version: str, locator_pos: str) -> Response:
    """``nextRecordsUrl``: ``<locator>-<rows already returned>``."""
    denied, headers = await _gate(request)
    if denied is not None:
        return denied
    if not VERSION.match(version):
        return _errors(404, "NOT_FOUND", "The requested resource does not exist", headers)
    locator, _, pos = locator_pos.partition("-")
    cursor = _cursors(request).get(locator)
    if cursor is None or not pos.isdigit() or int(pos) >= cursor.total:
        return _errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator", headers)
    return _page(cursor, locator, int(pos), version, headers)


@router.post("/services/oauth2/token")
async def token(request: Request) -> Response:
    """Form-encoded refresh grant. No ``expires_in`` (session timeout is an org setting); a
    new ``refresh_token`` only when rotation is configured."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, _unavailable)) is not None:
        return fault
    form = dict(
        parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    )

    def oauth_error(error: str, description: str) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=400)

    if form.get("grant_type") != "refresh_token":
        return oauth_error("unsupported_grant_type", "grant type not supported")
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    try:
        issued = state.refresh(NAME, client_id, secret, form.get("refresh_token", ""))
    except TokenError as exc:
        if exc.reason == "client":
            with state.lock:
                known = (NAME, client_id) in state.clients
            if not known:
                return oauth_error("invalid_client_id", "client identifier invalid")
            return oauth_error("invalid_client", "invalid client credentials")
        return oauth_error("invalid_grant", "expired access/refresh token")
    org = hashlib.sha256(client_id.encode()).hexdigest()[:9].upper()
    identity = f"https://login.salesforce.com/id/00D{org}AAA/005{org}AAA"
    issued_at = str(int(time.time() * 1000))
    signature = base64.b64encode(
        hmac.new(secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    ).decode()
    body = {
        "access_token": issued.access_token,
        "instance_url": f"{str(request.base_url).rstrip('/')}/{NAME}",
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": signature,
    }
    if state.config.rotate_refresh_tokens.get(NAME, ROTATES_REFRESH_TOKENS):
        body["refresh_token"] = issued.refresh_token
    return JSONResponse(body)


# ---- Bulk API 2.0 query jobs ----------------------------------------------------------------
# A job moves UploadComplete -> InProgress -> JobComplete one state per status read (so a test
# controls time by polling, not by sleeping); `POST /_sandbox/bulk {"fail_next": "reason"}`
# makes the next job end `Failed` with that errorMessage instead. Results are CSV pages of
# `maxRecords` rows, chained by the `Sforce-Locator` header, the literal `null` on the last.

BULK_MAX_RECORDS = 50_000


@dataclass
class BulkJob:
    id: str
    query: Query
    total: int
    reads: int = 0
    fail: str | None = None

    @property
    def state(self) -> str:
        if self.reads < 1:
            return "UploadComplete"
        if self.reads < 2:
            return "InProgress"
        return "Failed" if self.fail else "JobComplete"


def _bulk(request: Request) -> dict[str, Any]:
    store = getattr(request.app.state, "salesforce_bulk", None)
    if store is None:
        store = request.app.state.salesforce_bulk = {"jobs": {}, "fail_next": None, "seq": 0}
    return store


def _bulk_info(job: BulkJob) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": job.id,
        "operation": "query",
        "object": job.query.sobject.name,
        "state": job.state,
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": 62.0,
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    }
    if job.state == "JobComplete":
        info["numberRecordsProcessed"] = job.total
    if job.state == "Failed":
        info["errorMessage"] = job.fail
    return info


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


@router.post("/_sandbox/bulk")
async def bulk_control(request: Request) -> Response:
    """Sandbox-only: `{"fail_next": "<errorMessage>"}` fails the next query job."""
    _bulk(request)["fail_next"] = (await request.json()).get("fail_next")
    return JSONResponse({"ok": True})


@router.post("/services/data/{version}/jobs/query")
async def bulk_create(request: Request, version: str) -> Response:
    denied, headers = await _gate(request)
    if denied is not None:
        return denied
    try:
        body = await request.json()
    except ValueError:
        return _errors(400, "JSON_PARSER_ERROR", "Unexpected character in request body", headers)
    if not isinstance(body, dict) or body.get("operation") not in ("query", "queryAll"):
        return _errors(400, "INVALIDJOB", "InvalidJob : operation must be query", headers)
    try:
        parsed = parse_soql(str(body.get("query") or ""))
    except SoqlError as exc:
        return _errors(400, exc.code, exc.message, headers)
    store = _bulk(request)
    store["seq"] += 1
    volume = sandbox_state(request).config.volume(parsed.sobject.volume)
    total = max(0, volume - parsed.offset)
    if parsed.limit is not None:
        total = min(total, parsed.limit)
    job = BulkJob(sf_id("750", store["seq"]), parsed, total, fail=store["fail_next"])
    store["fail_next"] = None
    store["jobs"][job.id] = job
    return JSONResponse(_bulk_info(job), headers=headers)


async def _bulk_job(request: Request, job_id: str) -> tuple[BulkJob | Response, dict[str, str]]:
    """The gate, then the job (or a 404 in Salesforce's shape)."""
    denied, headers = await _gate(request)
    if denied is not None:
        return denied, headers
    job = _bulk(request)["jobs"].get(job_id)
    if job is None:
        return _errors(404, "NOT_FOUND", "The requested resource does not exist", headers), headers
    return job, headers


@router.get("/services/data/{version}/jobs/query/{job_id}")
async def bulk_status(request: Request, version: str, job_id: str) -> Response:
    job, headers = await _bulk_job(request, job_id)
    if not isinstance(job, BulkJob):
        return job
    info = _bulk_info(job)
    job.reads += 1
    return JSONResponse(info, headers=headers)


@router.get("/services/data/{version}/jobs/query/{job_id}/results")
async def bulk_results(request: Request, version: str, job_id: str) -> Response:
    job, headers = await _bulk_job(request, job_id)
    if not isinstance(job, BulkJob):
        return job
    if job.state != "JobComplete":
        return _errors(400, "INVALIDJOBSTATE", f"Job is in state {job.state}", headers)
    raw_max = request.query_params.get("maxRecords", str(BULK_MAX_RECORDS))
    locator = request.query_params.get("locator") or "0"
    if not raw_max.isdigit() or int(raw_max) < 1 or not locator.isdigit():
        return _errors(400, "INVALID_QUERY_LOCATOR", "invalid locator or maxRecords", headers)
    start, size = int(locator), min(int(raw_max), BULK_MAX_RECORDS)
    stop = min(job.total, start + size)
    columns = [".".join(path) for path in job.query.fields]
    lines = [",".join(columns)]
    for k in range(start, stop):
        full = job.query.sobject.row(job.query.offset + k + 1)
        row = []
        for path in job.query.fields:
            value: Any = full
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            row.append(_csv_value(value))
        lines.append(",".join(row))
    headers = {
        **headers,
        "Sforce-Locator": str(stop) if stop < job.total else "null",
        "Sforce-NumberOfRecords": str(stop - start),
    }
    return Response("\n".join(lines) + "\n", media_type="text/csv", headers=headers)
