"""Stripe customer writes: ``POST /v1/customers`` (create), ``POST /v1/customers/{id}`` (update),
and ``GET /v1/customers/{id}`` (retrieve: the customer as written, else as seeded).

Bodies are form-encoded (``email``, ``name``, ``description``, ``phone``, ``metadata[k]=v``;
on update an empty value unsets a field, ``metadata[k]=`` one key). ``Idempotency-Key``, as
docs.stripe.com/api/idempotent_requests describes it:

- the first answer whose execution began (status and body, errors such as a 404 included) is
  saved and replayed for the same key, with ``Idempotent-Replayed: true``; Stripe prunes keys
  after ≥ 24 h, the sandbox keeps them for its lifetime;
- the same key on another endpoint or with other parameters → 400 ``idempotency_error``;
- the same key while its first request still executes → 409 ``idempotency_error``;
- a request that fails parameter validation saves nothing (a corrected retry may reuse the key).

Faults (live config): ``fail_before_commit_next`` answers 500 ``api_error`` before anything is
claimed or written; ``drop_after_commit_next`` / ``drop_after_commit_rate`` commit (object,
effect, saved answer) and then cut the connection; ``write_latency_ms`` holds a write between
its claim and its commit. Created customers are readable through retrieve, the effects control
and updates; the listing stays the seeded, pure-function data.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.stripe.reads import CUSTOMER, NAME, _error, _gate, _request_id, _suffix, customer
from sandbox.writes import ClaimKind, Effect, Saved, delivered, effects_body, hold

router = APIRouter()

FIELDS = ("email", "name", "description", "phone")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
METADATA = re.compile(r"^metadata\[([^\]]*)\]$")
MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 50, 40, 500


@dataclass(frozen=True)
class Outcome:
    """What executing a write answered, and whether it changed anything."""

    status: int
    body: dict[str, Any]
    committed: bool


class _Invalid(Exception):
    """A parameter refused before execution begins (nothing is saved for the key)."""

    def __init__(self, message: str, param: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def _fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The client's fields: top-level ones, and ``metadata`` as a dict (``""`` = unset)."""
    out: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for name, value in pairs:
        if m := METADATA.match(name):
            metadata[m.group(1)] = value
        elif name == "metadata" and value == "":
            out["metadata"] = ""  # clears every key (update only)
        elif name in FIELDS:
            out[name] = value
        elif not name.startswith("expand["):
            raise _Invalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
    _check(out, metadata)
    if metadata:
        out["metadata"] = metadata
    return out


def _check(fields: dict[str, Any], metadata: dict[str, str]) -> None:
    email = fields.get("email")
    if email and not EMAIL.match(email):
        raise _Invalid(f"Invalid email address: {email}", "email", "email_invalid")
    if len(metadata) > MAX_METADATA_KEYS:
        raise _Invalid(f"Invalid metadata: at most {MAX_METADATA_KEYS} keys", "metadata")
    for k, v in metadata.items():
        if not k or len(k) > MAX_METADATA_KEY:
            raise _Invalid(
                f"Invalid metadata: keys must be 1 to {MAX_METADATA_KEY} characters",
                f"metadata[{k}]",
            )
        if len(v) > MAX_METADATA_VALUE:
            raise _Invalid(
                f"Invalid metadata: values can be at most {MAX_METADATA_VALUE} characters",
                f"metadata[{k}]",
            )


