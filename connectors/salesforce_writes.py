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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors import salesforce_ingest as ingest
from connectors.base import Http, Tool
from connectors.errors import VendorError
from connectors.writes import ItemResult, Mechanism, Operation, Write, batches, one, rejected

API = "/services/data/v62.0"
COLLECTION = 200  # records per sObject Collections request
BULK_THRESHOLD = 2000
MAX_RECORDS = 50_000
# Tunables the deployment's settings replace (`app.kernel.registry`): `VENDOR.extra`.
EXTRA: dict[str, Any] = {"bulk_threshold": BULK_THRESHOLD}
NAME = r"^[A-Za-z][A-Za-z0-9_]{0,79}$"
RECORD_ID = r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$"
FieldValue = str | int | float | bool | None


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
    write=Write(Mechanism.UPSERT, _plan_upsert, _send_upsert),
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
    write=Write(Mechanism.ABSOLUTE, one, _send_update),
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
    write=Write(Mechanism.ABSOLUTE, one, _send_delete, _find_delete),
)
TOOLS = (upsert, update, delete)
