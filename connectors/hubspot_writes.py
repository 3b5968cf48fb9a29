"""HubSpot contact writes: batch upsert by a unique property, update, archive.

HubSpot has no idempotency keys; every write here is safe to resend by construction, so an
uncertain operation is simply sent again (`Mechanism.UPSERT` / `ABSOLUTE`):

- `POST /crm/v3/objects/contacts/batch/upsert` (≤ 100 inputs) finds each contact by its
  `idProperty` value: a resent batch updates the contacts its first attempt created. The
  answer is 200, or 207 multi-status with `results` for the inputs applied and `errors`
  (each naming its input in `context.ids`) for the rest;
- `PATCH …/contacts/{id}` sets absolute values; `DELETE …/contacts/{id}` answers 204 also
  for a contact archived already.

Previews read only: an upsert batch is one `POST …/contacts/batch/read` by its `idProperty`
(a contact found is diffed on the properties set, one not found would be created); an update
or an archive reads `GET …/contacts/{id}` (an unknown id: the update would 404, the archive
changes nothing).
HubSpot's validation of the values themselves is not previewed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

BATCH = 100  # inputs per batch/upsert request
MAX_RECORDS = 50_000
CONTACTS = "/crm/v3/objects/contacts"
PropertyValue = str | int | float | bool | None
SUMMARY = ("email", "firstname", "lastname")  # what an archive's preview shows of a contact


class UpsertRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=400, description="The id property's value")
    properties: dict[str, PropertyValue] = Field(default_factory=dict, max_length=500)


class UpsertArgs(BaseModel):
    """Arguments of `hubspot.contacts.upsert`."""

    model_config = ConfigDict(extra="forbid")

    id_property: str = Field(
        "email", min_length=1, max_length=100, description="A unique property to match on"
    )
    records: list[UpsertRecord] = Field(min_length=1, max_length=MAX_RECORDS)

    @field_validator("records")
    @classmethod
    def _unique(cls, records: list[UpsertRecord]) -> list[UpsertRecord]:
        seen: dict[str, int] = {}
        for i, rec in enumerate(records):
            key = rec.id.strip().lower()
            if key in seen:
                raise ValueError(f"records {seen[key]} and {i} have the same id {rec.id!r}")
            seen[key] = i
        return records


def _plan_upsert(args: UpsertArgs) -> list[Operation]:
    """Batches of the vendor's own inputs: `send` needs nothing but the operation."""
    inputs = [
        {"idProperty": args.id_property, "id": rec.id, "properties": rec.properties}
        for rec in args.records
    ]
    return batches(inputs, BATCH)


def _send_upsert(http: Http, op: Operation) -> list[ItemResult]:
    doc = http.request("POST", f"{CONTACTS}/batch/upsert", json={"inputs": op.payloads}).json()
    by_id = {_norm(p["id"]): i for i, p in op.items}
    out: dict[int, ItemResult] = {}
    for err in doc.get("errors") or []:
        for ident in (err.get("context") or {}).get("ids") or []:
            i = by_id.get(_norm(ident))
            if i is not None:
                out[i] = rejected(i, err.get("category", "VALIDATION_ERROR"), _reason(err))
    prop = op.items[0][1]["idProperty"]
    for res in doc.get("results") or []:
        i = by_id.get(_norm((res.get("properties") or {}).get(prop, "")))
        if i is None or i in out:  # not named: the vendor keeps input order
            i = next((j for j, _ in op.items if j not in out), None)
        if i is not None:
            out[i] = ItemResult(i, "created" if res.get("new") else "updated", str(res["id"]))
    for i, _ in op.items:
        out.setdefault(i, rejected(i, "NOT_IN_ANSWER", "HubSpot's answer did not mention it"))
    return [out[i] for i, _ in op.items]


def _norm(value: Any) -> str:
    return str(value).strip().lower()


def _reason(err: dict[str, Any]) -> str:
    """The batch error's message, with its per-property details when it has them."""
    details = [e.get("message", "") for e in err.get("errors") or [] if isinstance(e, dict)]
    message = str(err.get("message", "rejected"))
    return f"{message}: {'; '.join(details)}" if details else message


class UpdateArgs(BaseModel):
    """Arguments of `hubspot.contacts.update`: absolute values, so a resend repeats nothing."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=40, pattern=r"^[0-9]+$", description="Contact id")
    properties: dict[str, PropertyValue] = Field(min_length=1, max_length=500)


class ArchiveArgs(BaseModel):
    """Arguments of `hubspot.contacts.archive`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=40, pattern=r"^[0-9]+$", description="Contact id")


