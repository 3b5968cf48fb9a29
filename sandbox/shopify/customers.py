"""The ``customerUpdate(input: CustomerInput!)`` mutation, customers as written, and the
``customer(id:)`` query that reads one back (1 point; ``null`` for an unknown id; no effect).

``input`` is ``{id: "gid://shopify/Customer/N", email?, firstName?, lastName?, phone?, tags?,
note?}``, given as a variable or an inline literal. The answer is the payload Shopify's Admin
GraphQL reference documents, ``{"customer": {…}, "userErrors": [{"field": [...], "message"}]}``
(``field`` is the path to the input field, ``message`` the text; ``customer`` null when there
are user errors), shaped by the selection. Omitted fields are left as they are. The mutation
costs 10 points, as the Admin API charges mutations (and :mod:`.bulk_api` charges
``bulkOperationRunQuery``).

Sandbox choices (messages not verified against a live shop): an unknown or foreign id →
``Customer does not exist`` on ``["id"]``; a malformed email → ``Email is invalid`` on
``["email"]``; a malformed phone → ``Phone is invalid`` on ``["phone"]``; an input field outside
the list → a top-level ``INVALID_VARIABLE`` error, nothing charged. ``tags`` may be a list or one
comma-separated string. Writes go to the effects ledger at ``GET /shopify/_sandbox/effects``
(object id: the customer's gid; a write changing nothing is ``noop``); faults as for the other
vendors: ``fail_before_commit_next`` (503, nothing written or charged),
``drop_after_commit_*`` (written, answer cut), ``write_latency_ms``. Updated customers read back
through the GraphQL ``customers`` connection (:func:`current_node`), not through REST.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.graphql import (
    Document,
    GraphQLError,
    Sel,
    argument,
    project,
    shape,
    string_value,
    undeclared,
)
from sandbox.shopify import cost
from sandbox.shopify.data import CUSTOMER_BASE, CUSTOMERS, customer_node, gql_time
from sandbox.shopify.http import NAME, json_response, unavailable
from sandbox.state import SandboxState
from sandbox.writes import Effect, change_kind, delivered, effects_body, hold

router = APIRouter()

UPDATE_COST = 10.0  # GraphQL points: a mutation
READ_COST = 1.0  # one object
GID = re.compile(r"^gid://shopify/Customer/(\d+)$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{6,}$")
INPUT_FIELDS = frozenset({"id", "email", "firstName", "lastName", "phone", "tags", "note"})
UserError = dict[str, Any]


def current_node(state: SandboxState, i: int) -> dict[str, Any]:
    """Customer ``i`` as GraphQL renders it, with any update written to it."""
    seeded = customer_node(i)
    written = state.writes.get(NAME, seeded["id"])
    return written if written is not None else seeded


def _customer(state: SandboxState, gid: Any) -> dict[str, Any] | None:
    m = GID.match(gid) if isinstance(gid, str) else None
    i = int(m.group(1)) - CUSTOMER_BASE if m else 0
    return current_node(state, i) if 1 <= i <= CUSTOMERS.volume(state) else None


def _tags(raw: Any) -> list[str]:
    items = raw.split(",") if isinstance(raw, str) else list(raw or [])
    return [str(t).strip() for t in items if str(t).strip()]


def _changes(data: dict[str, Any]) -> tuple[dict[str, Any], list[UserError]]:
    """The node fields ``data`` sets, and the user errors of the values Shopify refuses."""
    changes = {k: v for k, v in data.items() if k in INPUT_FIELDS - {"id"}}
    errors: list[UserError] = []
    if "email" in changes and not EMAIL.match(str(changes["email"] or "")):
        errors.append({"field": ["email"], "message": "Email is invalid"})
    if changes.get("phone") is not None and not PHONE.match(str(changes["phone"])):
        errors.append({"field": ["phone"], "message": "Phone is invalid"})
    if "tags" in changes:
        changes["tags"] = _tags(changes["tags"])
    return changes, errors


def _apply(state: SandboxState, current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Write ``changes`` to the customer (``noop``: left untouched); records the effect."""
    kind = change_kind(current, changes)
    now = gql_time(datetime.now(UTC))
    node = current if kind == "noop" else {**current, **changes, "updatedAt": now}
    effect = Effect(kind, node["id"], None, dict(changes), time.time())
    state.writes.commit(NAME, node, effect)
    return node


