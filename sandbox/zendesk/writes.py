"""Zendesk ticket writes: ``POST /api/v2/tickets`` (create, 201), ``PUT /api/v2/tickets/{id}``
(update, 200), ``GET /api/v2/tickets/{id}`` (show); each also answers with ``.json``.

``Idempotency-Key`` on create, as developer.zendesk.com (ticketing introduction, Idempotency)
and Zendesk's own Java client describe it: the first use answers ``x-idempotency-lookup: miss``;
a replay inside the key's lifetime answers the original status and body with ``hit``; the same
key with another payload → 400 ``IdempotentRequestError`` "Request parameters don't match the
given idempotency key". Keys live ``idempotency_ttl_s`` (live config; Zendesk: 2 hours); past
that a resend creates a second ticket, which is why a client sets ``external_id`` on create and
looks it up (``GET /api/v2/tickets?external_id=…``). Sandbox choices where Zendesk documents
nothing: the same key while its first request still executes → 409 ``IdempotentRequestError``;
updates ignore the key; a body without a ``ticket`` object → 400 ``InvalidValue``; an update
with no comment that changes no field is a ``noop`` effect (so a resent absolute update counts
once), one with a comment always an ``update`` (the thread grows).

Faults as for Stripe (:mod:`sandbox.stripe.writes`): ``fail_before_commit_next`` (503, nothing
written), ``drop_after_commit_next`` / ``drop_after_commit_rate``, ``write_latency_ms``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.writes import Effect, EffectKind, change_kind, delivered, effects_body, hold
from sandbox.zendesk.reads import (
    NAME,
    PRIORITIES,
    STATUSES,
    TYPES,
    _error,
    _unavailable,
    gate,
    ticket,
)

router = APIRouter()

CREATED_BASE = 1_000_000  # created tickets are numbered past any seeded volume
ENDPOINT = "POST /api/v2/tickets"
CHOICES = {"status": STATUSES, "priority": PRIORITIES, "type": TYPES}
Outcome = tuple[int, dict[str, Any], bool]  # (status, body, committed)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_invalid(field: str, description: str, error: str) -> Outcome:
    details = {field: [{"description": description, "error": error}]}
    body = {"error": "RecordInvalid", "description": "Record validation errors", "details": details}
    return 422, body, False


def _validate(fields: dict[str, Any], creating: bool) -> Outcome | None:
    """Zendesk's 422 ``RecordInvalid`` for a blank description or an unknown choice."""
    comment = fields.get("comment")
    body = comment.get("body") if isinstance(comment, dict) else None
    if creating and not (isinstance(body, str) and body.strip()):
        return _record_invalid("description", "Description: cannot be blank", "BlankValue")
    for name, allowed in CHOICES.items():
        if name in fields and fields[name] not in allowed:
            label = name.capitalize()
            return _record_invalid(name, f"{label}: {fields[name]!r} is not valid", "InvalidValue")
    return None


