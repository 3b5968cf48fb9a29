"""Connection pages over ``customers``/``orders``: the field, its window, its parts.

A connection query is one operation whose first top-level field is ``customers`` or
``orders`` (alias allowed) with ``first`` and ``after`` (literal or variable); ``nodes``,
``edges`` and ``pageInfo`` are returned when selected, nodes always in full (other
sub-selections and arguments such as ``query:`` are ignored). Cursors are base64 JSON of the
last id, like Shopify's.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from sandbox.graphql import Document, GraphQLError, Sel, parse_error, undeclared, value
from sandbox.shopify.customers import current_node
from sandbox.shopify.data import COLLECTIONS, CUSTOMERS, Collection, order_node
from sandbox.state import SandboxState


def encode_cursor(ident: int) -> str:
    raw = json.dumps({"last_id": ident, "last_value": str(ident)}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def decode_cursor(cursor: Any, coll: Collection) -> int | None:
    if not isinstance(cursor, str):
        return None
    try:
        doc = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4), validate=True))
        index = int(doc["last_id"]) - coll.base
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return index if 1 <= index < 10**9 else None  # another collection's cursor is no cursor


def connection_field(doc: Document) -> Sel:
    """The document's first top-level field, which must be a ``customers``/``orders`` query."""
    if doc.first.kind != "NAME":
        raise parse_error(doc.first)
    field = next(iter(doc.root.values()))
    root = {"query": "QueryRoot", "mutation": "Mutation"}.get(doc.op, "Subscription")
    if doc.op != "query" or field.name not in COLLECTIONS:
        raise GraphQLError(
            f"Field '{field.name}' doesn't exist on type '{root}'",
            field.at.line,
            field.at.column,
            {"code": "undefinedField", "typeName": root, "fieldName": field.name},
            [doc.op, field.name],
        )
    if (error := undeclared(field, doc.declared, "query")) is not None:
        raise error
    return field


def window(conn: Sel, coll: Collection, variables: dict[str, Any]) -> tuple[int, int]:
    """(``first``, the index the page starts after) of a connection field."""
    first = value(conn.args.get("first"), variables)
    if first is None:
        tok = conn.args.get("first")
        raise GraphQLError(
            "you must provide one of first or last",
            tok.line if tok else 0,
            tok.column if tok else 0,
            path=[conn.key],
        )
    if not isinstance(first, int) or first < 0:
        raise GraphQLError(
            f"Argument 'first' on Field '{conn.name}' has an invalid value "
            f"({first}). Expected type 'Int'.",
            extensions={"code": "argumentLiteralsIncompatible"},
        )
    after = value(conn.args.get("after"), variables)
    if after is None:
        return first, 0
    start = decode_cursor(after, coll)
    if start is None:
        raise GraphQLError("Invalid cursor for current pagination sort.", path=[conn.key])
    return first, start


def connection(
    state: SandboxState, conn: Sel, coll: Collection, first: int, start: int
) -> tuple[dict[str, Any], int]:
    """The connection's selected parts (``edges``, ``nodes``, ``pageInfo``), and how many
    nodes the page holds."""
    volume = coll.volume(state)
    stop = min(volume, start + first)
    indices = range(start + 1, stop + 1)
    customers = CUSTOMERS.volume(state)
    make: Callable[[int], dict[str, Any]] = (
        (lambda i: current_node(state, i))
        if coll is CUSTOMERS
        else (lambda i: order_node(i, customers))
    )
    nodes = [make(i) for i in indices]
    selected = {s.name for s in (conn.sub or {}).values()}
    out: dict[str, Any] = {}
    if "edges" in selected:
        out["edges"] = [
            {"cursor": encode_cursor(coll.base + i), "node": n}
            for i, n in zip(indices, nodes, strict=True)
        ]
    if "nodes" in selected:
        out["nodes"] = nodes
    if "pageInfo" in selected:
        out["pageInfo"] = {
            "hasNextPage": stop < volume,
            "hasPreviousPage": start > 0,
            "startCursor": encode_cursor(coll.base + indices[0]) if nodes else None,
            "endCursor": encode_cursor(coll.base + indices[-1]) if nodes else None,
        }
    return out, len(nodes)
