"""Shopify Admin double: REST customers/orders, a GraphQL subset, two buckets, OAuth refresh.

URL layout, as on a real shop (``https://{shop}.myshopify.com``), under the ``/shopify`` prefix:

- ``GET  /admin/api/{version}/customers.json`` and ``/orders.json`` (REST, ``link`` paging);
- ``POST /admin/api/{version}/graphql.json`` (GraphQL: ``customers``/``orders`` connections);
- ``POST /admin/oauth/access_token`` (refresh grant; expiring offline tokens, rotating).

``{version}`` must look like ``2025-10`` (or ``unstable``), else 404; versions older than the
oldest supported one fall forward to it, as Shopify does (``X-Shopify-API-Version`` says which).

Rate limits, both derived from the live config so tests can shrink them:

- REST: a leaky bucket of ``budget("shopify")`` calls leaking ``budget / window`` per second
  (Shopify standard: 40 and 2/s = ``rate_budgets={"shopify": 40}, rate_window_ms=20000``).
  Every authenticated REST answer carries ``X-Shopify-Shop-Api-Call-Limit: used/size``; a full
  bucket answers 429, ``Retry-After: 2.0`` (more when the configured leak is slower than that).
- GraphQL: a cost bucket of ``rate_budgets["shopify.graphql"]`` points (default 25 × the REST
  bucket, i.e. 1000 for 40) refilling in one window (1000 → 50/s). A connection query
  requests ``first + 2`` points and is charged ``nodes returned + 2``. When the bucket cannot
  cover the request: HTTP 200 ``{"errors":[{"message":"Throttled",...THROTTLED}]}`` with
  ``extensions.cost``; ``rate_budgets["shopify.graphql_429"] = 1`` answers the same body with
  HTTP 429 instead (some clients report that). Refusals are free.

Bulk operations (see the section below): ``bulkOperationRunQuery``, ``currentBulkOperation``
and ``node(id:)`` on the same endpoint, a signed JSONL file under ``/shopify/_files/bulk/``, the
``bulk_operations/finish`` webhook (shop ``SHOP_DOMAIN``), and sandbox-only controls
``/shopify/_sandbox/bulk`` and ``/shopify/_sandbox/webhooks``.

GraphQL understood: one operation, its first top-level field ``customers`` or ``orders`` (alias
allowed) with ``first`` (capped at 250), ``after`` (literal or variable); ``nodes``, ``edges``
and ``pageInfo`` are returned when selected, nodes always in full (other sub-selections and
arguments such as ``query:`` are ignored). Syntax errors, unknown fields, undeclared
variables, bad cursors and a missing ``first`` answer HTTP 200 with graphql-ruby shaped errors.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import requests
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sandbox.common import preamble, sandbox_state, token_call, token_form
from sandbox.state import SandboxState, TokenError

NAME = "shopify"
ROTATES_REFRESH_TOKENS = True  # expiring offline tokens: every refresh issues a new pair
API_VERSION = "2025-10"
OLDEST_SUPPORTED = "2025-01"
MAX_LIMIT = 250
DEFAULT_LIMIT = 50
GRAPHQL_PER_REST = 25  # GraphQL bucket = 25 × REST bucket by default (1000 vs 40)
REST_BUCKET = "shopify:rest-bucket"  # keys in state.windows (reset with it): [level, t]
GRAPHQL_BUCKET = "shopify:graphql-bucket"  # [available, t]
GRAPHQL_KEY = "shopify.graphql"  # rate_budgets key: GraphQL bucket size
GRAPHQL_429_KEY = "shopify.graphql_429"  # rate_budgets key: 1 → throttle with HTTP 429
RETRY_AFTER = 2.0
PAGINATION_DOC = "https://shopify.dev/api/usage/pagination-rest"
UNAUTHORIZED = "[API] Invalid API key or access token (unrecognized login or wrong password)"
TOO_MANY = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service."
)

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])

# ---- deterministic data, a pure function of the index -------------------------------------

CUSTOMER_BASE = 6_940_095_430_000  # ids ascend with the index, like Shopify's
ORDER_BASE = 5_512_036_870_000
LINE_ITEM_BASE = 13_605_112_000_000
EPOCH = datetime(2021, 3, 1, 9, 0, tzinfo=UTC)
STEP_S = 9_973  # seconds between consecutive records' created_at (monotonic in the index)
SHOP_TZ = timezone(timedelta(hours=-5))  # the shop's time zone: REST renders in it
# fmt: off
ASCII_FIRST = (
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter",
)
UNICODE_FIRST = ("José", "Zoë", "Łukasz", "李雷", "Дмитрий", "Nguyễn", "𠮷乃", "Renée", "Çağrı")
LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez",
    "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
)
STATES = ("enabled", "enabled", "enabled", "disabled", "invited", "declined")
PRODUCTS = (
    ("Aeropress Coffee Maker", "AERO-01", "39.95"), ("Ceramic Mug", "MUG-12", "14.00"),
    ("Burr Grinder", "GRND-7", "129.00"), ("Paper Filters (350)", "FLT-350", "8.50"),
    ("Gooseneck Kettle", "KTL-2", "74.99"), ("Single Origin Beans 1kg", "BEAN-1K", "32.00"),
)
# fmt: on
FINANCIAL = ("paid", "paid", "paid", "pending", "refunded", "partially_refunded", "authorized")


def _created(i: int) -> datetime:
    return EPOCH + timedelta(seconds=i * STEP_S)


def _updated(i: int) -> datetime:
    return _created(i) + timedelta(seconds=(i * 104_729) % 8_000_000)


def _rest_time(dt: datetime) -> str:
    """REST renders times in the shop's zone with an offset: ``2021-03-01T04:00:00-05:00``."""
    return dt.astimezone(SHOP_TZ).isoformat(timespec="seconds")


