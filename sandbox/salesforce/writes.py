"""Salesforce upserts by External ID: one record, and sObject Collections.

- ``PATCH /services/data/vXX.X/sobjects/{SObject}/{ExtIdField}/{value}``: no record holds the
  value → created, 201 ``{"id", "success": true, "errors": [], "created": true}``; one does →
  updated, 200 with ``"created": false`` (API v46.0+; 204 without a body before), as the REST
  guide's "Insert or Update (Upsert) a Record Using an External ID" says.
- ``PATCH /services/data/vXX.X/composite/sobjects/{SObject}/{ExtIdField}`` with
  ``{"allOrNone": bool, "records": [{"attributes": {"type": …}, ExtIdField: value, …}]}``:
  ≤ 200 records (more → 400 ``EXCEEDED_ID_LIMIT``), processed in order, 200 with one
  ``{"id", "success", "created", "errors": [{"statusCode", "message", "fields"}]}`` per
  record. ``allOrNone`` true and any record rejected → nothing written, every other record
  answers ``ALL_OR_NONE_OPERATION_ROLLED_BACK``.

- ``PATCH /services/data/vXX.X/sobjects/{SObject}/{id}`` with a field map → 204, no body
  (a field the sObject lacks → 400 ``INVALID_FIELD``); ``DELETE`` the same path → 204 (to the
  recycle bin, effect ``delete``). An unknown id → 404 ``NOT_FOUND``; a deleted one → 404
  ``ENTITY_IS_DELETED`` (so a second delete after a lost answer says it was done). ``GET`` the
same path reads the record as written (``?fields=A,B``: only those, with ``attributes`` and
``Id``; a field the sObject lacks → 400 ``INVALID_FIELD``), with the same 404s; a read is no
effect.

Upsert is safe to resend: the external id finds the record the first try made. Sandbox choices:
sObjects ``Contact`` and ``Account``; update and delete know only records written here (not the
seeded SOQL volume), and an upsert does not find a deleted record (it creates anew); an external id
field is any custom field (``…__c``); a field that is neither a standard one of the sObject nor
custom is ``INVALID_FIELD``; a record without its external id value is ``MISSING_ARGUMENT``; one
value twice in a collection is ``DUPLICATE_EXTERNAL_ID`` for both. Faults as for Stripe
(:mod:`sandbox.stripe.writes`): ``fail_before_commit_next`` (500 ``UNKNOWN_EXCEPTION``, nothing
written), ``drop_after_commit_next`` / ``drop_after_commit_rate`` (all committed, then the answer
cut), ``write_latency_ms``. An upsert whose fields all hold their values already is a ``noop``
effect (:func:`sandbox.writes.change_kind`). Written records are not added to SOQL listings, only
to lookups (``WHERE <field> IN (…)``, :mod:`.query`); Bulk API 2.0 ingest jobs (:mod:`.ingest`)
write the same store through :func:`upsert`. Every commit here re-indexes the record
(:mod:`.index`), so finding a record by its external id is a dict access, however many are written.

Field-level security, as a fault: ``salesforce_locked_fields`` (live config, default none) names
fields the integration user may not write. A record that sets one to a non-null value is refused,
nothing written for it, with ``INVALID_FIELD_FOR_INSERT_UPDATE`` "Unable to create/update fields:
Phone. Please check the security settings of this field and verify that it is read/write for your
profile or permission set." and ``fields: ["Phone"]`` (several locked fields: one error naming all,
comma-separated): in a collection only that record fails (all of them with ``allOrNone``, as for
any rejected record), one record or ``PATCH`` by id answers 400 with it, a Bulk ingest row fails
with it as ``sf__Error``. Clearing the list lets the same records through.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.salesforce import index
from sandbox.salesforce.data import account, contact, sf_id
from sandbox.salesforce.http import NAME, VERSION, errors, gate, not_found
from sandbox.writes import Effect, EffectKind, change_kind, delivered, effects_body, hold, reply

router = APIRouter()

MAX_RECORDS = 200
CREATED_BASE = 5_000_000  # written records are numbered past any seeded volume
PREFIXES = {"Contact": "003", "Account": "001"}
READ_ONLY = frozenset({"Id", "Name", "Account", "CreatedDate", "LastModifiedDate"})
STANDARD = {
    "Contact": frozenset(contact(1)) - READ_ONLY,
    "Account": frozenset(account(1)) - READ_ONLY | {"Name"},
}
ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was "
    "using AllOrNone header",
    "fields": [],
}
Result = dict[str, Any]  # one UpsertResult
Outcome = tuple[int, Any, bool]  # (status, body, committed)


def _error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields or []}


def _field_errors(sobject: str, record: dict[str, Any]) -> list[dict[str, Any]]:
    """Salesforce's per-record errors for fields the sObject does not have."""
    out = []
    for name in record:
        if name == "attributes" or name in STANDARD[sobject] or name.endswith("__c"):
            continue
        message = f"No such column '{name}' on sobject of type {sobject}"
        out.append(_error("INVALID_FIELD", message, [name]))
    return out


