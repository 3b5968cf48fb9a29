"""HubSpot contact writes: batch upsert by a unique property, create, update, archive.

- ``POST /crm/v3/objects/contacts/batch/upsert``: ≤ 100 inputs
  ``{"idProperty": "email", "id": "a@b.c", "properties": {…}}``; an email already held (a
  written contact, or a seeded one) is updated, else a contact is created. All valid → 200
  ``{"status": "COMPLETE", "results": [{…, "new": bool}], "startedAt", "completedAt"}``; some
  invalid → 207 with ``numErrors`` and ``errors`` (one per rejected input, its ``context.ids``
  naming the input's id) next to the ``results`` of the rest, as HubSpot's batch reference
  documents. More than 100 inputs, or one id twice → 400 ``VALIDATION_ERROR``, nothing written.
- ``POST /crm/v3/objects/contacts`` (201); an email already held → 409 ``CONFLICT``
  "Contact already exists. Existing ID: 123", which is how a resent create finds its first try.
- ``PATCH /crm/v3/objects/contacts/{id}`` (200; unknown or archived → 404 ``OBJECT_NOT_FOUND``),
  ``DELETE /crm/v3/objects/contacts/{id}`` (204, also for an unknown id; archives, effect
  ``delete``).

No idempotency keys: an upsert is safe to resend because its natural key finds the same object.
Sandbox choices: ``idProperty`` must be ``email``; a property outside :data:`PROPERTIES` is
``PROPERTY_DOESNT_EXIST``, a read-only one ``READ_ONLY_VALUE``. Faults as for Stripe
(:mod:`sandbox.stripe.writes`): ``fail_before_commit_next`` (503, nothing written),
``drop_after_commit_next`` / ``drop_after_commit_rate`` (the whole batch is committed, then the
answer is cut), ``write_latency_ms``. A write whose properties all hold their values already
is a ``noop`` effect (:func:`sandbox.writes.change_kind`), the contact left as it was.
Written contacts are not added to the seeded list pages.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.hubspot.data import contact
from sandbox.hubspot.http import NAME, error, rate_gate, unavailable
from sandbox.writes import Effect, change_kind, delivered, effects_body, hold, reply

router = APIRouter()

SCOPE = "crm.objects.contacts.write"
MAX_INPUTS = 100
CREATED_BASE = 10_000_000  # written contacts are numbered past any seeded volume
READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})
PROPERTIES = frozenset(contact(1)["properties"]) | {
    "city",
    "jobtitle",
    "lifecyclestage",
    "website",
}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SEEDED_EMAIL = re.compile(r"\.(\d+)@")
Outcome = tuple[int, Any, bool]  # (status, body, committed)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _problems(properties: Any) -> list[dict[str, Any]]:
    """HubSpot's per-property validation errors (empty: the properties are acceptable)."""
    if not isinstance(properties, dict):
        return [{"message": "properties must be an object", "code": "INVALID_JSON"}]
    out: list[dict[str, Any]] = []
    for name, value in properties.items():
        if name not in PROPERTIES:
            code, message = "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist'
        elif name in READ_ONLY:
            code, message = "READ_ONLY_VALUE", f'"{name}" is a read only property'
        elif name == "email" and not EMAIL.match(str(value)):
            code, message = "INVALID_EMAIL", f"Email address {value} is invalid"
        else:
            continue
        out.append({"message": message, "code": code, "context": {"propertyName": [name]}})
    return out


def _by_email(request: Request, email: str) -> dict[str, Any] | None:
    """The live contact holding ``email``: a written one, else a seeded one, else None."""
    state = sandbox_state(request)
    found = state.writes.by_natural(NAME, email)
    if found is not None and not found["archived"] and found["properties"].get("email") == email:
        return found
    m = SEEDED_EMAIL.search(email)
    i = int(m.group(1)) if m else 0
    if 1 <= i <= state.config.volume(f"{NAME}.contacts"):
        seeded = contact(i)
        if seeded["properties"]["email"] == email and state.writes.get(NAME, str(i)) is None:
            return seeded
    return None


