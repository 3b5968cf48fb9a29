"""Bulk operations: a validated bulk query, one operation's life and JSONL file, the store.

An operation runs a connection query (customers or orders, no paging arguments) in the
background: CREATED, then RUNNING, then COMPLETED (or FAILED) ``duration_s`` of wall clock
after creation. Its file holds every node, then its nested connections' nodes, each with
``__parentId`` (last key), as Shopify writes them. A store lives as long as one generation
of the sandbox state: ``/_sandbox/reset`` (which replaces ``state.windows``) retires it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from sandbox.common import sandbox_state
from sandbox.graphql import GraphQLError, Sel, connection_nodes, parse, project
from sandbox.shopify.connection import connection_field
from sandbox.shopify.data import (
    COLLECTIONS,
    CUSTOMERS,
    Collection,
    customer_node,
    gql_time,
    line_item_node,
    line_items,
    order_node,
    rest_time,
)
from sandbox.shopify.http import NAME
from sandbox.state import SandboxState

BULK_DURATION_S = 1.0  # default time from creation to the end state
BULK_RUNNING_AFTER_S = 0.2  # CREATED for this long (at most half the duration), then RUNNING
TYPE_NAMES = {"customers": "Customer", "orders": "Order", "lineItems": "LineItem"}


def bulk_node(
    coll: Collection, i: int, customers: int
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Record ``i`` for a bulk query: (its GraphQL node, its nested connections' nodes)."""
    if coll is CUSTOMERS:
        return customer_node(i), {}
    return order_node(i, customers), {"lineItems": [line_item_node(*it) for it in line_items(i)]}


def _check_fields(sel: dict[str, Sel], sample: dict[str, Any], type_name: str) -> None:
    """Every selected field exists on the type; objects have selections, scalars none."""
    for s in sel.values():
        if s.name not in sample:
            raise GraphQLError(f"Field '{s.name}' doesn't exist on type '{type_name}'")
        found = sample[s.name]
        if isinstance(found, dict):
            if s.sub is None:
                raise GraphQLError(
                    f"Field must have selections (field '{s.name}' returns an object but has "
                    f"no selections. Did you mean '{s.name} {{ ... }}'?)"
                )
            _check_fields(s.sub, found, s.name[:1].upper() + s.name[1:])
        elif s.sub is not None and found is not None:
            raise GraphQLError(
                f"Selections can't be made on scalars (field '{s.name}' returns a scalar but "
                f"has selections [{', '.join(s.sub)}])"
            )


def _nodes_of(conn: Sel) -> dict[str, Sel]:
    nodes = connection_nodes(conn)
    if nodes is None:
        raise GraphQLError(
            f"Bulk queries must select the nodes of connection '{conn.name}' "
            "(`edges { node { … } }` or `nodes { … }`)."
        )
    return nodes


@dataclass(frozen=True)
class BulkPlan:
    """A validated bulk query: what each JSONL line holds."""

    coll: Collection
    fields: dict[str, Sel]  # the node's own fields (nested connections excluded)
    children: dict[str, dict[str, Sel]]  # nested connection name -> its node's fields


def plan_bulk_query(text: str, customers: int) -> BulkPlan:
    """Validate a bulk query (``GraphQLError`` says why it is refused)."""
    doc = parse(text)
    conn = connection_field(doc)  # one connection over customers/orders, as paged queries
    if doc.spreads:
        tok = doc.spreads[0]
        raise GraphQLError(
            "Fragment spreads are not supported by the sandbox", tok.line, tok.column
        )
    nodes = _nodes_of(conn)
    coll = COLLECTIONS[conn.name]
    sample, nested = bulk_node(coll, 1, max(1, customers))
    fields: dict[str, Sel] = {}
    children: dict[str, dict[str, Sel]] = {}
    for s in nodes.values():
        if s.name not in nested:
            fields[s.key] = s
            continue
        children[s.name] = _nodes_of(s)
        _check_fields(children[s.name], nested[s.name][0], TYPE_NAMES[s.name])
    _check_fields(fields, sample, TYPE_NAMES[coll.name])
    if children and not any(s.key == "id" and s.name == "id" for s in fields.values()):
        raise GraphQLError(
            "The parent 'node' field for a nested connection must select the 'id' field "
            "without an alias and must be of 'ID' return type. Connection fields without "
            f"'id': {', '.join(children)}."
        )
    return BulkPlan(coll, fields, children)


