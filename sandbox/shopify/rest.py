"""REST: ``customers.json`` and ``orders.json`` with cursor (``page_info``) paging.

``limit`` 1..250 (default 50), ``page_info`` (then only ``limit`` and ``fields``),
``created_at_min/max``, ``fields``; orders also ``status`` (default ``open``). Pages go by id
ascending; ``link`` carries ``rel="previous"`` and/or ``rel="next"``, no link at all when
everything fits one page. Every authenticated answer carries
``X-Shopify-Shop-Api-Call-Limit: used/size``; a full bucket answers 429 with ``Retry-After``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

from sandbox.common import sandbox_state
from sandbox.shopify.bucket import RETRY_AFTER, take_rest
from sandbox.shopify.data import (
    CUSTOMERS,
    EPOCH,
    ORDERS,
    SHOP_TZ,
    STEP_S,
    Collection,
    customer,
    order,
    order_status,
)
from sandbox.shopify.http import gate, json_response
from sandbox.state import SandboxState

MAX_LIMIT = 250
DEFAULT_LIMIT = 50
STATUSES = ("open", "closed", "cancelled", "any")
PAGINATION_DOC = "https://shopify.dev/api/usage/pagination-rest"
TOO_MANY = (
    "Exceeded 2 calls per second for api client. Reduce request rates to resume "
    "uninterrupted service."
)

router = APIRouter()


class Invalid(ValueError):
    """A 400: ``errors`` is Shopify's message (a string, or a map of parameter to message)."""

    def __init__(self, errors: str | dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


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
        closed, cancelled = order_status(i)
        return {"open": not closed, "closed": closed, "cancelled": cancelled}[self.status]

    def scan(self, coll: Collection, start: int, step: int) -> Iterator[int]:
        i = start
        while self.lo <= i <= self.hi:
            if self.match(coll, i):
                yield i
            i += step


@dataclass(frozen=True)
class Position:
    """Where a page starts: the filters, the direction, and the last index already seen."""

    filters: Filters
    direction: str  # next | prev
    last: int


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


def _limit(params: QueryParams) -> int:
    try:
        limit = int(params.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid("limit - Invalid value.")
    return limit


def _from_page_info(params: QueryParams, coll: Collection, volume: int) -> Position:
    """A ``page_info`` cursor: it carries the filters, so no other filter may come along."""
    for key in params:
        if key not in ("page_info", "limit", "fields"):
            raise Invalid(
                {
                    key: f"{key} cannot be passed when page_info is present. See "
                    f"{PAGINATION_DOC} for more information."
                }
            )
    cursor = _unb64(params["page_info"])
    try:
        if cursor is None or cursor.get("r") != coll.name:
            raise ValueError("not a cursor of this collection")
        direction, last = cursor["direction"], int(cursor["last_id"]) - coll.base
        status = str(cursor.get("status", "any"))
        filters = Filters(int(cursor["lo"]), min(int(cursor["hi"]), volume), status)
    except (KeyError, TypeError, ValueError):
        raise Invalid("page_info - Invalid value.") from None
    if direction not in ("next", "prev") or status not in STATUSES:
        raise Invalid("page_info - Invalid value.")
    return Position(filters, direction, last)


def _from_query(params: QueryParams, coll: Collection, volume: int) -> Position:
    """A first page: ``created_at_min/max`` narrow the index range, ``status`` the orders."""
    lo, hi = 1, volume
    for key in ("created_at_min", "created_at_max"):
        if key in params:
            dt = _parse_time(params[key])
            if dt is None:
                raise Invalid(f"{key} - Invalid value.")
            if key == "created_at_min":
                lo = max(lo, _index_at_or_after(dt))
            else:
                hi = min(hi, _index_at_or_before(dt))
    status = "any"
    if coll is ORDERS:
        status = params.get("status", "open")
        if status not in STATUSES:
            raise Invalid("status - Invalid value.")
    return Position(Filters(lo, hi, status), "next", 0)


def _indices(pos: Position, coll: Collection, limit: int) -> list[int]:
    filters = pos.filters
    if pos.direction == "next":
        it = filters.scan(coll, max(pos.last + 1, filters.lo), 1)
        return [i for _, i in zip(range(limit), it, strict=False)]
    it = filters.scan(coll, min(pos.last - 1, filters.hi), -1)
    return sorted(i for _, i in zip(range(limit), it, strict=False))


def _records(
    state: SandboxState, coll: Collection, indices: list[int], wanted: list[str]
) -> list[dict[str, Any]]:
    customers = CUSTOMERS.volume(state)
    records = []
    for i in indices:
        rec = customer(i) if coll is CUSTOMERS else order(i, customers)
        records.append({k: rec[k] for k in wanted if k in rec} if wanted else rec)
    return records


def _link(
    request: Request, coll: Collection, filters: Filters, indices: list[int], limit: int,
    wanted: list[str],
) -> str | None:  # fmt: skip
    """The ``link`` header: a cursor to each neighbouring page that has records."""
    if not indices:
        return None
    keep: dict[str, Any] = {"r": coll.name, "lo": filters.lo, "hi": filters.hi}
    if coll is ORDERS:
        keep["status"] = filters.status
    base = f"{str(request.base_url).rstrip('/')}{request.url.path}"
    extra = [("fields", ",".join(wanted))] if wanted else []
    links = []
    for rel, direction, edge, step in (
        ("previous", "prev", indices[0], -1),
        ("next", "next", indices[-1], 1),
    ):
        if next(filters.scan(coll, edge + step, step), None) is None:
            continue
        ident = coll.base + edge
        info = _b64({"direction": direction, "last_id": ident, "last_value": str(ident), **keep})
        query = urlencode([("page_info", info), ("limit", limit), *extra])
        links.append(f'<{base}?{query}>; rel="{rel}"')
    return ", ".join(links) or None


def _rest_error(errors: str | dict[str, str], status: int, headers: dict[str, str]) -> JSONResponse:
    return json_response(
        errors if isinstance(errors, dict) else {"errors": errors}, status, headers
    )


async def _rest_list(request: Request, version: str, coll: Collection) -> Response:
    state = sandbox_state(request)
    denied, served = await gate(request, version)
    if denied is not None:
        return denied
    drip = take_rest(state)
    headers = {
        "X-Shopify-Shop-Api-Call-Limit": f"{drip.used}/{drip.size}",
        "X-Shopify-API-Version": served,
    }
    if not drip.accepted:
        retry = f"{max(RETRY_AFTER, drip.wait):.1f}"
        return _rest_error(TOO_MANY, 429, {**headers, "Retry-After": retry})
    params = request.query_params
    wanted = [f.strip() for v in params.getlist("fields") for f in v.split(",") if f.strip()]
    try:
        limit = _limit(params)
        read = _from_page_info if "page_info" in params else _from_query
        pos = read(params, coll, coll.volume(state))
    except Invalid as exc:
        return _rest_error(exc.errors, 400, headers)
    indices = _indices(pos, coll, limit)
    if link := _link(request, coll, pos.filters, indices, limit, wanted):
        headers["Link"] = link
    return json_response({coll.name: _records(state, coll, indices, wanted)}, 200, headers)


@router.get("/admin/api/{version}/customers.json")
async def list_customers(request: Request, version: str) -> Response:
    return await _rest_list(request, version, CUSTOMERS)


@router.get("/admin/api/{version}/orders.json")
async def list_orders(request: Request, version: str) -> Response:
    return await _rest_list(request, version, ORDERS)
