"""Stripe double: customers and charges lists, `starting_after` paging, Stripe's error shapes.

Order of checks mirrors api.stripe.com: latency/fault, the API key (Bearer, or Basic with the
key as user name; keys never expire, so a minted token past its sandbox TTL still works),
the rate limit (429 `rate_limit` with `Stripe-Should-Retry: true` and no limit/remaining
headers: Stripe sends none), then the parameters (400 `parameter_unknown`,
`parameter_invalid_integer`, `resource_missing`) and the data.

Lists: newest first, `limit` 1..100 (default 10), `starting_after` / `ending_before` = an
object id; `{"object":"list","url":"/v1/customers","has_more":…,"data":[…]}`; the last page
has `has_more: false`. Object `i` (1 = newest) has id `cus_<i:08d><6 chars>` /
`ch_<i:08d><16 chars>`, so ids sort in list order and decode in O(1); charge `i` belongs to
customer `(i-1) % C + 1`, so a `customer` filter is an arithmetic progression and any page
of any filter costs O(limit). Volumes: `stripe.customers`, `stripe.charges`.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
import zlib
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

from sandbox.common import preamble, sandbox_state

NAME = "stripe"
ROTATES_REFRESH_TOKENS = False  # Stripe keys and Connect access tokens do not expire
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
CREATED_BASE = 1_700_000_000  # epoch seconds of object 1 (the newest)
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

router = APIRouter()

FIRST = ("Jenny", "Sam", "Alex", "Priya", "Mateo", "Aiko", "Liam", "Noor", "Olga", "Tariq")
UNICODE_FIRST = ("José", "Zoë", "Łukasz", "李雷", "Дмитрий", "Nguyễn", "Renée", "Çağrı")
LAST = ("Rosen", "Smith", "Okafor", "Tanaka", "Garcia", "Müller", "Kowalski", "Haddad")
CURRENCIES = ("usd", "usd", "usd", "eur", "gbp")


class Kind:
    """One listable object type: id prefix, suffix length, name in messages."""

    def __init__(self, prefix: str, suffix: int, noun: str, path: str) -> None:
        self.prefix, self.suffix, self.noun, self.path = prefix, suffix, noun, path
        self.pattern = re.compile(rf"^{prefix}_(\d{{8}})([0-9A-Za-z]{{{suffix}}})$")

    def id(self, i: int) -> str:
        return f"{self.prefix}_{i:08d}{_suffix(f'{self.prefix}{i}', self.suffix)}"

    def index(self, object_id: str, volume: int) -> int | None:
        """The object's index, or None when no such object exists."""
        m = self.pattern.match(object_id)
        if not m:
            return None
        i = int(m.group(1))
        return i if 1 <= i <= volume and m.group(2) == self.id(i)[-self.suffix :] else None


def _suffix(seed: str, length: int) -> str:
    n = zlib.crc32(seed.encode()) * 2_654_435_761 + len(seed)
    out = []
    for _ in range(length):
        n, r = divmod(n, len(ALPHABET))
        out.append(ALPHABET[r])
        if n == 0:
            n = zlib.crc32(("".join(out) + seed).encode()) + 1
    return "".join(out)


CUSTOMER = Kind("cus", 6, "customer", "/v1/customers")
CHARGE = Kind("ch", 16, "charge", "/v1/charges")


def _email(i: int) -> str:
    return f"{FIRST[i % len(FIRST)].lower()}.{i}@example.com"