def _jsonl(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _stamp(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@dataclass
class BulkOp:
    n: int
    query: str
    plan: BulkPlan
    volume: int
    customers: int
    created: float  # wall clock
    duration_s: float
    outcome: str  # COMPLETED | FAILED | PARTIAL (FAILED with partial data)
    signature: str
    event_id: str
    webhook_copies: int
    webhook: bool
    reads: int = 0  # currentBulkOperation / node answers naming it
    downloads: int = 0
    _lines: list[bytes] | None = None

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.n}"

    @property
    def done_at(self) -> float:
        return self.created + self.duration_s

    def status(self, now: float) -> str:
        if now >= self.done_at:
            return "COMPLETED" if self.outcome == "COMPLETED" else "FAILED"
        if now - self.created >= min(BULK_RUNNING_AFTER_S, self.duration_s / 2):
            return "RUNNING"
        return "CREATED"

    @property
    def error_code(self) -> str | None:
        return {"FAILED": "INTERNAL_SERVER_ERROR", "PARTIAL": "TIMEOUT"}.get(self.outcome)

    def lines(self) -> list[bytes]:
        """Every JSONL line of the result (built once, on first use)."""
        if self._lines is None:
            out = []
            for i in range(1, self.volume + 1):
                node, nested = bulk_node(self.plan.coll, i, self.customers)
                out.append(_jsonl(project(node, self.plan.fields)))
                for name, sel in self.plan.children.items():
                    for child in nested[name]:
                        out.append(_jsonl({**project(child, sel), "__parentId": node["id"]}))
            self._lines = out
        return self._lines

    def file_lines(self, partial: bool) -> list[bytes]:
        lines = self.lines()
        return lines[: len(lines) // 2] if partial else lines

    def _progress(self, now: float, status: str) -> tuple[int, int, int]:
        """(lines in the full file, objects written, root objects written)."""
        if status in ("COMPLETED", "FAILED"):  # the file is built when first asked for
            written = self.file_lines(status != "COMPLETED")
            roots = sum(1 for line in written if b'"__parentId":' not in line)
            return len(self.lines()), len(written), roots
        # progress in root objects, without building the file on the event loop
        count = int(self.volume * max(0.0, now - self.created) / max(self.duration_s, 1e-9))
        return 0, count, count

    def fields(self, now: float, files_url: str) -> dict[str, Any]:
        """The BulkOperation object as GraphQL renders it."""
        status = self.status(now)
        ended = status in ("COMPLETED", "FAILED")
        total, count, roots = self._progress(now, status)
        url = partial = size = None
        if status == "COMPLETED" and total:
            url = f"{files_url}/{self.n}.jsonl?signature={self.signature}"
            size = str(sum(len(line) + 1 for line in self.lines()))
        if status == "FAILED" and self.outcome == "PARTIAL" and count:
            partial = f"{files_url}/{self.n}-partial.jsonl?signature={self.signature}"
        return {
            "__typename": "BulkOperation",
            "id": self.gid,
            "type": "QUERY",
            "status": status,
            "errorCode": self.error_code if status == "FAILED" else None,
            "createdAt": gql_time(_stamp(self.created)),
            "completedAt": gql_time(_stamp(self.done_at)) if ended else None,
            "objectCount": str(count),
            "rootObjectCount": str(roots),
            "fileSize": size,
            "url": url,
            "partialDataUrl": partial,
            "query": self.query,
        }

    def webhook_body(self) -> bytes:
        """The ``bulk_operations/finish`` payload (REST rendering, lower-case enums)."""
        status = self.status(self.done_at)
        code = self.error_code if status == "FAILED" else None
        return json.dumps(
            {
                "admin_graphql_api_id": self.gid,
                "completed_at": rest_time(_stamp(self.done_at)),
                "created_at": rest_time(_stamp(self.created)),
                "error_code": code.lower() if code else None,
                "status": status.lower(),
                "type": "query",
            },
            separators=(",", ":"),
        ).encode()


class BulkStore:
    """Bulk operations, their knobs, the webhook subscriptions and delivery attempts of one
    sandbox state generation."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.generation = state.windows
        self.lock = threading.Lock()  # timer threads write attempts
        self.ops: dict[int, BulkOp] = {}
        self.duration_s = BULK_DURATION_S
        self.fail_next = False
        self.partial_next = False
        self.webhook_copies = 1
        self.no_webhook = False
        self.subscriptions: dict[str, str] = {}  # callback_url -> secret
        self.attempts: list[dict[str, Any]] = []

    @property
    def current(self) -> bool:
        return self.state.windows is self.generation

    def settings(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration_s,
            "fail_next": self.fail_next,
            "partial_next": self.partial_next,
            "webhook_copies": self.webhook_copies,
            "no_webhook": self.no_webhook,
        }

    def running(self, now: float) -> BulkOp | None:
        return next(
            (op for op in self.ops.values() if op.status(now) in ("CREATED", "RUNNING")), None
        )

    def latest(self) -> BulkOp | None:
        return self.ops[max(self.ops)] if self.ops else None


def bulk_store(request: Request) -> BulkStore:
    """The app's current store (a new one after a reset)."""
    state = sandbox_state(request)
    store = getattr(request.app.state, "shopify_bulk", None)
    if store is None or not store.current:
        store = request.app.state.shopify_bulk = BulkStore(state)
    return store


def files_url(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/{NAME}/_files/bulk"