def _gql_time(dt: datetime) -> str:
    """GraphQL renders UTC with a ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _person(i: int) -> tuple[str, str, str]:
    first = (
        UNICODE_FIRST[(i // 7) % len(UNICODE_FIRST)]
        if i % 7 == 0
        else (ASCII_FIRST[i % len(ASCII_FIRST)])
    )
    last = LAST[(i * 31) % len(LAST)]
    return first, last, f"{last.lower()}.{i}@example.com"


def _phone(i: int) -> str | None:
    return None if i % 3 == 0 else f"+1613555{i % 10000:04d}"


def customer(i: int) -> dict[str, Any]:
    """Customer ``i`` (1-based) as REST renders it."""
    first, last, email = _person(i)
    orders_count = (i * 7) % 12
    return {
        "id": CUSTOMER_BASE + i,
        "email": email,
        "created_at": _rest_time(_created(i)),
        "updated_at": _rest_time(_updated(i)),
        "first_name": first,
        "last_name": last,
        "orders_count": orders_count,
        "state": STATES[i % len(STATES)],
        "total_spent": f"{orders_count * 37.5 + (i % 100) / 4:.2f}",
        "last_order_id": ORDER_BASE + i if orders_count else None,
        "note": None,
        "verified_email": i % 5 != 0,
        "multipass_identifier": None,
        "tax_exempt": False,
        "tags": "vip" if i % 10 == 0 else "",
        "last_order_name": f"#{1000 + i}" if orders_count else None,
        "currency": "USD",
        "phone": _phone(i),
        "admin_graphql_api_id": f"gid://shopify/Customer/{CUSTOMER_BASE + i}",
    }


def customer_node(i: int) -> dict[str, Any]:
    """Customer ``i`` as GraphQL renders it (camelCase, gid, UTC)."""
    first, last, email = _person(i)
    return {
        "id": f"gid://shopify/Customer/{CUSTOMER_BASE + i}",
        "legacyResourceId": str(CUSTOMER_BASE + i),
        "email": email,
        "firstName": first,
        "lastName": last,
        "phone": _phone(i),
        "createdAt": _gql_time(_created(i)),
        "updatedAt": _gql_time(_updated(i)),
        "numberOfOrders": str((i * 7) % 12),
        "state": STATES[i % len(STATES)].upper(),
        "verifiedEmail": i % 5 != 0,
        "tags": ["vip"] if i % 10 == 0 else [],
    }


def _order_status(i: int) -> tuple[bool, bool]:
    """(closed, cancelled): every 9th order is cancelled (and closed), every 4th closed."""
    cancelled = i % 9 == 0
    return cancelled or i % 4 == 0, cancelled


def _order_customer(i: int, customers: int) -> int | None:
    return (i * 7) % customers + 1 if customers else None


def _line_items(i: int) -> list[tuple[int, str, str, str, int]]:
    items = []
    for k in range(1 + i % 3):
        title, sku, price = PRODUCTS[(i + k * 5) % len(PRODUCTS)]
        items.append((LINE_ITEM_BASE + i * 3 + k, title, sku, price, 1 + (i + k) % 3))
    return items


def order(i: int, customers: int) -> dict[str, Any]:
    """Order ``i`` (1-based) as REST renders it; ``customers`` = volume, for the link."""
    closed, cancelled = _order_status(i)
    items = _line_items(i)
    subtotal = sum(float(p) * q for _, _, _, p, q in items)
    tax = round(subtotal * 0.13, 2)
    created = _created(i)
    c = _order_customer(i, customers)
    cust = None
    if c is not None:
        first, last, email = _person(c)
        cust = {
            "id": CUSTOMER_BASE + c,
            "email": email,
            "first_name": first,
            "last_name": last,
            "admin_graphql_api_id": f"gid://shopify/Customer/{CUSTOMER_BASE + c}",
        }
    return {
        "id": ORDER_BASE + i,
        "admin_graphql_api_id": f"gid://shopify/Order/{ORDER_BASE + i}",
        "name": f"#{1000 + i}",
        "order_number": 1000 + i,
        "email": cust["email"] if cust else "",
        "created_at": _rest_time(created),
        "updated_at": _rest_time(_updated(i)),
        "processed_at": _rest_time(created),
        "closed_at": _rest_time(created + timedelta(days=3)) if closed else None,
        "cancelled_at": _rest_time(created + timedelta(hours=5)) if cancelled else None,
        "cancel_reason": "customer" if cancelled else None,
        "financial_status": "voided" if cancelled else FINANCIAL[i % len(FINANCIAL)],
        "fulfillment_status": "fulfilled" if closed and not cancelled else None,
        "currency": "USD",
        "subtotal_price": f"{subtotal:.2f}",
        "total_tax": f"{tax:.2f}",
        "total_price": f"{subtotal + tax:.2f}",
        "customer": cust,
        "line_items": [
            {"id": lid, "title": title, "sku": sku, "price": price, "quantity": qty}
            for lid, title, sku, price, qty in items
        ],
    }


def order_node(i: int, customers: int) -> dict[str, Any]:
    rest = order(i, customers)
    return {
        "id": rest["admin_graphql_api_id"],
        "legacyResourceId": str(rest["id"]),
        "name": rest["name"],
        "email": rest["email"] or None,
        "createdAt": _gql_time(_created(i)),
        "updatedAt": _gql_time(_updated(i)),
        "closedAt": _gql_time(datetime.fromisoformat(rest["closed_at"]))
        if rest["closed_at"]
        else None,
        "cancelledAt": _gql_time(datetime.fromisoformat(rest["cancelled_at"]))
        if rest["cancelled_at"]
        else None,
        "displayFinancialStatus": rest["financial_status"].upper(),
        "displayFulfillmentStatus": "FULFILLED" if rest["fulfillment_status"] else "UNFULFILLED",
        "totalPriceSet": {"shopMoney": {"amount": rest["total_price"], "currencyCode": "USD"}},
        "customer": {"id": rest["customer"]["admin_graphql_api_id"]} if rest["customer"] else None,
    }


@dataclass(frozen=True)
class Collection:
    name: str  # "customers" | "orders"
    base: int  # id = base + index

    def volume(self, state: SandboxState) -> int:
        return state.config.volume(f"{NAME}.{self.name}")


CUSTOMERS = Collection("customers", CUSTOMER_BASE)
ORDERS = Collection("orders", ORDER_BASE)
COLLECTIONS = {"customers": CUSTOMERS, "orders": ORDERS}

# ---- shared response helpers --------------------------------------------------------------


def _unavailable() -> dict[str, Any]:
    return {"errors": "Service Unavailable"}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        body, status_code=status, headers={"X-Request-Id": str(uuid.uuid4()), **(headers or {})}
    )


def _version(raw: str) -> str | None:
    """The version served: ``None`` (404) unless it looks like one; old ones fall forward."""
    if raw == "unstable":
        return raw
    if not re.fullmatch(r"\d{4}-(01|04|07|10)", raw):
        return None
    return max(raw, OLDEST_SUPPORTED)


def _access_token(request: Request) -> str | None:
    return request.headers.get("x-shopify-access-token") or None


def _auth(request: Request) -> JSONResponse | None:
    """Unknown and expired tokens get the same 401 (Shopify does not say which)."""
    if sandbox_state(request).check_access(NAME, _access_token(request)) is None:
        return None
    return _json({"errors": UNAUTHORIZED}, 401)


# ---- the REST leaky bucket ----------------------------------------------------------------


def _take_rest(state: SandboxState) -> tuple[bool, int, int, float]:
    """One call into the bucket: (accepted, used, size, seconds until one slot frees)."""
    cfg = state.config
    size = cfg.budget(NAME)
    leak = size / (cfg.rate_window_ms / 1000)
    now = time.monotonic()
    with state.lock:
        bucket = state.windows[REST_BUCKET]
        if not bucket:
            bucket.extend((0.0, now))
        level = max(0.0, bucket[0] - (now - bucket[1]) * leak)
        accepted = level + 1 <= size
        if accepted:
            level += 1
        else:
            state.rate_limited += 1
        bucket[0], bucket[1] = level, now
    wait = (level + 1 - size) / leak if leak > 0 else RETRY_AFTER
    return accepted, min(size, math.ceil(level - 1e-9)), size, max(0.0, wait)


# ---- REST: cursors and the link header ----------------------------------------------------


def _b64(doc: dict[str, Any]) -> str:
    raw = json.dumps(doc, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(value: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        doc = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


@dataclass(frozen=True)
class Filters:
    lo: int  # first index allowed (created_at_min)
    hi: int  # last index allowed (created_at_max, volume)
    status: str  # orders only: open | closed | cancelled | any

    def match(self, coll: Collection, i: int) -> bool:
        if coll is not ORDERS or self.status == "any":
            return True
        closed, cancelled = _order_status(i)
        return {"open": not closed, "closed": closed, "cancelled": cancelled}[self.status]

    def scan(self, coll: Collection, start: int, step: int) -> Iterator[int]:
        i = start
        while self.lo <= i <= self.hi:
            if self.match(coll, i):
                yield i
            i += step


def _parse_time(value: str) -> datetime | None:
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        return None
    return dt if dt.tzinfo else dt.replace(tzinfo=SHOP_TZ)


def _index_at_or_after(dt: datetime) -> int:
    return max(1, math.ceil((dt - EPOCH).total_seconds() / STEP_S))


def _index_at_or_before(dt: datetime) -> int:
    return math.floor((dt - EPOCH).total_seconds() / STEP_S)


def _rest_error(message: Any, status: int, headers: dict[str, str]) -> JSONResponse:
    return _json(message if isinstance(message, dict) else {"errors": message}, status, headers)


async def _rest_list(request: Request, version: str, coll: Collection) -> Response:
    """``limit`` 1..250 (default 50), ``page_info`` (then only ``limit`` and ``fields``),
    ``created_at_min/max``, ``fields``; orders also ``status`` (default ``open``). Pages go
    by id ascending; ``link`` carries ``rel="previous"`` and/or ``rel="next"``, no link at
    all when everything fits one page."""
    state = sandbox_state(request)
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault
    served = _version(version)
    if served is None:
        return _json({"errors": "Not Found"}, 404)
    if (denied := _auth(request)) is not None:
        return denied
    accepted, used, size, wait = _take_rest(state)
    headers = {"X-Shopify-Shop-Api-Call-Limit": f"{used}/{size}", "X-Shopify-API-Version": served}
    if not accepted:
        retry = f"{max(RETRY_AFTER, wait):.1f}"
        return _rest_error(TOO_MANY, 429, {**headers, "Retry-After": retry})

    params = request.query_params
    raw_limit = params.get("limit", str(DEFAULT_LIMIT))
    try:
        limit = int(raw_limit)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        return _rest_error("limit - Invalid value.", 400, headers)
    volume = coll.volume(state)
    wanted = [f.strip() for v in params.getlist("fields") for f in v.split(",") if f.strip()]

    if "page_info" in params:
        for key in params:
            if key not in ("page_info", "limit", "fields"):
                return _rest_error(
                    {
                        key: f"{key} cannot be passed when page_info is present. See "
                        f"{PAGINATION_DOC} for more information."
                    },
                    400,
                    headers,
                )
        cursor = _unb64(params["page_info"])
        try:
            assert cursor is not None and cursor.get("r") == coll.name
            direction, last = cursor["direction"], int(cursor["last_id"]) - coll.base
            filters = Filters(
                int(cursor["lo"]), min(int(cursor["hi"]), volume), str(cursor.get("status", "any"))
            )
            assert direction in ("next", "prev") and filters.status in (
                "open",
                "closed",
                "cancelled",
                "any",
            )
        except (AssertionError, KeyError, TypeError, ValueError):
            return _rest_error("page_info - Invalid value.", 400, headers)
    else:
        lo, hi = 1, volume
        for key, bound in (("created_at_min", "lo"), ("created_at_max", "hi")):
            if key in params:
                dt = _parse_time(params[key])
                if dt is None:
                    return _rest_error(f"{key} - Invalid value.", 400, headers)
                if bound == "lo":
                    lo = max(lo, _index_at_or_after(dt))
                else:
                    hi = min(hi, _index_at_or_before(dt))
        status = "any"
        if coll is ORDERS:
            status = params.get("status", "open")
            if status not in ("open", "closed", "cancelled", "any"):
                return _rest_error("status - Invalid value.", 400, headers)
        filters = Filters(lo, hi, status)
        direction, last = "next", 0

    if direction == "next":
        it = filters.scan(coll, max(last + 1, filters.lo), 1)
        indices = [i for _, i in zip(range(limit), it, strict=False)]
    else:
        it = filters.scan(coll, min(last - 1, filters.hi), -1)
        indices = sorted(i for _, i in zip(range(limit), it, strict=False))

    make = customer if coll is CUSTOMERS else (lambda i: order(i, CUSTOMERS.volume(state)))
    records = []
    for i in indices:
        rec = make(i)
        records.append({k: rec[k] for k in wanted if k in rec} if wanted else rec)

    links = []
    if indices:
        keep = {"r": coll.name, "lo": filters.lo, "hi": filters.hi}
        if coll is ORDERS:
            keep["status"] = filters.status
        base = f"{str(request.base_url).rstrip('/')}{request.url.path}"
        extra = [("fields", ",".join(wanted))] if wanted else []
        for rel, direction_, edge, step in (
            ("previous", "prev", indices[0], -1),
            ("next", "next", indices[-1], 1),
        ):
            if next(filters.scan(coll, edge + step, step), None) is None:
                continue
            info = _b64(
                {
                    "direction": direction_,
                    "last_id": coll.base + edge,
                    "last_value": str(coll.base + edge),
                    **keep,
                }
            )
            query = urlencode([("page_info", info), ("limit", limit), *extra])
            links.append(f'<{base}?{query}>; rel="{rel}"')
    if links:
        headers["Link"] = ", ".join(links)
    return _json({coll.name: records}, 200, headers)


@router.get("/admin/api/{version}/customers.json")
async def list_customers(request: Request, version: str) -> Response:
    return await _rest_list(request, version, CUSTOMERS)


@router.get("/admin/api/{version}/orders.json")
async def list_orders(request: Request, version: str) -> Response:
    return await _rest_list(request, version, ORDERS)


# ---- GraphQL: a tokenizer and just enough of a parser -------------------------------------


class GraphQLError(Exception):
    def __init__(
        self,
        message: str,
        line: int = 0,
        column: int = 0,
        extensions: dict[str, Any] | None = None,
        path: list[str] | None = None,
    ):
        super().__init__(message)
        self.body: dict[str, Any] = {"message": message}
        if line:
            self.body["locations"] = [{"line": line, "column": column}]
        if path:
            self.body["path"] = path
        if extensions:
            self.body["extensions"] = extensions


@dataclass(frozen=True)
class Token:
    kind: str  # NAME, INT, FLOAT, STRING, VAR or the punctuator itself
    value: str
    line: int
    column: int


PUNCT_NAMES = {
    "{": "LCURLY",
    "}": "RCURLY",
    "(": "LPAREN",
    ")": "RPAREN",
    "[": "LBRACKET",
    "]": "RBRACKET",
    ":": "COLON",
    "=": "EQUALS",
    "!": "BANG",
    "@": "DIR_SIGN",
    "...": "ELLIPSIS",
    "|": "PIPE",
    "&": "AMP",
}
_TOKEN = re.compile(
    r'(?P<ws>[\s,\ufeff]+|#[^\n]*)|(?P<block>"""(?:[^"\\]|\\.|"(?!""))*""")'
    r'|(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<var>\$[_A-Za-z][_0-9A-Za-z]*)'
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
    r"|(?P<punct>\.\.\.|[{}()\[\]:=!@|&])"
)
_CLOSERS = {"}": "{", ")": "(", "]": "["}


def tokenize(text: str) -> list[Token]:
    """Tokens with 1-based positions; bracket balance checked like a parser would."""
    tokens: list[Token] = []
    stack: list[Token] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        col = pos - line_start + 1
        if m is None:
            raise GraphQLError(
                f'Parse error on "{text[pos]}" (error) at [{line}, {col}]', line, col
            )
        kind = m.lastgroup or ""
        value = m.group()
        if kind not in ("ws",):
            if kind == "punct":
                tok = Token(value, value, line, col)
                if value in "{([":
                    stack.append(tok)
                elif value in _CLOSERS:
                    if not stack or stack[-1].value != _CLOSERS[value]:
                        raise GraphQLError(
                            f'Parse error on "{value}" ({PUNCT_NAMES[value]}) at [{line}, {col}]',
                            line,
                            col,
                        )
                    stack.pop()
            else:
                tok = Token(
                    {
                        "block": "STRING",
                        "string": "STRING",
                        "var": "VAR",
                        "num": "FLOAT" if "." in value else "INT",
                        "name": "NAME",
                    }[kind],
                    value,
                    line,
                    col,
                )
            tokens.append(tok)
        newlines = value.count("\n")
        if newlines:
            line += newlines
            line_start = pos + value.rindex("\n") + 1
        pos = m.end()
    if stack:
        raise GraphQLError("Unexpected end of document")
    return tokens


@dataclass(frozen=True)
class ConnectionQuery:
    key: str  # alias or field name: the key under `data`
    field: str
    args: dict[str, Token]
    selected: frozenset[str]  # immediate sub-fields of the connection
    declared: frozenset[str]  # declared variable names (without `$`)


def _skip_block(tokens: list[Token], i: int) -> int:
    """Index just past the bracket group opening at ``tokens[i]``."""
    depth = 0
    while i < len(tokens):
        if tokens[i].kind in ("{", "(", "["):
            depth += 1
        elif tokens[i].kind in ("}", ")", "]"):
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _arguments(tokens: list[Token], i: int) -> tuple[dict[str, Token], int]:
    """A field's `(name: value, …)` at tokens[i], if any: each argument's value token (the
    opening one of an object or list), and the index after the closing parenthesis."""
    args: dict[str, Token] = {}
    if i >= len(tokens) or tokens[i].kind != "(":
        return args, i
    end = _skip_block(tokens, i)
    j = i + 1
    while j < end - 1:
        if tokens[j].kind == "NAME" and tokens[j + 1].kind == ":":
            value = tokens[j + 2]
            args[tokens[j].value] = value
            j = _skip_block(tokens, j + 2) if value.kind in ("{", "[") else j + 3
        else:
            j += 1
    return args, end


def parse_query(text: str) -> ConnectionQuery:
    tokens = tokenize(text)
    if not tokens:
        raise GraphQLError("Unexpected end of document")
    i = 0
    declared: set[str] = set()
    first = tokens[0]
    op = "query"
    if first.kind == "NAME":
        if first.value not in ("query", "mutation", "subscription"):
            raise GraphQLError(
                f'Parse error on "{first.value}" (IDENTIFIER) at [{first.line}, {first.column}]',
                first.line,
                first.column,
            )
        op = first.value
        i = 1
        if i < len(tokens) and tokens[i].kind == "NAME":
            i += 1
        if i < len(tokens) and tokens[i].kind == "(":
            end = _skip_block(tokens, i)
            declared = {t.value[1:] for t in tokens[i:end] if t.kind == "VAR"}
            i = end
    elif first.kind != "{":
        raise GraphQLError(
            f'Parse error on "{first.value}" ({PUNCT_NAMES.get(first.kind, first.kind)}) '
            f"at [{first.line}, {first.column}]",
            first.line,
            first.column,
        )
    while i < len(tokens) and tokens[i].kind != "{":
        i += 1  # directives on the operation
    if i + 1 >= len(tokens) or tokens[i + 1].kind != "NAME":
        tok = tokens[i + 1] if i + 1 < len(tokens) else tokens[-1]
        raise GraphQLError(
            f'Parse error on "{tok.value}" ({PUNCT_NAMES.get(tok.kind, tok.kind)}) '
            f"at [{tok.line}, {tok.column}]",
            tok.line,
            tok.column,
        )
    i += 1
    name_tok = tokens[i]
    key = field = name_tok.value
    if i + 2 < len(tokens) and tokens[i + 1].kind == ":" and tokens[i + 2].kind == "NAME":
        name_tok = tokens[i + 2]
        field = name_tok.value
        i += 2
    i += 1
    root = {"query": "QueryRoot", "mutation": "Mutation"}.get(op, "Subscription")
    if op != "query" or field not in COLLECTIONS:
        raise GraphQLError(
            f"Field '{field}' doesn't exist on type '{root}'",
            name_tok.line,
            name_tok.column,
            {"code": "undefinedField", "typeName": root, "fieldName": field},
            [op, field],
        )
    args, i = _arguments(tokens, i)
    selected: set[str] = set()
    if i < len(tokens) and tokens[i].kind == "{":
        end = _skip_block(tokens, i)
        j = i + 1
        while j < end - 1:
            tok = tokens[j]
            if tok.kind in ("{", "("):
                j = _skip_block(tokens, j)
                continue
            if tok.kind == "NAME" and not (j + 1 < end and tokens[j + 1].kind == ":"):
                selected.add(tok.value)
            j += 1
    for tok in args.values():
        if tok.kind == "VAR" and tok.value[1:] not in declared:
            raise GraphQLError(
                f"Variable {tok.value} is used by anonymous query but not declared",
                tok.line,
                tok.column,
                {"code": "variableNotDefined", "variableName": tok.value[1:]},
            )
    return ConnectionQuery(key, field, args, frozenset(selected), frozenset(declared))


def _arg(q: ConnectionQuery, name: str, variables: dict[str, Any]) -> Any:
    tok = q.args.get(name)
    if tok is None:
        return None
    if tok.kind == "VAR":
        return variables.get(tok.value[1:])
    if tok.kind == "INT":
        return int(tok.value)
    if tok.kind == "STRING":
        return json.loads(tok.value) if not tok.value.startswith('"""') else tok.value[3:-3]
    return None if tok.value == "null" else tok.value


def _encode_cursor(ident: int) -> str:
    raw = json.dumps({"last_id": ident, "last_value": str(ident)}, separators=(",", ":"))
    return base64.b64encode(raw.encode()).decode()


def _decode_cursor(value: Any, coll: Collection) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        doc = json.loads(base64.b64decode(value + "=" * (-len(value) % 4), validate=True))
        index = int(doc["last_id"]) - coll.base
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return index if 1 <= index < 10**9 else None  # another collection's cursor is no cursor


# ---- the GraphQL cost bucket --------------------------------------------------------------


def _gql_limits(state: SandboxState) -> tuple[float, float]:
    cfg = state.config
    maximum = float(cfg.rate_budgets.get(GRAPHQL_KEY, GRAPHQL_PER_REST * cfg.budget(NAME)))
    return maximum, maximum / (cfg.rate_window_ms / 1000)


def _gql_take(state: SandboxState, cost: float) -> tuple[bool, float]:
    """Reserve ``cost`` points if available: (accepted, currently available after)."""
    maximum, restore = _gql_limits(state)
    now = time.monotonic()
    with state.lock:
        bucket = state.windows[GRAPHQL_BUCKET]
        if not bucket:
            bucket.extend((maximum, now))
        available = min(maximum, bucket[0] + (now - bucket[1]) * restore)
        accepted = available >= cost
        if accepted:
            available -= cost
        else:
            state.rate_limited += 1
        bucket[0], bucket[1] = available, now
    return accepted, available


def _gql_refund(state: SandboxState, points: float) -> float:
    maximum, _ = _gql_limits(state)
    with state.lock:
        bucket = state.windows[GRAPHQL_BUCKET]
        bucket[0] = min(maximum, bucket[0] + points)
        return bucket[0]


def _cost(
    state: SandboxState, requested: float, actual: float | None, available: float
) -> dict[str, Any]:
    maximum, restore = _gql_limits(state)
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {
            "maximumAvailable": maximum,
            "currentlyAvailable": math.floor(available),
            "restoreRate": restore,
        },
    }


