"""Bulk operations over the API: ``bulkOperationRunQuery``, ``currentBulkOperation`` and
``node(id:)`` on the GraphQL endpoint, the signed JSONL file, and the sandbox-only knobs.

The file URL works like a presigned storage URL: the signature is the credential, and a
request that also carries a token is refused. ``POST /shopify/_sandbox/bulk`` sets timing,
failures and duplicate/absent webhooks; ``GET`` reads them back with every operation.
Everything is forgotten by ``/_sandbox/reset``.
"""

from __future__ import annotations

import base64
import itertools
import os
import threading
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sandbox.common import sandbox_state
from sandbox.graphql import (
    Document,
    GraphQLError,
    Sel,
    project,
    shape,
    string_value,
    undeclared,
)
from sandbox.shopify import cost
from sandbox.shopify.bulk import BulkOp, BulkPlan, BulkStore, bulk_store, files_url, plan_bulk_query
from sandbox.shopify.data import CUSTOMERS
from sandbox.shopify.webhooks import deliver
from sandbox.state import SandboxState

BULK_BASE = 4_412_667_000_000  # gid numbers; never reused within a sandbox process
BULK_RUN_COST = 10.0  # GraphQL points: the mutation
BULK_READ_COST = 1.0  # currentBulkOperation / node
BULK_IN_PROGRESS = "A bulk query operation for this app and shop is already in progress: {gid}."
GID_PREFIX = "gid://shopify/BulkOperation/"
_BULK_SEQ = itertools.count(1)

router = APIRouter()


def bulk_request(request: Request, doc: Document, variables: dict[str, Any]) -> Response | None:
    """Answer a bulk-operation document (run or read), or None: not one, the paged path."""
    field = next(iter(doc.root.values()))
    if doc.op == "mutation" and field.name == "bulkOperationRunQuery":
        return _bulk_run(request, field, doc.declared, variables)
    if doc.op == "query" and field.name in ("currentBulkOperation", "node"):
        return _bulk_read(request, field, variables)
    return None


def _missing(field: str, argument: str, path: list[str] | None = None) -> JSONResponse:
    return cost.errors(
        GraphQLError(
            f"Field '{field}' is missing required arguments: {argument}",
            extensions={"code": "missingRequiredArguments", "arguments": argument},
            path=path,
        ).body
    )


def _plan(
    store: BulkStore, query: str, now: float, customers: int
) -> tuple[BulkPlan | None, list[dict[str, Any]]]:
    """The plan of a new operation, or the user errors saying why there is none."""
    running = store.running(now)
    if running is not None:
        message = BULK_IN_PROGRESS.format(gid=running.gid)
        return None, [{"field": ["query"], "message": message, "code": "OPERATION_IN_PROGRESS"}]
    try:
        return plan_bulk_query(query, customers), []
    except GraphQLError as exc:
        message = f"Invalid bulk query: {exc}"
        return None, [{"field": ["query"], "message": message, "code": "INVALID"}]


def _start(state: SandboxState, store: BulkStore, plan: BulkPlan, query: str, now: float) -> BulkOp:
    """Create the operation with the store's knobs (the ``*_next`` ones are spent) and arm
    the timer that ends it with its webhook."""
    outcome = "FAILED" if store.fail_next else "PARTIAL" if store.partial_next else "COMPLETED"
    store.fail_next = store.partial_next = False
    op = BulkOp(
        n=BULK_BASE + next(_BULK_SEQ),
        query=query,
        plan=plan,
        volume=plan.coll.volume(state),
        customers=CUSTOMERS.volume(state),
        created=now,
        duration_s=store.duration_s,
        outcome=outcome,
        signature=base64.urlsafe_b64encode(os.urandom(12)).decode(),
        event_id=str(uuid.uuid4()),
        webhook_copies=store.webhook_copies,
        webhook=not store.no_webhook,
    )
    store.ops[op.n] = op
    timer = threading.Timer(op.duration_s, deliver, args=(store, op))
    timer.daemon = True
    timer.start()
    return op


def _bulk_run(
    request: Request, field: Sel, declared: frozenset[str], variables: dict[str, Any]
) -> Response:
    state = sandbox_state(request)
    if (error := undeclared(field, declared, "mutation")) is not None:
        return cost.errors(error.body)
    query = string_value(field.args.get("query"), variables)
    if not isinstance(query, str):
        return _missing("bulkOperationRunQuery", "query", ["mutation", "bulkOperationRunQuery"])
    refused, available = cost.charge(state, BULK_RUN_COST)
    if refused is not None:
        return refused
    store = bulk_store(request)
    now = time.time()
    plan, errors = _plan(store, query, now, CUSTOMERS.volume(state))
    op = _start(state, store, plan, query, now) if plan is not None else None
    payload = {
        "bulkOperation": op.fields(now, files_url(request)) if op else None,
        "userErrors": errors,
    }
    return cost.answer(state, field.key, shape(field, payload), BULK_RUN_COST, available)