def _by_id(request: Request, contact_id: str) -> dict[str, Any] | None:
    state = sandbox_state(request)
    found = state.writes.get(NAME, contact_id)
    if found is None and contact_id.isdigit():
        i = int(contact_id)
        if 1 <= i <= state.config.volume(f"{NAME}.contacts"):
            found = contact(i)
    return found if found is not None and not found["archived"] else None


def _write_contact(
    request: Request, current: dict[str, Any] | None, properties: dict[str, Any]
) -> dict[str, Any]:
    """Create (``current`` None) or update a contact with ``properties``; records the effect
    (``noop``, the contact untouched, when every property already holds its value)."""
    writes = sandbox_state(request).writes
    now = _now()
    kind = change_kind(None if current is None else current["properties"], properties)
    if current is not None and kind == "noop":
        effect = Effect(kind, current["id"], None, dict(properties), time.time())
        writes.commit(NAME, current, effect, current["properties"].get("email"))
        return current
    if current is None:
        cid = str(CREATED_BASE + writes.next_number(NAME))
        base = {"hs_object_id": cid, "createdate": now}
        current = {"id": cid, "properties": base, "createdAt": now, "archived": False}
    props = {**current["properties"], **properties, "lastmodifieddate": now}
    obj = {**current, "properties": props, "updatedAt": now}
    effect = Effect(kind, obj["id"], None, dict(properties), time.time())
    writes.commit(NAME, obj, effect, props.get("email"))
    return obj


# ---- the write flow ---------------------------------------------------------------------


async def _body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except ValueError:
        return None


def _invalid(message: str, headers: dict[str, str], **extra: Any) -> JSONResponse:
    return error(400, message, "VALIDATION_ERROR", headers, **extra)


async def _write(
    request: Request,
    execute: Callable[[Any, dict[str, str]], Outcome | Response],
    needs_body: bool = True,
) -> Response:
    """Gate, fault, body, execution (which validates), maybe a dropped answer."""
    denied, headers = await rate_gate(request, SCOPE)
    if denied is not None:
        return denied
    state = sandbox_state(request)
    if state.take_fail_before_commit():
        return JSONResponse(unavailable(), status_code=503, headers=headers)
    body = await _body(request) if needs_body else {}
    if not isinstance(body, dict):
        return _invalid("Invalid input JSON on line 1, column 1", headers)
    await hold(state.config.write_latency_ms)
    outcome = execute(body, headers)
    if isinstance(outcome, Response):
        return outcome
    status, doc, committed = outcome
    return delivered(reply(status, doc, headers), committed, state.take_drop_after_commit)


# ---- batch upsert -----------------------------------------------------------------------


def _input_error(item: Any) -> dict[str, Any] | None:
    """The 207 ``errors`` entry for one input, or None when the input is acceptable."""
    if not isinstance(item, dict):
        return _batch_error("Invalid input", [], [])
    ident = item.get("id")
    ids = [str(ident)] if ident is not None else []
    if item.get("idProperty") != "email":
        msg = f"idProperty must be a unique property; got {item.get('idProperty')!r}"
        return _batch_error(msg, ids, [{"message": msg, "code": "INVALID_ID_PROPERTY"}])
    if not isinstance(ident, str) or not EMAIL.match(ident):
        msg = f"Email address {ident} is invalid"
        return _batch_error(msg, ids, [{"message": msg, "code": "INVALID_EMAIL"}])
    problems = _problems(item.get("properties", {}))
    if problems:
        return _batch_error("Property values were not valid", ids, problems)
    return None


def _batch_error(message: str, ids: list[str], errors: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": message,
        "context": {"ids": ids},
        "errors": errors,
    }