def _gql_errors(
    *errors: dict[str, Any], extensions: dict[str, Any] | None = None, status: int = 200
) -> JSONResponse:
    body: dict[str, Any] = {"errors": list(errors)}
    if extensions:
        body["extensions"] = extensions
    return _json(body, status)


def _gql_charge(state: SandboxState, requested: float) -> tuple[JSONResponse | None, float]:
    """Reserve ``requested`` points: (None, available after) or (the refusal, available):
    MAX_COST_EXCEEDED beyond the bucket's size, THROTTLED (200, or 429 if configured)."""
    maximum, _ = _gql_limits(state)
    if requested > maximum:
        _, available = _gql_take(state, 0)
        return _gql_errors(
            {
                "message": f"Query cost is {requested:.0f}, which exceeds the single query "
                f"max cost limit ({maximum:.0f}).",
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": maximum},
            },
            extensions={"cost": _cost(state, requested, None, available)},
        ), available
    accepted, available = _gql_take(state, requested)
    if not accepted:
        status = 429 if state.config.rate_budgets.get(GRAPHQL_429_KEY) else 200
        return _gql_errors(
            {
                "message": "Throttled",
                "extensions": {
                    "code": "THROTTLED",
                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                },
            },
            extensions={"cost": _cost(state, requested, None, available)},
            status=status,
        ), available
    return None, available