LOCKED_MESSAGE = (
    "Unable to create/update fields: {}. Please check the security settings of this field and "
    "verify that it is read/write for your profile or permission set."
)


def locked_fields(request: Request) -> frozenset[str]:
    """``salesforce_locked_fields``, lower-cased (field names are case-insensitive); read once
    per request, so one collection sees one setting."""
    return frozenset(f.lower() for f in sandbox_state(request).config.salesforce_locked_fields)


def locked_error(locked: frozenset[str], record: dict[str, Any]) -> dict[str, Any] | None:
    """Field-level security's rejection of a record that sets a locked field to a value (null
    is no value), as Salesforce words it; None when the record sets none."""
    hit = [
        k for k, v in record.items() if k != "attributes" and k.lower() in locked and v is not None
    ]
    if not hit:
        return None
    return _error("INVALID_FIELD_FOR_INSERT_UPDATE", LOCKED_MESSAGE.format(", ".join(hit)), hit)


def _commit(request: Request, obj: dict[str, Any], effect: Effect) -> None:
    """Store ``obj`` with the keys lookups find it by (:mod:`.index`): every Salesforce commit."""
    sandbox_state(request).writes.commit(NAME, obj, effect, keys=index.keys(obj))


def _scanned(request: Request, sobject: str, ext_field: str, value: Any) -> list[dict[str, Any]]:
    """The scan for an external id value that is no index key (a JSON list or object)."""
    return sandbox_state(request).writes.select(
        NAME,
        lambda o: (
            o["attributes"]["type"] == sobject
            and o.get(ext_field) == value
            and not o.get("IsDeleted")
        ),
    )


def existing(request: Request, sobject: str, ext_field: str, value: Any) -> dict[str, Any] | None:
    """The live record whose ``ext_field`` holds ``value``: an index look-up (a missing value
    finds none)."""
    if value is None:
        return None
    if isinstance(value, index.Scalar):
        key = index.exact(sobject, ext_field, value)
        found = sandbox_state(request).writes.lookup(NAME, [key])
    else:
        found = _scanned(request, sobject, ext_field, value)
    return found[0] if found else None


def upsert(request: Request, sobject: str, ext_field: str, record: dict[str, Any]) -> Result:
    """Create or update one valid record by its external id; records the effect (``noop``
    when nothing changes). Shared with Bulk API 2.0 ingest jobs."""
    fields = {k: v for k, v in record.items() if k != "attributes"}
    current = existing(request, sobject, ext_field, fields[ext_field])
    writes = sandbox_state(request).writes
    kind: EffectKind = change_kind(current, fields)
    if current is None:
        rid = sf_id(PREFIXES[sobject], CREATED_BASE + writes.next_number(NAME))
        url = f"/services/data/v62.0/sobjects/{sobject}/{rid}"
        current = {"attributes": {"type": sobject, "url": url}, "Id": rid}
    obj = {**current, **fields}
    _commit(request, obj, Effect(kind, obj["Id"], None, fields, time.time()))
    return {"id": obj["Id"], "success": True, "errors": [], "created": kind == "create"}


def _failed(errs: list[dict[str, Any]]) -> Result:
    return {"id": None, "success": False, "errors": errs, "created": False}


# ---- the write flow ---------------------------------------------------------------------