def _update(state: SandboxState, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The mutation's payload, and whether anything was committed."""
    current = _customer(state, data.get("id"))
    if current is None:
        return {"customer": None, "userErrors": [_not_found()]}, False
    changes, errors = _changes(data)
    if errors:
        return {"customer": None, "userErrors": errors}, False
    return {"customer": _apply(state, current, changes), "userErrors": []}, True


def _not_found() -> UserError:
    return {"field": ["id"], "message": "Customer does not exist"}


def _invalid_input(data: Any) -> GraphQLError | None:
    """A top-level error for an ``input`` that is no CustomerInput at all."""
    if not isinstance(data, dict):
        return GraphQLError(
            "Field 'customerUpdate' is missing required arguments: input",
            extensions={"code": "missingRequiredArguments", "arguments": "input"},
            path=["mutation", "customerUpdate"],
        )
    unknown = sorted(set(data) - INPUT_FIELDS)
    if not unknown:
        return None
    return GraphQLError(
        f"Variable $input of type CustomerInput! was provided invalid value for {unknown[0]} "
        "(Field is not defined on CustomerInput)",
        extensions={"code": "INVALID_VARIABLE"},
    )


async def customer_update(
    request: Request, doc: Document, variables: dict[str, Any]
) -> Response | None:
    """Answer a ``customerUpdate`` mutation document, or None: not one."""
    field = next(iter(doc.root.values()))
    if doc.op != "mutation" or field.name != "customerUpdate":
        return None
    return await _run(request, field, doc.declared, variables)


async def _run(
    request: Request, field: Sel, declared: frozenset[str], variables: dict[str, Any]
) -> Response:
    """Variables, input, fault, cost, latency, the write, maybe a dropped answer."""
    state = sandbox_state(request)
    if (error := undeclared(field, declared, "mutation")) is not None:
        return cost.errors(error.body)
    data = argument(field, "input", variables)
    if (error := _invalid_input(data)) is not None:
        return cost.errors(error.body)
    if state.take_fail_before_commit():
        return json_response(unavailable(), 503)
    refused, available = cost.charge(state, UPDATE_COST)
    if refused is not None:
        return refused
    await hold(state.config.write_latency_ms)
    payload, committed = _update(state, data)
    answer = cost.answer(state, field.key, shape(field, payload), UPDATE_COST, available)
    return delivered(answer, committed, state.take_drop_after_commit)


def customer_read(request: Request, doc: Document, variables: dict[str, Any]) -> Response | None:
    """Answer a ``customer(id:)`` query (the customer as updated, or null), or None: not one."""
    field = next(iter(doc.root.values()))
    if doc.op != "query" or field.name != "customer":
        return None
    state = sandbox_state(request)
    if (error := undeclared(field, doc.declared, "query")) is not None:
        return cost.errors(error.body)
    gid = string_value(field.args.get("id"), variables)
    if not isinstance(gid, str):
        missing = GraphQLError(
            "Field 'customer' is missing required arguments: id",
            extensions={"code": "missingRequiredArguments", "arguments": "id"},
            path=["query", "customer"],
        )
        return cost.errors(missing.body)
    refused, available = cost.charge(state, READ_COST)
    if refused is not None:
        return refused
    node = _customer(state, gid)
    found = project(node, field.sub) if node is not None and field.sub else node
    return cost.answer(state, field.key, found, READ_COST, available)


@router.get("/_sandbox/effects")
async def effects(request: Request) -> Response:
    """Sandbox-only: every customer write applied, in order, and counts per object."""
    return JSONResponse(effects_body(sandbox_state(request).writes, NAME))