@router.post("/admin/api/{version}/graphql.json")
async def graphql(request: Request, version: str) -> Response:
    state = sandbox_state(request)
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault
    if _version(version) is None:
        return _json({"errors": "Not Found"}, 404)
    if (denied := _auth(request)) is not None:
        return denied
    raw = await request.body()
    variables: dict[str, Any] = {}
    if request.headers.get("content-type", "").startswith("application/graphql"):
        text: Any = raw.decode("utf-8", "replace")
    else:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        text = body.get("query") if isinstance(body, dict) else None
        variables = (body.get("variables") or {}) if isinstance(body, dict) else {}
    if not isinstance(text, str) or not text.strip() or not isinstance(variables, dict):
        return _json({"errors": {"query": "Required parameter missing or invalid"}}, 400)
    bulk = _bulk_request(request, text, variables)
    if bulk is not None:
        return bulk
    try:
        q = parse_query(text)
        coll = COLLECTIONS[q.field]
        first = _arg(q, "first", variables)
        if first is None:
            tok = q.args.get("first")
            raise GraphQLError(
                "you must provide one of first or last",
                tok.line if tok else 0,
                tok.column if tok else 0,
                path=[q.key],
            )
        if not isinstance(first, int) or first < 0:
            raise GraphQLError(
                f"Argument 'first' on Field '{q.field}' has an invalid value "
                f"({first}). Expected type 'Int'.",
                extensions={"code": "argumentLiteralsIncompatible"},
            )
        after = _arg(q, "after", variables)
        start = 0
        if after is not None:
            decoded = _decode_cursor(after, coll)
            if decoded is None:
                raise GraphQLError("Invalid cursor for current pagination sort.", path=[q.key])
            start = decoded
    except GraphQLError as exc:
        return _gql_errors(exc.body)

    first = min(first, MAX_LIMIT)
    requested = float(first + 2)
    refused, available = _gql_charge(state, requested)
    if refused is not None:
        return refused

    volume = coll.volume(state)
    stop = min(volume, start + first)
    indices = range(start + 1, stop + 1)
    customers = CUSTOMERS.volume(state)
    make: Callable[[int], dict[str, Any]] = (
        customer_node if coll is CUSTOMERS else (lambda i: order_node(i, customers))
    )
    nodes = [make(i) for i in indices]
    actual = float(len(nodes) + 2)
    available = _gql_refund(state, requested - actual)
    conn: dict[str, Any] = {}
    if "edges" in q.selected:
        conn["edges"] = [
            {"cursor": _encode_cursor(coll.base + i), "node": n}
            for i, n in zip(indices, nodes, strict=True)
        ]
    if "nodes" in q.selected:
        conn["nodes"] = nodes
    if "pageInfo" in q.selected:
        conn["pageInfo"] = {
            "hasNextPage": stop < volume,
            "hasPreviousPage": start > 0,
            "startCursor": _encode_cursor(coll.base + indices[0]) if nodes else None,
            "endCursor": _encode_cursor(coll.base + indices[-1]) if nodes else None,
        }
    return _json(
        {"data": {q.key: conn}, "extensions": {"cost": _cost(state, requested, actual, available)}}
    )