def _apply(obj: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with ``fields`` set; empty strings unset, like Stripe's form updates."""
    out = {**obj, "metadata": dict(obj.get("metadata") or {})}
    for name, value in fields.items():
        if name == "metadata":
            meta = {} if value == "" else {**out["metadata"], **value}
            out["metadata"] = {k: v for k, v in meta.items() if v != ""}
        else:
            out[name] = value or None
    return out


def _new_customer(number: int) -> dict[str, Any]:
    """A created customer before its fields are applied; its id never decodes as a seeded one."""
    return {
        **customer(1),
        "id": f"{CUSTOMER.prefix}_W{_suffix(f'created{number}', 13)}",
        "balance": 0,
        "created": int(time.time()),
        "currency": None,
        "delinquent": False,
        "description": None,
        "email": None,
        "invoice_prefix": _suffix(f"inv{number}", 8).upper(),
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
    }


def _stored(request: Request, customer_id: str) -> dict[str, Any] | None:
    """The current version of a customer: a written one, else the seeded one, else None."""
    state = sandbox_state(request)
    if (found := state.writes.get(NAME, customer_id)) is not None:
        return found
    i = CUSTOMER.index(customer_id, state.config.volume(f"{NAME}.customers"))
    return customer(i) if i is not None else None


def _commit(request: Request, obj: dict[str, Any], kind: str, fields: dict[str, Any]) -> None:
    key = request.headers.get("idempotency-key") or None
    effect = Effect("create" if kind == "create" else "update", obj["id"], key, fields, time.time())
    sandbox_state(request).writes.commit(NAME, obj, effect)


# ---- the idempotent write flow ----------------------------------------------------------


def _headers(rid: str, key: str | None) -> dict[str, str]:
    headers = {"request-id": rid}
    if key:
        headers |= {"idempotency-key": key, "original-request": rid}
    return headers


def _replayed(saved: Saved) -> JSONResponse:
    headers = {**saved.headers, "request-id": _request_id(), "idempotent-replayed": "true"}
    return JSONResponse(saved.body, status_code=saved.status or 200, headers=headers)


def _refused(kind: ClaimKind, saved: Saved, endpoint: str, key: str) -> JSONResponse:
    if kind == "in_flight":
        return _error(
            409,
            "There is currently another in-progress request using this Idempotent Key (that "
            "probably means you submitted twice, and the other request is still going "
            f"through): {key}. Please try again later.",
            err_type="idempotency_error",
        )
    if saved.endpoint != endpoint:
        return _error(
            400,
            "Keys for idempotent requests can only be used for the same endpoint they were "
            f"first used for ('{saved.endpoint}' vs '{endpoint}'). Try using a key other than "
            f"'{key}' if you meant to execute a different request.",
            err_type="idempotency_error",
        )
    return _error(
        400,
        "Keys for idempotent requests can only be used with the same parameters they were "
        f"first used with. Try using a key other than '{key}' if you meant to execute a "
        "different request.",
        err_type="idempotency_error",
    )


async def _write(
    request: Request, endpoint: str, execute: Callable[[dict[str, Any]], Outcome]
) -> Response:
    """Gate, fault, key claim, validation, execution, saved answer, maybe a dropped answer."""
    if (denied := await _gate(request)) is not None:
        return denied
    state = sandbox_state(request)
    if state.take_fail_before_commit():
        return _error(500, "An unknown error occurred", err_type="api_error")
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    key = request.headers.get("idempotency-key") or None
    if key is not None:
        claim = state.writes.claim(NAME, key, endpoint, repr(sorted(pairs)), None)
        if claim.kind == "replay" and claim.saved is not None:
            return _replayed(claim.saved)
        if claim.saved is not None:
            return _refused(claim.kind, claim.saved, endpoint, key)
    try:
        fields = _fields(pairs)
    except _Invalid as exc:
        state.writes.release(NAME, key)
        return _error(400, exc.message, code=exc.code, param=exc.param)
    await hold(state.config.write_latency_ms)
    outcome = execute(fields)
    rid = _request_id()
    headers = _headers(rid, key)
    if key is not None:
        state.writes.settle(NAME, key, outcome.status, outcome.body, headers)
    response = JSONResponse(outcome.body, status_code=outcome.status, headers=headers)
    return delivered(response, outcome.committed, state.take_drop_after_commit)


def _missing(customer_id: str) -> Outcome:
    body = _error(404, f"No such customer: '{customer_id}'", code="resource_missing", param="id")
    return Outcome(404, _json(body), committed=False)


def _json(response: JSONResponse) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(bytes(response.body))
    return doc


# ---- endpoints --------------------------------------------------------------------------


@router.post("/v1/customers")
async def create_customer(request: Request) -> Response:
    def execute(fields: dict[str, Any]) -> Outcome:
        number = sandbox_state(request).writes.next_number(NAME)
        obj = _apply(_new_customer(number), fields)
        _commit(request, obj, "create", fields)
        return Outcome(200, obj, committed=True)

    return await _write(request, "POST /v1/customers", execute)


@router.post("/v1/customers/{customer_id}")
async def update_customer(request: Request, customer_id: str) -> Response:
    def execute(fields: dict[str, Any]) -> Outcome:
        current = _stored(request, customer_id)
        if current is None:
            return _missing(customer_id)
        obj = _apply(current, fields)
        _commit(request, obj, "update", fields)
        return Outcome(200, obj, committed=True)

    return await _write(request, f"POST /v1/customers/{customer_id}", execute)


@router.get("/v1/customers/{customer_id}")
async def retrieve_customer(request: Request, customer_id: str) -> Response:
    """A customer as it stands (written version, else seeded); 404 ``resource_missing``."""
    if (denied := await _gate(request)) is not None:
        return denied
    found = _stored(request, customer_id)
    if found is None:
        return _error(404, f"No such customer: '{customer_id}'", code="resource_missing",
                      param="id")  # fmt: skip
    return JSONResponse(found, headers={"request-id": _request_id()})


@router.get("/_sandbox/effects")
async def effects(request: Request) -> Response:
    """Sandbox-only: every customer write applied, in order, and counts per object."""
    return JSONResponse(effects_body(sandbox_state(request).writes, NAME))