def _named(store: BulkStore, ident: str) -> BulkOp | None:
    tail = ident[len(GID_PREFIX) :] if ident.startswith(GID_PREFIX) else ""
    return store.ops.get(int(tail)) if tail.isdigit() else None


def _bulk_read(request: Request, field: Sel, variables: dict[str, Any]) -> Response:
    state = sandbox_state(request)
    ident = string_value(field.args.get("id"), variables)
    if field.name == "node" and not isinstance(ident, str):
        return _missing("node", "id")
    refused, available = cost.charge(state, BULK_READ_COST)
    if refused is not None:
        return refused
    store = bulk_store(request)
    found = _named(store, ident) if field.name == "node" else store.latest()
    doc = None
    if found is not None:
        found.reads += 1
        doc = found.fields(time.time(), files_url(request))
        doc = project(doc, field.sub) if field.sub else doc
    return cost.answer(state, field.key, doc, BULK_READ_COST, available)


def _file_op(request: Request, name: str) -> Response | BulkOp:
    """The operation a file URL names, or the storage-style refusal (400, 403, 404)."""
    if "authorization" in request.headers or "x-shopify-access-token" in request.headers:
        return Response(
            "InvalidArgument: Only one auth mechanism allowed",
            status_code=400,
            media_type="text/plain",
        )
    stem = name.removesuffix(".jsonl")
    partial = stem.endswith("-partial")
    stem = stem.removesuffix("-partial")
    op = bulk_store(request).ops.get(int(stem)) if stem.isdigit() else None
    if op is None or request.query_params.get("signature") != op.signature:
        return Response("AccessDenied", status_code=403, media_type="text/plain")
    status = op.status(time.time())
    if (status, partial) not in (("COMPLETED", False), ("FAILED", True)) or (
        partial and op.outcome != "PARTIAL"
    ):
        return Response("NoSuchKey", status_code=404, media_type="text/plain")
    return op


@router.get("/_files/bulk/{name}")
async def bulk_file(request: Request, name: str) -> Response:
    """A bulk operation's JSONL (``<n>.jsonl``, or ``<n>-partial.jsonl`` for partial data).
    Like a presigned storage URL: a request that also carries a token is refused (400), one
    without the signature too (403)."""
    op = _file_op(request, name)
    if not isinstance(op, BulkOp):
        return op
    op.downloads += 1
    lines = op.file_lines(name.removesuffix(".jsonl").endswith("-partial"))
    return Response(b"".join(line + b"\n" for line in lines), media_type="application/jsonl")


class BulkControl(BaseModel):
    """Sandbox-only knobs of bulk operations (unset ones are kept)."""

    model_config = ConfigDict(extra="forbid")

    duration_s: float | None = Field(None, ge=0, le=3600)
    fail_next: bool | None = None
    partial_next: bool | None = None
    webhook_copies: int | None = Field(None, ge=0, le=10)
    no_webhook: bool | None = None


@router.post("/_sandbox/bulk")
async def bulk_control(request: Request, body: BulkControl) -> Response:
    """Sandbox-only: ``duration_s`` (creation to end state), ``fail_next`` (FAILED,
    INTERNAL_SERVER_ERROR, no file), ``partial_next`` (FAILED, TIMEOUT, a partialDataUrl with
    the first half of the lines), ``webhook_copies`` (2: a duplicate delivery, same
    X-Shopify-Event-Id), ``no_webhook``. The two ``*_next`` apply to the next operation only."""
    store = bulk_store(request)
    for key, setting in body.model_dump(exclude_none=True).items():
        setattr(store, key, setting)
    return JSONResponse(store.settings())


@router.get("/_sandbox/bulk")
async def bulk_state(request: Request) -> Response:
    store = bulk_store(request)
    now = time.time()
    ops = [
        {
            "id": op.gid,
            "status": op.status(now),
            "query": op.query,
            "reads": op.reads,
            "downloads": op.downloads,
        }
        for op in store.ops.values()
    ]
    return JSONResponse({"settings": store.settings(), "operations": ops})