# ---- GraphQL bulk operations ----------------------------------------------------------------
# `bulkOperationRunQuery` runs a connection query (customers or orders, no paging arguments) in
# the background: CREATED, then RUNNING, then COMPLETED (or FAILED) `duration_s` of wall clock
# after creation. `currentBulkOperation` and `node(id:)` read it back; its `url` is a signed
# JSONL file on the sandbox host (refused with a token, like a presigned storage URL). On
# completion a registered `bulk_operations/finish` subscription gets Shopify's webhook, signed
# with X-Shopify-Hmac-Sha256, from a background thread. Sandbox-only controls:
# `POST /shopify/_sandbox/bulk` (timing, failures, duplicate/absent webhooks),
# `POST /shopify/_sandbox/webhooks` (the subscription), `GET` both to read them back.
# All of it is forgotten by `/_sandbox/reset`.

SHOP_DOMAIN = "toolqueue-sandbox.myshopify.com"  # X-Shopify-Shop-Domain of every webhook
BULK_TOPIC = "bulk_operations/finish"
BULK_BASE = 4_412_667_000_000  # gid numbers; never reused within a sandbox process
BULK_DURATION_S = 1.0  # default time from creation to the end state
BULK_RUNNING_AFTER_S = 0.2  # CREATED for this long (at most half the duration), then RUNNING
BULK_RUN_COST = 10.0  # GraphQL points: the mutation
BULK_READ_COST = 1.0  # currentBulkOperation / node
WEBHOOK_TIMEOUT_S = 3.0
BULK_IN_PROGRESS = "A bulk query operation for this app and shop is already in progress: {gid}."
_BULK_SEQ = itertools.count(1)