def _send_update(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    doc = http.request("PATCH", f"{CONTACTS}/{args.id}", json={"properties": args.properties})
    return [ItemResult(i, "updated", str(doc.json().get("id", args.id)))]


def _send_archive(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    http.request("DELETE", f"{CONTACTS}/{args.id}")
    return [ItemResult(i, "deleted", args.id)]


# ---- previews: reads only ------------------------------------------------------------------


def _preview_upsert(http: Http, op: Operation) -> list[PreviewItem]:
    """One batch read by the id property: found → diffed with its id, else a create."""
    prop = op.items[0][1]["idProperty"]
    names = sorted({k for p in op.payloads for k in p["properties"]} | {prop})
    body = {"idProperty": prop, "inputs": [{"id": p["id"]} for p in op.payloads]}
    doc = http.request("POST", f"{CONTACTS}/batch/read", json={**body, "properties": names})
    found = {
        _norm((r.get("properties") or {}).get(prop, "")): r
        for r in doc.json().get("results") or []
        if isinstance(r, dict)
    }
    out = []
    for i, p in op.items:
        hit = found.get(_norm(p["id"]))
        if hit is None:  # a new contact holds its id value too
            out.append(PreviewItem(i, "create", None, proposed={**p["properties"], prop: p["id"]}))
        else:  # the id value is how it was found, not a change (HubSpot ignores its case)
            out.append(diffed(i, str(hit["id"]), hit.get("properties") or {}, p["properties"]))
    return out


def _read(http: Http, contact_id: str, names: list[str]) -> dict[str, Any]:
    """The contact's `names` properties (an unknown or archived one: VendorError 404)."""
    params = {"properties": ",".join(names)}
    doc = http.request("GET", f"{CONTACTS}/{contact_id}", params=params).json()
    return dict(doc.get("properties") or {})


def _preview_update(http: Http, op: Operation) -> list[PreviewItem]:
    ((i, args),) = op.items
    try:
        current = _read(http, args.id, sorted(args.properties))
    except VendorError as exc:
        if exc.status != 404:
            raise
        return [would_reject(i, exc.code, exc.message, args.id)]  # the PATCH would 404
    return [diffed(i, args.id, current, dict(args.properties))]


def _preview_archive(http: Http, op: Operation) -> list[PreviewItem]:
    """A contact found would be archived; archiving an unknown one is HubSpot's no-op (204)."""
    ((i, args),) = op.items
    try:
        current = _read(http, args.id, list(SUMMARY))
    except VendorError as exc:
        if exc.status != 404:
            raise
        return [PreviewItem(i, "unchanged", args.id)]
    return [PreviewItem(i, "delete", args.id, {k: current.get(k) for k in SUMMARY})]


upsert = Tool(
    name="hubspot.contacts.upsert",
    description=(
        "Create or update HubSpot contacts by a unique property (default email), in batches "
        "of 100 (CRM v3 batch/upsert), any number of records per job. Safe to retry: a "
        "resent batch finds the contacts its first attempt wrote. The result lists each "
        'record\'s {"index", "status": "created"|"updated"|"rejected", "id", "error"?}; a job '
        "where HubSpot rejected some records ends completed_with_errors."
    ),
    args=UpsertArgs,
    read_only=False,
    destructive=True,  # overwrites the properties of a contact it finds
    idempotent=True,
    write=Write(Mechanism.UPSERT, _plan_upsert, _send_upsert, preview=_preview_upsert),
)
update = Tool(
    name="hubspot.contacts.update",
    description=(
        "Set properties of one HubSpot contact by id (CRM v3 PATCH); values are absolute, so "
        "a retry changes nothing more."
    ),
    args=UpdateArgs,
    read_only=False,
    destructive=True,
    idempotent=True,
    write=Write(Mechanism.ABSOLUTE, one, _send_update, preview=_preview_update),
)
archive = Tool(
    name="hubspot.contacts.archive",
    description="Archive (delete) one HubSpot contact by id; archiving twice is harmless.",
    args=ArchiveArgs,
    read_only=False,
    destructive=True,
    idempotent=True,
    write=Write(Mechanism.ABSOLUTE, one, _send_archive, preview=_preview_archive),
)
TOOLS = (upsert, update, archive)