def _apply(current: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``current`` with the client's fields; a comment adds to the thread, not a field."""
    out = {**current, **{k: v for k, v in fields.items() if k != "comment"}, "updated_at": _now()}
    if "subject" in fields:
        out["raw_subject"] = fields["subject"]
    return out


def _new_ticket(request: Request, number: int, fields: dict[str, Any]) -> dict[str, Any]:
    base = f"{str(request.base_url).rstrip('/')}/{NAME}"
    tid = CREATED_BASE + number
    body = fields["comment"]["body"]
    blank = {**ticket(1, base), "url": f"{base}/api/v2/tickets/{tid}.json", "id": tid}
    blank |= {"created_at": _now(), "status": "new", "priority": None, "type": None}
    blank |= {"subject": body[:80], "description": body, "tags": [], "assignee_id": None}
    blank["via"] = {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}
    return _apply(blank, fields)


def _stored(request: Request, ticket_id: int) -> dict[str, Any] | None:
    state = sandbox_state(request)
    if (found := state.writes.get(NAME, str(ticket_id))) is not None:
        return found
    if 1 <= ticket_id <= state.config.volume(f"{NAME}.tickets"):
        return ticket(ticket_id, f"{str(request.base_url).rstrip('/')}/{NAME}")
    return None


def _commit(
    request: Request, obj: dict[str, Any], kind: EffectKind, fields: dict[str, Any]
) -> None:
    key = request.headers.get("idempotency-key") or None
    effect = Effect(kind, str(obj["id"]), key, fields, time.time())
    sandbox_state(request).writes.commit(NAME, obj, effect)


async def _ticket_fields(request: Request) -> dict[str, Any] | None:
    try:
        doc = json.loads(await request.body() or b"null")
    except ValueError:
        return None
    found = doc.get("ticket") if isinstance(doc, dict) else None
    return found if isinstance(found, dict) else None


# ---- the write flow ---------------------------------------------------------------------


def _claim(request: Request, raw: dict[str, Any], headers: dict[str, str]) -> Response | None:
    """A create's key: None to execute it (``miss`` set), else the answer to give instead."""
    key = request.headers.get("idempotency-key") or None
    if key is None:
        return None
    state = sandbox_state(request)
    fingerprint = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    claim = state.writes.claim(NAME, key, ENDPOINT, fingerprint, state.config.idempotency_ttl_s)
    if claim.kind == "new":
        headers["x-idempotency-lookup"] = "miss"
        return None
    saved = claim.saved
    if claim.kind == "replay" and saved is not None:
        replay = {**headers, "x-idempotency-lookup": "hit"}
        return JSONResponse(saved.body, status_code=saved.status or 201, headers=replay)
    if claim.kind == "in_flight":
        return _error(
            409, "IdempotentRequestError", "A request with this key is in progress", headers
        )
    return _error(
        400,
        "IdempotentRequestError",
        "Request parameters don't match the given idempotency key",
        headers,
    )


async def _write(
    request: Request, creating: bool, execute: Callable[[dict[str, Any]], Outcome]
) -> Response:
    """Gate, fault, body, key claim (creates), validation, execution, maybe a lost answer."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    state = sandbox_state(request)
    if state.take_fail_before_commit():
        return JSONResponse(_unavailable(), status_code=503, headers=headers)
    fields = await _ticket_fields(request)
    if fields is None:
        return _error(400, "InvalidValue", "The request body must hold a ticket object", headers)
    if creating and (answer := _claim(request, fields, headers)) is not None:
        return answer
    key = request.headers.get("idempotency-key") or None
    if (invalid := _validate(fields, creating)) is not None:
        state.writes.release(NAME, key if creating else None)
        return JSONResponse(invalid[1], status_code=invalid[0], headers=headers)
    await hold(state.config.write_latency_ms)
    status, body, committed = execute(fields)
    if creating and key is not None:
        state.writes.settle(NAME, key, status, body, {})
    response = JSONResponse(body, status_code=status, headers=headers)
    return delivered(response, committed, state.take_drop_after_commit)


# ---- endpoints --------------------------------------------------------------------------


@router.post("/api/v2/tickets.json")
@router.post("/api/v2/tickets")
async def create_ticket(request: Request) -> Response:
    def execute(fields: dict[str, Any]) -> Outcome:
        number = sandbox_state(request).writes.next_number(NAME)
        obj = _new_ticket(request, number, fields)
        _commit(request, obj, "create", fields)
        return 201, {"ticket": obj}, True

    return await _write(request, True, execute)


def _ticket_id(raw: str) -> int | None:
    raw = raw.removesuffix(".json")
    return int(raw) if raw.isdigit() else None


@router.put("/api/v2/tickets/{raw_id}")
async def update_ticket(request: Request, raw_id: str) -> Response:
    def execute(fields: dict[str, Any]) -> Outcome:
        tid = _ticket_id(raw_id)
        current = _stored(request, tid) if tid is not None else None
        if current is None:
            return 404, {"error": "RecordNotFound", "description": "Not found"}, False
        obj = _apply(current, fields)
        kind = "update" if "comment" in fields else change_kind(current, fields)
        _commit(request, obj, kind, fields)
        return 200, {"ticket": obj}, True

    return await _write(request, False, execute)


@router.get("/api/v2/tickets/{raw_id}")
async def show_ticket(request: Request, raw_id: str) -> Response:
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    tid = _ticket_id(raw_id)
    found = _stored(request, tid) if tid is not None else None
    if found is None:
        return _error(404, "RecordNotFound", "Not found", headers)
    return JSONResponse({"ticket": found}, headers=headers)


@router.get("/_sandbox/effects")
async def effects(request: Request) -> Response:
    """Sandbox-only: every ticket write applied, in order, and counts per object."""
    return JSONResponse(effects_body(sandbox_state(request).writes, NAME))