@dataclass(frozen=True)
class Sel:
    """One selected field: its response key (alias or name), name, arguments, sub-selection."""

    key: str
    name: str
    args: dict[str, Token]
    sub: dict[str, Sel] | None


def _parse_error(tok: Token) -> GraphQLError:
    return GraphQLError(
        f'Parse error on "{tok.value}" ({PUNCT_NAMES.get(tok.kind, tok.kind)}) '
        f"at [{tok.line}, {tok.column}]",
        tok.line,
        tok.column,
    )


def _selection(tokens: list[Token], i: int) -> tuple[dict[str, Sel], int]:
    """The selection set opening at ``tokens[i]`` (a ``{``): (fields by key, index after it).
    Inline fragments (``... on T { }``) merge into their parent; arguments keep their first
    token (enough for scalars and variables)."""
    out: dict[str, Sel] = {}
    i += 1

    def kind(j: int) -> str:
        return tokens[j].kind if j < len(tokens) else "EOF"

    while kind(i) not in ("}", "EOF"):
        tok = tokens[i]
        if tok.kind == "...":
            i += 1
            if kind(i) == "NAME" and tokens[i].value == "on":
                i += 2
            if kind(i) != "{":
                raise GraphQLError(
                    "Fragment spreads are not supported by the sandbox", tok.line, tok.column
                )
            sub, i = _selection(tokens, i)
            out.update(sub)
            continue
        if tok.kind != "NAME":
            raise _parse_error(tok)
        key = name = tok.value
        i += 1
        if kind(i) == ":":
            if kind(i + 1) != "NAME":
                raise _parse_error(tokens[min(i + 1, len(tokens) - 1)])
            name = tokens[i + 1].value
            i += 2
        args, i = _arguments(tokens, i)
        while kind(i) == "@":  # directives
            i += 2
            if kind(i) == "(":
                i = _skip_block(tokens, i)
        sub = None
        if kind(i) == "{":
            sub, i = _selection(tokens, i)
        out[key] = Sel(key, name, args, sub)
    return out, i + 1


def _document(text: str) -> tuple[str, frozenset[str], dict[str, Sel]]:
    """(operation type, declared variables, root selection) of a one-operation document."""
    tokens = tokenize(text)
    if not tokens:
        raise GraphQLError("Unexpected end of document")
    op, i, declared = "query", 0, frozenset[str]()
    if tokens[0].kind == "NAME":
        op = tokens[0].value
        if op not in ("query", "mutation", "subscription"):
            raise _parse_error(tokens[0])
        i = 1
        if i < len(tokens) and tokens[i].kind == "NAME":
            i += 1
        if i < len(tokens) and tokens[i].kind == "(":
            end = _skip_block(tokens, i)
            declared = frozenset(t.value[1:] for t in tokens[i:end] if t.kind == "VAR")
            i = end
    while i < len(tokens) and tokens[i].kind != "{":
        i += 1
    if i >= len(tokens):
        raise GraphQLError("Unexpected end of document")
    root, _ = _selection(tokens, i)
    return op, declared, root


def _line_item_node(lid: int, title: str, sku: str, price: str, qty: int) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/LineItem/{lid}",
        "name": title,
        "title": title,
        "sku": sku,
        "quantity": qty,
        "originalUnitPriceSet": {"shopMoney": {"amount": price, "currencyCode": "USD"}},
    }