async def _write(
    request: Request, version: str, sobject: str, execute: Callable[[Any, dict[str, str]], Outcome]
) -> Response:
    """Gate, fault, path and body checks, execution, maybe a dropped answer."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    state = sandbox_state(request)
    if state.take_fail_before_commit():
        message = "An unexpected error occurred. Please include this ErrorId if you contact support"
        return errors(500, "UNKNOWN_EXCEPTION", message, headers)
    if not VERSION.match(version) or sobject not in PREFIXES:
        return not_found(headers)
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return errors(400, "JSON_PARSER_ERROR", "The request body is not valid JSON", headers)
    await hold(state.config.write_latency_ms)
    status, doc, committed = execute(body, headers)
    return delivered(reply(status, doc, headers), committed, state.take_drop_after_commit)


def _ext_field_missing(ext_field: str) -> Outcome:
    message = f"Provided external ID field does not exist or is not accessible: {ext_field}"
    return 404, [{"errorCode": "NOT_FOUND", "message": message}], False


def _as_rest(e: dict[str, Any]) -> dict[str, Any]:
    """A per-record error in the single-record REST shape (``errorCode``, not ``statusCode``)."""
    return {"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]}


def _locked_errors(request: Request, record: dict[str, Any]) -> list[dict[str, Any]]:
    found = locked_error(locked_fields(request), record)
    return [found] if found is not None else []


# ---- one record -------------------------------------------------------------------------


@router.patch("/services/data/{version}/sobjects/{sobject}/{ext_field}/{value}")
async def upsert_one(
    request: Request, version: str, sobject: str, ext_field: str, value: str
) -> Response:
    def execute(body: Any, headers: dict[str, str]) -> Outcome:
        if not ext_field.endswith("__c"):
            return _ext_field_missing(ext_field)
        if not isinstance(body, dict):
            return 400, [{"errorCode": "JSON_PARSER_ERROR", "message": "Expected an object"}], False
        record = {**body, ext_field: value}
        if errs := _field_errors(sobject, body) or _locked_errors(request, record):
            return 400, [_as_rest(e) for e in errs], False
        result = upsert(request, sobject, ext_field, record)
        if result["created"]:
            return 201, result, True
        return (200, result, True) if float(version[1:]) >= 46 else (204, None, True)

    return await _write(request, version, sobject, execute)


# ---- sObject Collections ------------------------------------------------------------------


def _record_errors(
    sobject: str, ext_field: str, record: Any, locked: frozenset[str]
) -> list[dict[str, Any]]:
    if not isinstance(record, dict) or not isinstance(record.get("attributes"), dict):
        return [_error("INVALID_TYPE", "Must send a concrete entity type.")]
    if record["attributes"].get("type") != sobject:
        return [_error("INVALID_TYPE", f"Records must all be of type {sobject}")]
    if record.get(ext_field) in (None, ""):
        return [_error("MISSING_ARGUMENT", f"{ext_field} not specified", [ext_field])]
    refused = locked_error(locked, record)
    return _field_errors(sobject, record) or ([refused] if refused is not None else [])


def _collection_errors(
    sobject: str, ext_field: str, records: list[Any], locked: frozenset[str]
) -> list[list[dict[str, Any]]]:
    """Per record, the reasons it is rejected (empty: acceptable); duplicates reject both."""
    found = [_record_errors(sobject, ext_field, r, locked) for r in records]
    values = [r.get(ext_field) for r, errs in zip(records, found, strict=True) if not errs]
    for r, errs in zip(records, found, strict=True):
        if not errs and values.count(r.get(ext_field)) > 1:
            message = f"Duplicate external id specified: {r.get(ext_field)}"
            errs.append(_error("DUPLICATE_EXTERNAL_ID", message, [ext_field]))
    return found


def _collection(request: Request, sobject: str, ext_field: str, body: Any) -> Outcome:
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or not records:
        return 400, [{"errorCode": "INVALID_FIELD", "message": "records is required"}], False
    if len(records) > MAX_RECORDS:
        message = (
            f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call"
        )
        return 400, [{"errorCode": "EXCEEDED_ID_LIMIT", "message": message}], False
    found = _collection_errors(sobject, ext_field, records, locked_fields(request))
    if body.get("allOrNone") is True and any(found):
        return 200, [_failed(errs or [dict(ROLLED_BACK)]) for errs in found], False
    results = [
        _failed(errs) if errs else upsert(request, sobject, ext_field, r)
        for r, errs in zip(records, found, strict=True)
    ]
    return 200, results, any(r["success"] for r in results)


@router.patch("/services/data/{version}/composite/sobjects/{sobject}/{ext_field}")
async def upsert_collection(
    request: Request, version: str, sobject: str, ext_field: str
) -> Response:
    def execute(body: Any, headers: dict[str, str]) -> Outcome:
        if not ext_field.endswith("__c"):
            return _ext_field_missing(ext_field)
        return _collection(request, sobject, ext_field, body)

    return await _write(request, version, sobject, execute)


# ---- one record by id: update, delete --------------------------------------------------------


def _by_id(request: Request, sobject: str, record_id: str) -> dict[str, Any] | Outcome:
    """The record, or the 404 Salesforce answers for an unknown or deleted id."""
    found = sandbox_state(request).writes.get(NAME, record_id)
    if found is None or found["attributes"]["type"] != sobject:
        message = "The requested resource does not exist"
        return 404, [{"errorCode": "NOT_FOUND", "message": message}], False
    if found.get("IsDeleted"):
        return 404, [{"errorCode": "ENTITY_IS_DELETED", "message": "entity is deleted"}], False
    return found


@router.patch("/services/data/{version}/sobjects/{sobject}/{record_id}")
async def update_one(request: Request, version: str, sobject: str, record_id: str) -> Response:
    def execute(body: Any, headers: dict[str, str]) -> Outcome:
        current = _by_id(request, sobject, record_id)
        if isinstance(current, tuple):
            return current
        if not isinstance(body, dict):
            return 400, [{"errorCode": "JSON_PARSER_ERROR", "message": "Expected an object"}], False
        fields = {k: v for k, v in body.items() if k != "attributes"}
        if errs := _field_errors(sobject, fields) or _locked_errors(request, fields):
            return 400, [_as_rest(e) for e in errs], False
        obj = {**current, **fields}
        effect = Effect(change_kind(current, fields), record_id, None, fields, time.time())
        _commit(request, obj, effect)
        return 204, None, True

    return await _write(request, version, sobject, execute)


@router.delete("/services/data/{version}/sobjects/{sobject}/{record_id}")
async def delete_one(request: Request, version: str, sobject: str, record_id: str) -> Response:
    def execute(_body: Any, _headers: dict[str, str]) -> Outcome:
        current = _by_id(request, sobject, record_id)
        if isinstance(current, tuple):
            return current
        effect = Effect("delete", record_id, None, {}, time.time())
        _commit(request, {**current, "IsDeleted": True}, effect)
        return 204, None, True

    return await _write(request, version, sobject, execute)


KNOWN = {"Contact": {f.lower() for f in contact(1)}, "Account": {f.lower() for f in account(1)}}


def _fields_of(record: dict[str, Any], asked: str) -> dict[str, Any] | str:
    """``record`` cut to the ``fields`` asked for (case-insensitive), or the first name the
    sObject lacks."""
    known = KNOWN[record["attributes"]["type"]]
    folded = {k.lower(): k for k in record}
    out = {"attributes": record["attributes"], "Id": record["Id"]}
    for name in (n.strip() for n in asked.split(",") if n.strip()):
        if name.lower() not in known and not name.lower().endswith("__c"):
            return name
        key = folded.get(name.lower(), name)
        out[key] = record.get(key)
    return out


@router.get("/services/data/{version}/sobjects/{sobject}/{record_id}")
async def read_one(request: Request, version: str, sobject: str, record_id: str) -> Response:
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    if not VERSION.match(version) or sobject not in PREFIXES:
        return not_found(headers)
    found = _by_id(request, sobject, record_id)
    if isinstance(found, tuple):
        return JSONResponse(found[1], status_code=found[0], headers=headers)
    asked = request.query_params.get("fields")
    shown = found if asked is None else _fields_of(found, asked)
    if isinstance(shown, str):
        message = f"No such column '{shown}' on sobject of type {sobject}"
        return errors(400, "INVALID_FIELD", message, headers)
    return JSONResponse(shown, headers=headers)


@router.get("/_sandbox/effects")
async def effects(request: Request) -> Response:
    """Sandbox-only: every record write applied, in order, and counts per object."""
    return JSONResponse(effects_body(sandbox_state(request).writes, NAME))
