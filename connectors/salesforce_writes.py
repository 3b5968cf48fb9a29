"""Salesforce record writes: upsert by External ID, update and delete by record id.

Every write here is safe to resend, so an uncertain operation is settled by sending it again:

- `salesforce.records.upsert` (`Mechanism.UPSERT`): the External ID value finds the record a
  first attempt created. Up to `bulk_threshold` records (the call's, else the deployment's
  `TOOLQUEUE_SALESFORCE_BULK_THRESHOLD`, kept in `EXTRA`), sObject Collections
  `PATCH composite/sobjects/{sObject}/{field}` with `allOrNone: false`, ≤ 200 records per
  request, one `{id, success, created, errors}` per record in order; above it, Bulk API 2.0
  ingest (`connectors.salesforce_ingest`), asynchronous at Salesforce;
- `salesforce.records.update`: `PATCH sobjects/{sObject}/{id}` to absolute values (204);
- `salesforce.records.delete`: `DELETE sobjects/{sObject}/{id}` (204). Its `find` deletes
  again: after an uncertain first attempt, 404 `ENTITY_IS_DELETED` / `NOT_FOUND` means it was.

Previews read only, whichever path the upsert would take (Collections or Bulk ingest): SOQL
`SELECT Id, <fields> FROM {sObject} WHERE {field} IN (…)` by the external id values, up to
`LOOKUP` values per query (an operation of 10,000 bulk records is a few dozen queries); a
record found is diffed, one not found would be created. Update and delete read
`GET sobjects/{sObject}/{id}`; a 404 (`NOT_FOUND`, `ENTITY_IS_DELETED`) is the write's
rejection. A 400 (a field the sObject lacks: `INVALID_FIELD`) rejects the operation's records,
as the write would refuse them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors import salesforce_ingest as ingest
from connectors.base import Http, Tool
from connectors.errors import VendorError
from connectors.writes import (
    ItemResult,
    Mechanism,
    Operation,
    PreviewItem,
    Write,
    batches,
    diffed,
    one,
    rejected,
    would_reject,
)

API = "/services/data/v62.0"
COLLECTION = 200  # records per sObject Collections request
BULK_THRESHOLD = 2000
MAX_RECORDS = 50_000
# Tunables the deployment's settings replace (`app.kernel.registry`): `VENDOR.extra`.
EXTRA: dict[str, Any] = {"bulk_threshold": BULK_THRESHOLD}
NAME = r"^[A-Za-z][A-Za-z0-9_]{0,79}$"
RECORD_ID = r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$"
FieldValue = str | int | float | bool | None
LOOKUP = 200  # external id values per preview query
LOOKUP_CHARS = 6000  # and at most this much literal text, so the query's URL stays short
# what a delete's preview shows of a record: the first of these the sObject has
SUMMARY = ("Name", "FirstName", "LastName", "Email", "Subject", "CaseNumber", "Title")


def _threshold() -> int:
    return int(EXTRA["bulk_threshold"])


class UpsertArgs(BaseModel):
    """Arguments of `salesforce.records.upsert`."""

    model_config = ConfigDict(extra="forbid")

    sobject: str = Field(pattern=NAME, description='The sObject, e.g. "Contact"')
    external_id_field: str = Field(
        pattern=NAME, description='The External ID field to match on, e.g. "Ext_Id__c"'
    )
    records: list[dict[str, FieldValue]] = Field(
        min_length=1,
        max_length=MAX_RECORDS,
        description="Flat field maps, each with its external id field's value",
    )
    bulk_threshold: int = Field(
        default_factory=_threshold,
        ge=1,
        le=MAX_RECORDS,
        description="Above this many records, Bulk API 2.0 ingest instead of sObject "
        "Collections (default: the deployment's setting, 2000)",
    )

    @model_validator(mode="after")
    def _external_ids(self) -> UpsertArgs:
        """Every record names its external id, each value once (Salesforce would reject
        both records of a duplicate pair)."""
        seen: dict[str, int] = {}
        for i, rec in enumerate(self.records):
            value = rec.get(self.external_id_field)
            if value is None or str(value) == "":
                raise ValueError(f"record {i} has no {self.external_id_field} value")
            if str(value) in seen:
                raise ValueError(f"records {seen[str(value)]} and {i} have the same {value!r}")
            seen[str(value)] = i
        return self


@dataclass(frozen=True)
class Item:
    """One record of an upsert operation, with what its request needs."""

    sobject: str
    ext_field: str
    fields: dict[str, FieldValue]
    bulk: bool


def _plan_upsert(args: UpsertArgs) -> list[Operation]:
    bulk = len(args.records) > args.bulk_threshold
    items = [Item(args.sobject, args.external_id_field, r, bulk) for r in args.records]
    return batches(items, ingest.JOB_RECORDS if bulk else COLLECTION)


def _send_upsert(http: Http, op: Operation) -> list[ItemResult]:
    first: Item = op.items[0][1]
    if first.bulk:
        return ingest.run(http, op, first.sobject, first.ext_field)
    records = [{"attributes": {"type": it.sobject}, **it.fields} for it in op.payloads]
    path = f"{API}/composite/sobjects/{first.sobject}/{first.ext_field}"
    doc = http.request("PATCH", path, json={"allOrNone": False, "records": records}).json()
    answers = doc if isinstance(doc, list) else []
    out = []
    for n, (i, _) in enumerate(op.items):
        res = answers[n] if n < len(answers) and isinstance(answers[n], dict) else None
        out.append(_collection_result(i, res))
    return out


def _collection_result(i: int, res: dict[str, Any] | None) -> ItemResult:
    """One record's `{id, success, created, errors}` (Collections answer in request order)."""
    if res is None:
        return rejected(i, "NOT_IN_ANSWER", "Salesforce's answer did not mention it")
    if res.get("success"):
        return ItemResult(i, "created" if res.get("created") else "updated", str(res["id"]))
    errors = [e for e in res.get("errors") or [] if isinstance(e, dict)] or [{}]
    fields = sorted({f for e in errors for f in e.get("fields") or []})
    message = "; ".join(str(e.get("message") or "rejected") for e in errors)
    extra = {"fields": fields} if fields else {}
    return rejected(i, str(errors[0].get("statusCode") or "REJECTED"), message, **extra)