def _bulk_node(
    coll: Collection, i: int, customers: int
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """Record ``i`` for a bulk query: (its GraphQL node, its nested connections' nodes)."""
    if coll is CUSTOMERS:
        return customer_node(i), {}
    return order_node(i, customers), {
        "lineItems": [_line_item_node(*item) for item in _line_items(i)]
    }


_TYPE_NAMES = {"customers": "Customer", "orders": "Order", "lineItems": "LineItem"}


def _connection_nodes(conn: Sel) -> dict[str, Sel] | None:
    """The node selection of a connection field: ``edges { node { … } }`` or ``nodes { … }``."""
    sub = conn.sub or {}
    edges = next((s for s in sub.values() if s.name == "edges"), None)
    if edges is not None and edges.sub:
        node = next((s for s in edges.sub.values() if s.name == "node"), None)
        if node is not None and node.sub is not None:
            return node.sub
    nodes = next((s for s in sub.values() if s.name == "nodes"), None)
    return nodes.sub if nodes is not None else None


def _check_fields(sel: dict[str, Sel], sample: dict[str, Any], type_name: str) -> None:
    for s in sel.values():
        if s.name not in sample:
            raise GraphQLError(f"Field '{s.name}' doesn't exist on type '{type_name}'")
        value = sample[s.name]
        if isinstance(value, dict):
            if s.sub is None:
                raise GraphQLError(
                    f"Field must have selections (field '{s.name}' returns an object but has "
                    f"no selections. Did you mean '{s.name} {{ ... }}'?)"
                )
            _check_fields(s.sub, value, s.name[:1].upper() + s.name[1:])
        elif s.sub is not None and value is not None:
            raise GraphQLError(
                f"Selections can't be made on scalars (field '{s.name}' returns a scalar but "
                f"has selections [{', '.join(s.sub)}])"
            )


def _project(node: dict[str, Any], sel: dict[str, Sel]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in sel.values():
        value = node.get(s.name)
        out[s.key] = _project(value, s.sub) if isinstance(value, dict) and s.sub else value
    return out


@dataclass(frozen=True)
class BulkPlan:
    """A validated bulk query: what each JSONL line holds."""

    coll: Collection
    fields: dict[str, Sel]  # the node's own fields (nested connections excluded)
    children: dict[str, dict[str, Sel]]  # nested connection name -> its node's fields


def plan_bulk_query(text: str, customers: int) -> BulkPlan:
    """Validate a bulk query (``GraphQLError`` says why it is refused)."""
    q = parse_query(text)  # one connection over customers/orders, as the paged endpoint reads
    _, _, root = _document(text)
    conn = next(iter(root.values()))
    nodes = _connection_nodes(conn)
    if nodes is None:
        raise GraphQLError(
            f"Bulk queries must select the nodes of connection '{q.field}' "
            "(`edges { node { … } }` or `nodes { … }`)."
        )
    coll = COLLECTIONS[q.field]
    sample, nested = _bulk_node(coll, 1, max(1, customers))
    fields: dict[str, Sel] = {}
    children: dict[str, dict[str, Sel]] = {}
    for s in nodes.values():
        if s.name in nested:
            child = _connection_nodes(s)
            if child is None:
                raise GraphQLError(
                    f"Bulk queries must select the nodes of connection '{s.name}' "
                    "(`edges { node { … } }` or `nodes { … }`)."
                )
            _check_fields(child, nested[s.name][0], _TYPE_NAMES[s.name])
            children[s.name] = child
        else:
            fields[s.key] = s
    _check_fields(fields, sample, _TYPE_NAMES[coll.name])
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
        """Every JSONL line of the result: a node, then its nested connections' nodes, each
        with ``__parentId`` (last key), as Shopify writes them."""
        if self._lines is None:
            out = []
            for i in range(1, self.volume + 1):
                node, nested = _bulk_node(self.plan.coll, i, self.customers)
                out.append(_jsonl(_project(node, self.plan.fields)))
                for name, sel in self.plan.children.items():
                    for child in nested[name]:
                        line = {**_project(child, sel), "__parentId": node["id"]}
                        out.append(_jsonl(line))
            self._lines = out
        return self._lines

    def file_lines(self, partial: bool) -> list[bytes]:
        lines = self.lines()
        return lines[: len(lines) // 2] if partial else lines

    def fields(self, now: float, files_url: str) -> dict[str, Any]:
        """The BulkOperation object as GraphQL renders it."""
        status = self.status(now)
        ended = status in ("COMPLETED", "FAILED")
        if ended:  # the file is built once, when first asked for after the end
            total = len(self.lines())
            written = self.file_lines(status != "COMPLETED")
            count = len(written)
            roots = sum(1 for line in written if b'"__parentId":' not in line)
        else:  # progress in root objects, without building the file on the event loop
            total = 0
            roots = count = int(
                self.volume * max(0.0, now - self.created) / max(self.duration_s, 1e-9)
            )
        url = partial = None
        size: str | None = None
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
            "createdAt": _gql_time(_stamp(self.created)),
            "completedAt": _gql_time(_stamp(self.done_at)) if ended else None,
            "objectCount": str(count),
            "rootObjectCount": str(roots),
            "fileSize": size,
            "url": url,
            "partialDataUrl": partial,
            "query": self.query,
        }

    def webhook_body(self) -> bytes:
        status = self.status(self.done_at)
        code = self.error_code if status == "FAILED" else None
        return json.dumps(
            {
                "admin_graphql_api_id": self.gid,
                "completed_at": _rest_time(_stamp(self.done_at)),
                "created_at": _rest_time(_stamp(self.created)),
                "error_code": code.lower() if code else None,
                "status": status.lower(),
                "type": "query",
            },
            separators=(",", ":"),
        ).encode()


class BulkStore:
    """Bulk operations, their knobs, the webhook subscriptions and delivery attempts of one
    sandbox state generation: a reset (which replaces ``state.windows``) retires it."""

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

    def finish(self, op: BulkOp) -> None:
        """Timer thread: POST the bulk_operations/finish webhook to every subscription."""
        if not self.current or not op.webhook:
            return
        with self.lock:
            subscriptions = list(self.subscriptions.items())
        body = op.webhook_body()
        for _ in range(op.webhook_copies):
            for url, secret in subscriptions:
                digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
                webhook_id = str(uuid.uuid4())
                headers = {
                    "Content-Type": "application/json",
                    "X-Shopify-Topic": BULK_TOPIC,
                    "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
                    "X-Shopify-Shop-Domain": SHOP_DOMAIN,
                    "X-Shopify-API-Version": API_VERSION,
                    "X-Shopify-Webhook-Id": webhook_id,
                    "X-Shopify-Event-Id": op.event_id,
                    "X-Shopify-Triggered-At": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                }
                attempt: dict[str, Any] = {
                    "t": time.time(),
                    "url": url,
                    "topic": BULK_TOPIC,
                    "operation": op.gid,
                    "webhook_id": webhook_id,
                    "event_id": op.event_id,
                    "status": None,
                    "error": None,
                }
                try:
                    resp = requests.post(
                        url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT_S,
                        allow_redirects=False,
                    )  # fmt: skip
                    attempt["status"] = resp.status_code
                except requests.RequestException as exc:
                    attempt["error"] = f"{type(exc).__name__}: {exc}"[:300]
                with self.lock:
                    self.attempts.append(attempt)


def _bulk(request: Request) -> BulkStore:
    state = sandbox_state(request)
    store = getattr(request.app.state, "shopify_bulk", None)
    if store is None or not store.current:
        store = request.app.state.shopify_bulk = BulkStore(state)
    return store


def _files_url(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/{NAME}/_files/bulk"


def _string_arg(tok: Token | None, variables: dict[str, Any]) -> Any:
    if tok is None:
        return None
    if tok.kind == "VAR":
        return variables.get(tok.value[1:])
    if tok.kind == "STRING" and tok.value.startswith('"""'):
        return _block_string(tok.value[3:-3])
    if tok.kind == "STRING":
        try:
            return json.loads(tok.value)
        except ValueError:
            return None
    return None


def _block_string(raw: str) -> str:
    """GraphQL block string value: common indentation and blank edge lines removed."""
    lines = raw.replace('\\"""', '"""').splitlines()
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    cut = min(indents) if indents else 0
    lines = lines[:1] + [line[cut:] for line in lines[1:]]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _bulk_request(request: Request, text: str, variables: dict[str, Any]) -> Response | None:
    """Answer a bulk-operation document (run or read), or None: not one, the paged path."""
    try:
        op, declared, root = _document(text)
    except GraphQLError:
        return None  # the connection parser reports it in its own words
    if not root:
        return None
    field = next(iter(root.values()))
    if op == "mutation" and field.name == "bulkOperationRunQuery":
        return _bulk_run(request, field, declared, variables)
    if op == "query" and field.name in ("currentBulkOperation", "node"):
        return _bulk_read(request, field, variables)
    return None


def _undeclared(field: Sel, declared: frozenset[str]) -> JSONResponse | None:
    for tok in field.args.values():
        if tok.kind == "VAR" and tok.value[1:] not in declared:
            return _gql_errors(
                GraphQLError(
                    f"Variable {tok.value} is used by anonymous mutation but not declared",
                    tok.line,
                    tok.column,
                    {"code": "variableNotDefined", "variableName": tok.value[1:]},
                ).body
            )
    return None


def _answer(
    state: SandboxState, key: str, value: Any, cost: float, available: float
) -> JSONResponse:
    return _json(
        {"data": {key: value}, "extensions": {"cost": _cost(state, cost, cost, available)}}
    )


def _bulk_run(
    request: Request, field: Sel, declared: frozenset[str], variables: dict[str, Any]
) -> Response:
    state = sandbox_state(request)
    if (undeclared := _undeclared(field, declared)) is not None:
        return undeclared
    query = _string_arg(field.args.get("query"), variables)
    if not isinstance(query, str):
        return _gql_errors(
            GraphQLError(
                "Field 'bulkOperationRunQuery' is missing required arguments: query",
                extensions={"code": "missingRequiredArguments", "arguments": "query"},
                path=["mutation", "bulkOperationRunQuery"],
            ).body
        )
    refused, available = _gql_charge(state, BULK_RUN_COST)
    if refused is not None:
        return refused
    store = _bulk(request)
    now = time.time()
    errors: list[dict[str, Any]] = []
    running = store.running(now)
    customers = CUSTOMERS.volume(state)
    plan: BulkPlan | None = None
    if running is not None:
        errors.append(
            {
                "field": ["query"],
                "message": BULK_IN_PROGRESS.format(gid=running.gid),
                "code": "OPERATION_IN_PROGRESS",
            }
        )
    else:
        try:
            plan = plan_bulk_query(query, customers)
        except GraphQLError as exc:
            errors.append(
                {"field": ["query"], "message": f"Invalid bulk query: {exc}", "code": "INVALID"}
            )
    bulk_op: BulkOp | None = None
    if plan is not None:
        outcome = "FAILED" if store.fail_next else "PARTIAL" if store.partial_next else "COMPLETED"
        store.fail_next = store.partial_next = False
        bulk_op = BulkOp(
            n=BULK_BASE + next(_BULK_SEQ),
            query=query,
            plan=plan,
            volume=plan.coll.volume(state),
            customers=customers,
            created=now,
            duration_s=store.duration_s,
            outcome=outcome,
            signature=base64.urlsafe_b64encode(os.urandom(12)).decode(),
            event_id=str(uuid.uuid4()),
            webhook_copies=store.webhook_copies,
            webhook=not store.no_webhook,
        )
        store.ops[bulk_op.n] = bulk_op
        timer = threading.Timer(bulk_op.duration_s, store.finish, args=(bulk_op,))
        timer.daemon = True
        timer.start()
    payload = {
        "bulkOperation": bulk_op.fields(now, _files_url(request)) if bulk_op else None,
        "userErrors": errors,
    }
    sub = field.sub or {}
    shaped: dict[str, Any] = {}
    for s in sub.values():
        value = payload.get(s.name)
        if s.name == "userErrors" and s.sub:
            value = [_project(e, s.sub) for e in errors]
        elif isinstance(value, dict) and s.sub:
            value = _project(value, s.sub)
        shaped[s.key] = value
    return _answer(state, field.key, shaped if sub else payload, BULK_RUN_COST, available)


def _bulk_read(request: Request, field: Sel, variables: dict[str, Any]) -> Response:
    state = sandbox_state(request)
    if field.name == "node":
        ident = _string_arg(field.args.get("id"), variables)
        if not isinstance(ident, str):
            return _gql_errors(
                GraphQLError(
                    "Field 'node' is missing required arguments: id",
                    extensions={"code": "missingRequiredArguments", "arguments": "id"},
                ).body
            )
    refused, available = _gql_charge(state, BULK_READ_COST)
    if refused is not None:
        return refused
    store = _bulk(request)
    if field.name == "node":
        prefix = "gid://shopify/BulkOperation/"
        tail = ident[len(prefix) :] if ident.startswith(prefix) else ""
        found = store.ops.get(int(tail)) if tail.isdigit() else None
    else:
        found = store.latest()
    value = None
    if found is not None:
        found.reads += 1
        doc = found.fields(time.time(), _files_url(request))
        value = _project(doc, field.sub) if field.sub else doc
    return _answer(state, field.key, value, BULK_READ_COST, available)


@router.get("/_files/bulk/{name}")
async def bulk_file(request: Request, name: str) -> Response:
    """A bulk operation's JSONL (``<n>.jsonl``, or ``<n>-partial.jsonl`` for partial data).
    Like a presigned storage URL: a request that also carries a token is refused (400), one
    without the signature too (403)."""
    if "authorization" in request.headers or "x-shopify-access-token" in request.headers:
        return Response(
            "InvalidArgument: Only one auth mechanism allowed",
            status_code=400,
            media_type="text/plain",
        )
    stem = name.removesuffix(".jsonl")
    partial = stem.endswith("-partial")
    stem = stem.removesuffix("-partial")
    op = _bulk(request).ops.get(int(stem)) if stem.isdigit() else None
    if op is None or request.query_params.get("signature") != op.signature:
        return Response("AccessDenied", status_code=403, media_type="text/plain")
    status = op.status(time.time())
    if (status, partial) not in (("COMPLETED", False), ("FAILED", True)) or (
        partial and op.outcome != "PARTIAL"
    ):
        return Response("NoSuchKey", status_code=404, media_type="text/plain")
    op.downloads += 1
    lines = op.file_lines(partial)
    body = b"".join(line + b"\n" for line in lines)
    return Response(body, media_type="application/jsonl")


class BulkControl(BaseModel):
    """Sandbox-only knobs of bulk operations (unset ones are kept)."""

    model_config = ConfigDict(extra="forbid")

    duration_s: float | None = Field(None, ge=0, le=3600)
    fail_next: bool | None = None
    partial_next: bool | None = None
    webhook_copies: int | None = Field(None, ge=0, le=10)
    no_webhook: bool | None = None


class WebhookSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callback_url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://")
    secret: str = Field(min_length=1, max_length=512)


@router.post("/_sandbox/bulk")
async def bulk_control(request: Request, body: BulkControl) -> Response:
    """Sandbox-only: ``duration_s`` (creation to end state), ``fail_next`` (FAILED,
    INTERNAL_SERVER_ERROR, no file), ``partial_next`` (FAILED, TIMEOUT, a partialDataUrl with
    the first half of the lines), ``webhook_copies`` (2: a duplicate delivery, same
    X-Shopify-Event-Id), ``no_webhook``. The two ``*_next`` apply to the next operation only."""
    store = _bulk(request)
    for key, value in body.model_dump(exclude_none=True).items():
        setattr(store, key, value)
    return JSONResponse(store.settings())


@router.get("/_sandbox/bulk")
async def bulk_state(request: Request) -> Response:
    store = _bulk(request)
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


@router.post("/_sandbox/webhooks")
async def webhook_subscribe(request: Request, body: WebhookSubscription) -> Response:
    """Sandbox-only: subscribe ``callback_url`` to bulk_operations/finish, signed with
    ``secret`` (what the app's webhookSubscriptionCreate would do; Shopify signs with the
    app's client secret). Registering a URL again replaces its secret."""
    store = _bulk(request)
    with store.lock:
        store.subscriptions[body.callback_url] = body.secret
    return JSONResponse({"topic": BULK_TOPIC, "callback_url": body.callback_url})


@router.get("/_sandbox/webhooks")
async def webhook_attempts(request: Request) -> Response:
    """The subscriptions (without secrets) and every delivery attempt, oldest first."""
    store = _bulk(request)
    with store.lock:
        subs = [{"topic": BULK_TOPIC, "callback_url": url} for url in store.subscriptions]
        attempts = list(store.attempts)
    return JSONResponse({"shop_domain": SHOP_DOMAIN, "subscriptions": subs, "attempts": attempts})


# ---- OAuth: expiring offline tokens, rotating refresh tokens ------------------------------

REFRESH_TOKEN_TTL_S = 90 * 86400
SCOPE = "read_customers,read_orders"


@router.post("/admin/oauth/access_token")
async def access_token(request: Request) -> Response:
    """Form-encoded or JSON ``grant_type=refresh_token``; Doorkeeper-style OAuth errors."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, _unavailable)) is not None:
        return fault
    form = await token_form(request)

    def oauth_error(status: int, error: str, description: str) -> JSONResponse:
        return _json({"error": error, "error_description": description}, status)

    if form.get("grant_type") != "refresh_token":
        return oauth_error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        )
    try:
        issued = state.refresh(
            NAME,
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
            str(form.get("refresh_token", "")),
        )
    except TokenError as exc:
        if exc.reason == "client":
            return oauth_error(
                401,
                "invalid_client",
                "Client authentication failed due to "
                "unknown client, no client authentication included, or "
                "unsupported authentication method.",
            )
        return oauth_error(
            400,
            "invalid_grant",
            "The provided authorization grant is invalid, "
            "expired, revoked, does not match the redirection URI used in the "
            "authorization request, or was issued to another client.",
        )
    return _json(
        {
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "refresh_token_expires_in": REFRESH_TOKEN_TTL_S,
            "scope": SCOPE,
        }
    )