def customer(i: int) -> dict[str, Any]:
    """Customer `i` (1 = newest); a pure function of `i`."""
    first = UNICODE_FIRST[(i // 7) % len(UNICODE_FIRST)] if i % 7 == 0 else FIRST[i % len(FIRST)]
    return {
        "id": CUSTOMER.id(i),
        "object": "customer",
        "address": None,
        "balance": 0 if i % 4 else -500 * (i % 9),
        "created": CREATED_BASE - i * 600,
        "currency": CURRENCIES[i % len(CURRENCIES)] if i % 3 else None,
        "default_source": None,
        "delinquent": i % 17 == 0,
        "description": None if i % 2 else f"Customer for {_email(i)}",
        "discount": None,
        "email": _email(i),
        "invoice_prefix": f"{zlib.crc32(str(i).encode()):08X}",
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {"sandbox_index": str(i)},
        "name": f"{first} {LAST[(i * 3) % len(LAST)]}",
        "next_invoice_sequence": 1 + i % 5,
        "phone": None if i % 5 else f"+1555{i % 10_000_000:07d}",
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def charge(i: int, customers: int) -> dict[str, Any]:
    """Charge `i` (1 = newest), of customer `(i-1) % customers + 1` (none when there are
    no customers); every 11th failed, every 13th pending, every 19th partly refunded."""
    amount = 500 + (i * 7919) % 99_500
    status = "failed" if i % 11 == 0 else "pending" if i % 13 == 0 else "succeeded"
    refunded = amount // 2 if status == "succeeded" and i % 19 == 0 else 0
    paid = status == "succeeded"
    txn = f"txn_{_suffix(f'txn{i}', 24)}"
    return {
        "id": CHARGE.id(i),
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if paid else 0,
        "amount_refunded": refunded,
        "balance_transaction": txn if paid else None,
        "billing_details": {"address": None, "email": None, "name": None, "phone": None},
        "captured": paid,
        "created": CREATED_BASE - i * 300,
        "currency": CURRENCIES[i % len(CURRENCIES)],
        "customer": CUSTOMER.id((i - 1) % customers + 1) if customers else None,
        "description": None if i % 3 else f"Order #{1000 + i}",
        "disputed": False,
        "failure_code": "card_declined" if status == "failed" else None,
        "failure_message": "Your card was declined." if status == "failed" else None,
        "livemode": False,
        "metadata": {},
        "outcome": {
            "network_status": "declined_by_network"
            if status == "failed"
            else "approved_by_network",
            "type": "issuer_declined" if status == "failed" else "authorized",
        },
        "paid": paid,
        "payment_intent": f"pi_{_suffix(f'pi{i}', 24)}",
        "payment_method": f"pm_{_suffix(f'pm{i}', 24)}",
        "receipt_url": None,
        "refunded": False,
        "status": status,
    }


# ---- Stripe-shaped responses --------------------------------------------------------------


def _request_id() -> str:
    return "req_" + secrets.token_urlsafe(10).replace("-", "x").replace("_", "y")[:14]


def _error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    code: str | None = None,
    param: str | None = None,
    err_type: str = "invalid_request_error",
) -> JSONResponse:
    rid = _request_id()
    err: dict[str, Any] = {}
    if code:
        err["code"] = code
        err["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    err["message"] = message
    if param:
        err["param"] = param
    if status != 401:
        err["request_log_url"] = (
            f"https://dashboard.stripe.com/test/logs/{rid}?t={int(time.time())}"
        )
    err["type"] = err_type
    return JSONResponse(
        {"error": err}, status_code=status, headers={"request-id": rid, **(headers or {})}
    )


def _unavailable() -> dict[str, Any]:
    return {"error": {"message": "An unknown error occurred", "type": "api_error"}}


def _key(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":  # curl -u sk_test_…:
        try:
            return base64.b64decode(value.strip(), validate=True).decode().split(":", 1)[0] or None
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    return None


def _masked(key: str) -> str:
    if len(key) <= 12:
        return "*" * len(key)
    m = re.match(r"^(?:sk|rk|pk)_(?:test|live)_", key)
    head = m.group(0) if m else ""
    return head + "*" * (len(key) - len(head) - 4) + key[-4:]


async def _gate(request: Request) -> Response | None:
    state = sandbox_state(request)
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault
    key = _key(request)
    headers = {"www-authenticate": 'Basic realm="Stripe"'}
    if key is None:
        return _error(
            401,
            "You did not provide an API key. You need to provide your API key in "
            "the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
            "details, or we can help at https://support.stripe.com/.",
            headers,
        )
    if state.check_access(NAME, key) == "invalid":  # keys never expire: lateness is fine
        return _error(401, f"Invalid API Key provided: {_masked(key)}", headers)
    if state.take_rate(NAME).policy is not None:
        return _error(
            429,
            "Request rate limit exceeded. You can learn more about rate limits "
            "here https://stripe.com/docs/rate-limits.",
            {"stripe-should-retry": "true"},
            code="rate_limit",
        )
    return None


Progression = tuple[int, int, int]  # (first index, step, count), in list order


class _Refusal(Exception):
    """A 400 a listing answers instead of a page."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def _limit(params: QueryParams) -> int:
    raw = params.get("limit", str(DEFAULT_LIMIT))
    if not re.fullmatch(r"-?\d+", raw.strip()):
        raise _Refusal(
            _error(400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param="limit")
        )
    limit = int(raw)
    if not 1 <= limit <= MAX_LIMIT:
        bound = "greater than or equal to 1" if limit < 1 else f"less than or equal to {MAX_LIMIT}"
        raise _Refusal(
            _error(
                400, f"This value must be {bound}.", code="parameter_invalid_integer", param="limit"
            )
        )
    return limit


def _anchor(params: QueryParams, kind: Kind, volume: int) -> tuple[str, int] | None:
    """Which of ``starting_after``/``ending_before`` is given (at most one), and the index it
    names."""
    after, before = params.get("starting_after"), params.get("ending_before")
    if after is not None and before is not None:
        raise _Refusal(
            _error(
                400,
                "You may only specify one of these parameters: ending_before, starting_after.",
                param="ending_before",
            )
        )
    for name, value in (("starting_after", after), ("ending_before", before)):
        if value is not None:
            anchor = kind.index(value, volume)
            if anchor is None:
                raise _Refusal(
                    _error(
                        400, f"No such {kind.noun}: '{value}'", code="resource_missing", param=name
                    )
                )
            return name, anchor
    return None


def _window(
    items: Progression, anchor: tuple[str, int] | None, limit: int
) -> tuple[int, int, bool]:
    """(first position, how many, has_more) of the page within ``items``."""
    start, step, count = items
    if anchor is not None and anchor[0] == "starting_after":
        skip = 0 if anchor[1] < start else min(count, (anchor[1] - start) // step + 1)
        n = min(limit, count - skip)
        return skip, n, skip + n < count  # the items after the anchor, in list order
    if anchor is not None:  # the `limit` items just before the anchor
        end = 0 if anchor[1] <= start else min(count, (anchor[1] - start - 1) // step + 1)
        first = max(0, end - limit)
        return first, end - first, first > 0
    n = min(limit, count)
    return 0, n, n < count


def _page(
    request: Request,
    kind: Kind,
    known: set[str],
    volume: int,
    items: Progression | None,
    make: Callable[[int], dict[str, Any]],
) -> Response:
    """Validate the list parameters and answer one page of `items` (None: a filter matched
    nothing)."""
    params = request.query_params
    for name in params:
        if name not in known and not name.startswith("expand["):
            return _error(
                400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name
            )
    try:
        limit = _limit(params)
        anchor = _anchor(params, kind, volume)
    except _Refusal as exc:
        return exc.response
    start, step, count = items or (1, 1, 0)
    first, n, has_more = _window((start, step, count), anchor, limit)
    data = [make(start + (first + k) * step) for k in range(max(0, n))]
    return JSONResponse(
        {"object": "list", "data": data, "has_more": has_more, "url": kind.path},
        headers={"request-id": _request_id()},
    )


# ---- endpoints ----------------------------------------------------------------------------


@router.get("/v1/customers")
async def list_customers(request: Request) -> Response:
    """Customers, newest first; `email` is an exact, case-sensitive match."""
    if (denied := await _gate(request)) is not None:
        return denied
    total = sandbox_state(request).config.volume(f"{NAME}.customers")
    items: Progression | None = (1, 1, total)
    email = request.query_params.get("email")
    if email is not None:
        m = re.search(r"\.(\d+)@example\.com$", email)
        i = int(m.group(1)) if m else 0
        items = (i, 1, 1) if 1 <= i <= total and _email(i) == email else None
    return _page(
        request,
        CUSTOMER,
        {"limit", "starting_after", "ending_before", "email"},
        total,
        items,
        customer,
    )


@router.get("/v1/charges")
async def list_charges(request: Request) -> Response:
    """Charges, newest first; `customer` must name an existing customer."""
    if (denied := await _gate(request)) is not None:
        return denied
    cfg = sandbox_state(request).config
    total, customers = cfg.volume(f"{NAME}.charges"), cfg.volume(f"{NAME}.customers")
    items: Progression | None = (1, 1, total)
    wanted = request.query_params.get("customer")
    if wanted is not None:
        c = CUSTOMER.index(wanted, customers)
        if c is None:
            return _error(
                400, f"No such customer: '{wanted}'", code="resource_missing", param="customer"
            )
        items = (c, customers, max(0, (total - c) // customers + 1)) if c <= total else None
    return _page(
        request,
        CHARGE,
        {"limit", "starting_after", "ending_before", "customer"},
        total,
        items,
        lambda i: charge(i, customers),
    )