def _batch_refusal(inputs: Any, headers: dict[str, str]) -> Response | None:
    """400 for the whole batch: not a list, more than 100 inputs, or one id twice."""
    if not isinstance(inputs, list) or not inputs:
        return _invalid("inputs must be a non-empty list", headers)
    if len(inputs) > MAX_INPUTS:
        return _invalid(
            f"Batch input limit exceeded: {len(inputs)} inputs, at most {MAX_INPUTS}",
            headers,
            context={"limit": [str(MAX_INPUTS)]},
        )
    ids: list[str] = [
        i["id"] for i in inputs if isinstance(i, dict) and isinstance(i.get("id"), str)
    ]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        return _invalid(f"Duplicate IDs found in batch input: {duplicates}", headers)
    return None


def _upsert_batch(request: Request, body: Any, headers: dict[str, str]) -> Outcome | Response:
    inputs = body.get("inputs")
    if (refused := _batch_refusal(inputs, headers)) is not None:
        return refused
    started = _now()
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    for item in inputs:
        if (problem := _input_error(item)) is not None:
            errors.append(problem)
            continue
        current = _by_email(request, item["id"])
        props = {**item.get("properties", {}), "email": item["id"]}
        obj = _write_contact(request, current, props)
        results.append({**obj, "new": current is None})
    doc: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        doc |= {"numErrors": len(errors), "errors": errors}
    doc |= {"startedAt": started, "completedAt": _now()}
    return (207 if errors else 200), doc, bool(results)


@router.post("/crm/v3/objects/contacts/batch/upsert")
async def batch_upsert(request: Request) -> Response:
    return await _write(request, lambda body, headers: _upsert_batch(request, body, headers))


# ---- single-object writes ---------------------------------------------------------------


def _create(request: Request, body: Any, headers: dict[str, str]) -> Outcome | Response:
    properties = body.get("properties", {})
    if problems := _problems(properties):
        return _invalid("Property values were not valid", headers, errors=problems)
    email = properties.get("email")
    existing = _by_email(request, email) if email else None
    if existing is not None:
        return error(
            409, f"Contact already exists. Existing ID: {existing['id']}", "CONFLICT", headers
        )
    return 201, _write_contact(request, None, properties), True


def _missing(contact_id: str, headers: dict[str, str]) -> Response:
    return error(404, f"resource not found: contact {contact_id}", "OBJECT_NOT_FOUND", headers)


@router.post("/crm/v3/objects/contacts")
async def create_contact(request: Request) -> Response:
    return await _write(request, lambda body, headers: _create(request, body, headers))


@router.patch("/crm/v3/objects/contacts/{contact_id}")
async def update_contact(request: Request, contact_id: str) -> Response:
    def execute(body: Any, headers: dict[str, str]) -> Outcome | Response:
        properties = body.get("properties", {})
        if problems := _problems(properties):
            return _invalid("Property values were not valid", headers, errors=problems)
        current = _by_id(request, contact_id)
        if current is None:
            return _missing(contact_id, headers)
        return 200, _write_contact(request, current, properties), True

    return await _write(request, execute)


@router.delete("/crm/v3/objects/contacts/{contact_id}")
async def archive_contact(request: Request, contact_id: str) -> Response:
    """Archive (204); HubSpot answers 204 for an unknown or archived id too, writing nothing."""

    def execute(_body: Any, _headers: dict[str, str]) -> Outcome:
        current = _by_id(request, contact_id)
        if current is None:
            return 204, None, False
        now = _now()
        obj = {**current, "archived": True, "archivedAt": now, "updatedAt": now}
        effect = Effect("delete", contact_id, None, {}, time.time())
        sandbox_state(request).writes.commit(NAME, obj, effect)
        return 204, None, True

    return await _write(request, execute, needs_body=False)


@router.get("/_sandbox/effects")
async def effects(request: Request) -> Response:
    """Sandbox-only: every contact write applied, in order, and counts per object."""
    return JSONResponse(effects_body(sandbox_state(request).writes, NAME))