class UpdateArgs(BaseModel):
    """Arguments of `salesforce.records.update`: absolute values, so a resend repeats nothing."""

    model_config = ConfigDict(extra="forbid")

    sobject: str = Field(pattern=NAME, description='The sObject, e.g. "Contact"')
    id: str = Field(pattern=RECORD_ID, description="The record's 15- or 18-character id")
    fields: dict[str, FieldValue] = Field(min_length=1, max_length=800)


class DeleteArgs(BaseModel):
    """Arguments of `salesforce.records.delete`."""

    model_config = ConfigDict(extra="forbid")

    sobject: str = Field(pattern=NAME, description='The sObject, e.g. "Contact"')
    id: str = Field(pattern=RECORD_ID, description="The record's 15- or 18-character id")


def _send_update(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    http.request("PATCH", f"{API}/sobjects/{args.sobject}/{args.id}", json=args.fields)
    return [ItemResult(i, "updated", args.id)]


def _send_delete(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    http.request("DELETE", f"{API}/sobjects/{args.sobject}/{args.id}")
    return [ItemResult(i, "deleted", args.id)]


GONE = ("ENTITY_IS_DELETED", "NOT_FOUND")


def _find_delete(http: Http, op: Operation) -> list[ItemResult] | None:
    """An uncertain delete: delete again; "already deleted" / "not found" is the first
    attempt's effect (Salesforce answers 404 for both), not a rejection."""
    ((i, args),) = op.items
    try:
        return _send_delete(http, op)
    except VendorError as exc:
        if exc.status == 404 and exc.code in GONE:
            return [ItemResult(i, "deleted", args.id)]
        raise


# ---- previews: reads only ------------------------------------------------------------------


def soql_literal(value: FieldValue) -> str:
    """A value in a SOQL WHERE clause: strings quoted with `\\` and `\'` escaped."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def _chunks(items: list[tuple[int, Item]], ext_field: str) -> list[list[tuple[int, Item]]]:
    """The operation's records in lookups of ≤ `LOOKUP` values and ≤ `LOOKUP_CHARS` of text."""
    out: list[list[tuple[int, Item]]] = [[]]
    size = 0
    for i, it in items:
        n = len(soql_literal(it.fields[ext_field])) + 1
        if out[-1] and (len(out[-1]) >= LOOKUP or size + n > LOOKUP_CHARS):
            out.append([])
            size = 0
        out[-1].append((i, it))
        size += n
    return out


def _query(http: Http, soql: str) -> list[dict[str, Any]]:
    """Every row of a SOQL query (following `nextRecordsUrl`)."""
    doc = http.request("GET", f"{API}/query", params={"q": soql}).json()
    rows = list(doc.get("records") or [])
    while not doc.get("done", True) and doc.get("nextRecordsUrl"):
        doc = http.request("GET", str(doc["nextRecordsUrl"])).json()
        rows += doc.get("records") or []
    return [r for r in rows if isinstance(r, dict)]


def _fold(row: dict[str, Any]) -> dict[str, Any]:
    """A row by lower-case field name: SOQL names are case-insensitive."""
    return {k.lower(): v for k, v in row.items() if k != "attributes"}


def _lookup(http: Http, chunk: list[tuple[int, Item]]) -> list[PreviewItem]:
    first = chunk[0][1]
    ext = first.ext_field
    names = ["Id", ext]
    for _, it in chunk:
        names += [k for k in it.fields if k.lower() not in {n.lower() for n in names}]
    values = ", ".join(soql_literal(it.fields[ext]) for _, it in chunk)
    soql = f"SELECT {', '.join(names)} FROM {first.sobject} WHERE {ext} IN ({values})"
    try:
        rows = [_fold(r) for r in _query(http, soql)]
    except VendorError as exc:
        if exc.status != 400:
            raise
        return [would_reject(i, exc.code, exc.message) for i, _ in chunk]
    found = {str(r.get(ext.lower())): r for r in rows}
    out = []
    for i, it in chunk:
        row = found.get(str(it.fields[ext]))
        if row is None:
            out.append(PreviewItem(i, "create", None, proposed=dict(it.fields)))
        else:
            current = {k: row.get(k.lower()) for k in it.fields}
            out.append(diffed(i, str(row.get("id")), current, dict(it.fields)))
    return out


def _preview_upsert(http: Http, op: Operation) -> list[PreviewItem]:
    """Each record looked up by its external id value: found → diffed, else a create. A
    record with a field name no sObject can have is refused before any query names it."""
    ext = op.items[0][1].ext_field
    bad = {i: k for i, it in op.items for k in it.fields if not re.match(NAME, k)}
    good = [(i, it) for i, it in op.items if i not in bad]
    found = {p.index: p for chunk in _chunks(good, ext) if chunk for p in _lookup(http, chunk)}
    for i, name in bad.items():
        found[i] = would_reject(i, "INVALID_FIELD", f"No such column '{name}'")
    return [found[i] for i, _ in op.items]


def _record(http: Http, sobject: str, record_id: str, fields: list[str] | None) -> Any:
    params = {"fields": ",".join(fields)} if fields else None
    return http.request("GET", f"{API}/sobjects/{sobject}/{record_id}", params=params).json()


def _preview_update(http: Http, op: Operation) -> list[PreviewItem]:
    ((i, args),) = op.items
    try:
        row = _fold(_record(http, args.sobject, args.id, list(args.fields)))
    except VendorError as exc:
        if exc.status not in (400, 404):
            raise
        return [would_reject(i, exc.code, exc.message, args.id)]
    return [diffed(i, args.id, {k: row.get(k.lower()) for k in args.fields}, dict(args.fields))]


def _preview_delete(http: Http, op: Operation) -> list[PreviewItem]:
    ((i, args),) = op.items
    try:
        row = _record(http, args.sobject, args.id, None)
    except VendorError as exc:
        if exc.status != 404:
            raise
        return [would_reject(i, exc.code, exc.message, args.id)]
    summary = {k: row[k] for k in SUMMARY if k in row}
    return [PreviewItem(i, "delete", args.id, summary or {"Id": args.id})]


upsert = Tool(
    name="salesforce.records.upsert",
    description=(
        "Create or update Salesforce records of one sObject by an External ID field, any "
        "number per job: sObject Collections (200 per request, allOrNone false) up to "
        "`bulk_threshold` records, Bulk API 2.0 ingest above it (the job waits in "
        "waiting_vendor while Salesforce processes it). Each record is a flat field map "
        "including the external id field. Safe to retry. The result lists each record's "
        '{"index", "status": "created"|"updated"|"rejected", "id", "error"?}; a job where '
        "Salesforce rejected some records ends completed_with_errors."
    ),
    args=UpsertArgs,
    read_only=False,
    destructive=True,  # overwrites the fields of a record it finds
    idempotent=True,
    write=Write(Mechanism.UPSERT, _plan_upsert, _send_upsert, preview=_preview_upsert),
)
update = Tool(
    name="salesforce.records.update",
    description=(
        "Set fields of one Salesforce record by id (REST PATCH sobjects/{sobject}/{id}); "
        "values are absolute, so a retry changes nothing more."
    ),
    args=UpdateArgs,
    read_only=False,
    destructive=True,
    idempotent=True,
    write=Write(Mechanism.ABSOLUTE, one, _send_update, preview=_preview_update),
)
delete = Tool(
    name="salesforce.records.delete",
    description=(
        "Delete one Salesforce record by id (to the recycle bin); deleting twice is harmless."
    ),
    args=DeleteArgs,
    read_only=False,
    destructive=True,
    idempotent=True,
    write=Write(Mechanism.ABSOLUTE, one, _send_delete, _find_delete, preview=_preview_delete),
)
TOOLS = (upsert, update, delete)
