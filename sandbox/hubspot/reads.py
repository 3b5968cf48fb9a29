"""HubSpot contact reads that see the writes (:mod:`.writes`): one contact, and a batch read.

- ``GET /crm/v3/objects/contacts/{id}?properties=a,b`` → 200 the contact (seeded or written,
  as updated); unknown or archived → 404 ``OBJECT_NOT_FOUND``;
- ``POST /crm/v3/objects/contacts/batch/read`` ``{"idProperty"?, "inputs": [{"id"}],
  "properties": [...]}`` (≤ 100 inputs) → 200 ``{"status": "COMPLETE", "results": [...]}``, or
  207 with ``numErrors`` and one ``OBJECT_NOT_FOUND`` error naming the ids not found, as
  HubSpot's batch reference shows. ``idProperty`` (``email`` here) reads by that property,
  else by contact id.

Properties: those asked for that a contact can hold (null when unset; other names dropped),
plus the always-returned ones; none asked → the defaults. Reads pass the rate gate with the
``crm.objects.contacts.read`` scope and are never effects.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.hubspot.data import ALWAYS_PROPERTIES, DEFAULT_PROPERTIES
from sandbox.hubspot.http import error, rate_gate
from sandbox.hubspot.writes import (
    MAX_INPUTS,
    PROPERTIES,
    _body,
    _by_email,
    _by_id,
    _missing,
    _now,
)

router = APIRouter()

SCOPE = "crm.objects.contacts.read"


def _shown(found: dict[str, Any], asked: list[str]) -> dict[str, Any]:
    """The contact as a read renders it: asked-for (or default) properties, always-on ones."""
    names = [n for n in dict.fromkeys(asked) if n in PROPERTIES] or list(DEFAULT_PROPERTIES)
    names += [n for n in ALWAYS_PROPERTIES if n not in names]
    props = found["properties"]
    return {**found, "properties": {n: props.get(n) for n in names}}


@router.get("/crm/v3/objects/contacts/{contact_id}")
async def read_contact(request: Request, contact_id: str) -> Response:
    denied, headers = await rate_gate(request, SCOPE)
    if denied is not None:
        return denied
    found = _by_id(request, contact_id)
    if found is None:
        return _missing(contact_id, headers)
    asked = [
        p.strip()
        for v in request.query_params.getlist("properties")
        for p in v.split(",")
        if p.strip()
    ]
    return JSONResponse(_shown(found, asked), headers=headers)


@router.post("/crm/v3/objects/contacts/batch/read")
async def batch_read(request: Request) -> Response:
    denied, headers = await rate_gate(request, SCOPE)
    if denied is not None:
        return denied
    body = await _body(request)
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not inputs or len(inputs) > MAX_INPUTS:
        message = f"inputs must be a list of 1 to {MAX_INPUTS} objects"
        return error(400, message, "VALIDATION_ERROR", headers)
    by = body.get("idProperty") or "hs_object_id"
    if by not in ("email", "hs_object_id"):
        return error(400, f"{by} is not a unique property", "VALIDATION_ERROR", headers)
    asked = [str(p) for p in body.get("properties") or []]
    started = _now()
    results, missing = [], []
    for item in inputs:
        ident = str(item.get("id")) if isinstance(item, dict) else ""
        found = _by_email(request, ident) if by == "email" else _by_id(request, ident)
        if found is None:
            missing.append(ident)
        else:
            results.append(_shown(found, asked))
    doc: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if missing:
        doc |= {"numErrors": 1, "errors": [_not_found(missing)]}
    doc |= {"startedAt": started, "completedAt": _now()}
    return JSONResponse(doc, status_code=207 if missing else 200, headers=headers)


def _not_found(ids: list[str]) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": "Could not get some CONTACT objects, they may be deleted or not exist. "
        "Check that ids are valid.",
        "context": {"ids": ids},
    }
