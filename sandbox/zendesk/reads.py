"""Zendesk Support double: tickets (cursor and offset pages), OAuth refresh, rate headers.

Order of checks mirrors the real edge: latency/fault, auth, rate limit (refusals are free),
then parameter validation and the data. Every answer past the fault preamble carries the
account-wide `x-rate-limit*` pair, the IETF `ratelimit-*` trio (reset in delta seconds) and
the per-endpoint `zendesk-ratelimit-tickets-index` field.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import (
    bearer_token,
    preamble,
    sandbox_state,
    token_call,
    token_form,
)
from sandbox.consentpage import code_params, consent_routes, redeem
from sandbox.state import SandboxState, TokenError

NAME = "zendesk"
ROTATES_REFRESH_TOKENS = True  # Zendesk issues a new refresh token on every refresh
MAX_PAGE_SIZE = 100
OFFSET_LIMIT = 10_000  # offset paging may not reach past the first 10,000 records

router = APIRouter()

# ---- deterministic data, generated per index (page k of N costs O(page)) -----------------

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("urgent", "high", "normal", "low", None)
TYPES = ("question", "incident", "problem", "task", None)
CHANNELS = ("email", "web", "api", "mobile")
TOPICS = (
    "Cannot log in",
    "Refund request",
    "Invoice is wrong",
    "Feature request: dark mode",
    "App crashes on start",
    "Password reset email never arrives",
    "Shipping delay",
    "Question about pricing",
    "Export to CSV fails",
    "Two-factor code rejected",
)
# Every 7th ticket: multi-byte UTF-8 (2-, 3- and 4-byte sequences) to catch encoding bugs.
UNICODE_TOPICS = (
    "Änderung der Rechnung",
    "Problème de connexion",
    "注文がまだ届きません",
    "Заказ не пришёл",
    "Ödeme başarısız 💳",
    "𠮷野家 order missing",
    "Café reservation 🍰",
)
TAGS = ("billing", "vip", "mobile", "login", "refund", "bug", "shipping", "enterprise")
BODY = (
    "Hi team, since this morning I keep running into the problem described in the subject. "
    "I already cleared the cache, tried another browser and restarted the device, but it "
    "still happens every time. Could you please take a look and let me know what to do "
    "next? Thanks a lot for your help, and sorry for the trouble. "
) * 2
BODY_LEN = 220
EPOCH = datetime(2021, 3, 1, tzinfo=UTC)
AGENTS = (None, 361_000_000_101, 361_000_000_102, 361_000_000_103, 361_000_000_104)


def _iso(seconds: int) -> str:
    """Zendesk's timestamp form: ISO-8601 UTC, whole seconds, ``Z``."""
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def ticket(i: int, base: str) -> dict[str, Any]:
    """Ticket ``i`` (1-based, = its id); a pure function of ``i``. ``created_at`` and
    ``updated_at`` grow with the id, as in an account that only ever appends."""
    subject = (
        UNICODE_TOPICS[(i // 7) % len(UNICODE_TOPICS)]
        if i % 7 == 0
        else TOPICS[(i * 3) % len(TOPICS)]
    )
    created = i * 3_607 + (i * 7_919) % 600
    start = (i * 11) % (len(BODY) // 2)
    return {
        "url": f"{base}/api/v2/tickets/{i}.json",
        "id": i,
        "external_id": None,
        "via": {
            "channel": CHANNELS[i % len(CHANNELS)],
            "source": {"from": {}, "to": {}, "rel": None},
        },
        "created_at": _iso(created),
        "updated_at": _iso(created + 1_800 + (i * 104_729) % 1_800),
        "type": TYPES[(i * 5) % len(TYPES)],
        "subject": f"{subject} (#{i})",
        "raw_subject": f"{subject} (#{i})",
        "description": f"Ticket {i}: {BODY[start : start + BODY_LEN]}",
        "priority": PRIORITIES[(i * 7) % len(PRIORITIES)],
        "status": STATUSES[(i * 13) % len(STATUSES)],
        "requester_id": 361_100_000_000 + (i * 37) % 5_000,
        "submitter_id": 361_100_000_000 + (i * 37) % 5_000,
        "assignee_id": AGENTS[i % len(AGENTS)],
        "organization_id": 361_200_000_000 + i % 40 if i % 3 else None,
        "group_id": 361_300_000_001,
        "tags": sorted({TAGS[i % len(TAGS)], TAGS[(i * 5) % len(TAGS)]}),
        "custom_fields": [],
        "has_incidents": False,
        "is_public": True,
        "allow_attachments": True,
    }


# ---- Zendesk-shaped responses -------------------------------------------------------------


def _error(
    status: int, error: str, description: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": error, "description": description}, status_code=status, headers=headers
    )


def _unavailable() -> dict[str, Any]:
    return {
        "error": "ServiceUnavailable",
        "description": "Zendesk is temporarily unavailable, please try again shortly",
    }


def _window(state: SandboxState) -> tuple[int, float]:
    """(accepted calls in the rolling window, seconds until its oldest one leaves it);
    a read-only look, so 401s can show the budget without spending it."""
    window_s = state.config.rate_window_ms / 1000
    now = time.monotonic()
    with state.lock:
        live = [t for t in state.windows.get(NAME, ()) if t > now - window_s]
    return len(live), (live[0] + window_s - now) if live else 0.0


def _rate_headers(state: SandboxState, retry: bool = False) -> dict[str, str]:
    limit = state.config.budget(NAME)
    used, reset = _window(state)
    remaining = max(0, limit - used)
    resets = max(1, math.ceil(reset)) if used else math.ceil(state.config.rate_window_ms / 1000)
    headers = {
        "x-rate-limit": str(limit),
        "x-rate-limit-remaining": str(remaining),
        "ratelimit-limit": str(limit),
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": str(resets),
        "zendesk-ratelimit-tickets-index": f"total={limit}; remaining={remaining}; resets={resets}",
    }
    if retry:
        headers["Retry-After"] = str(resets)
    return headers


def _auth(request: Request) -> JSONResponse | None:
    """401 ``Couldn't authenticate you`` for a missing, unknown or expired token."""
    state = sandbox_state(request)
    if state.check_access(NAME, bearer_token(request)) is None:
        return None
    return JSONResponse(
        {"error": "Couldn't authenticate you"}, status_code=401, headers=_rate_headers(state)
    )


def encode_cursor(ticket_id: int) -> str:
    """Opaque cursor like Zendesk's (base64 of a small JSON document)."""
    doc = json.dumps({"o": "nice_id", "v": ticket_id}, separators=(",", ":"))
    return base64.urlsafe_b64encode(doc.encode()).decode()


def decode_cursor(raw: str) -> int | None:
    try:
        doc = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    v = doc.get("v") if isinstance(doc, dict) and doc.get("o") == "nice_id" else None
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _url(request: Request, query: list[tuple[str, Any]]) -> str:
    return f"{str(request.base_url).rstrip('/')}{request.url.path}?" + urlencode(query, safe="[]")


# ---- endpoints ----------------------------------------------------------------------------


async def gate(request: Request) -> tuple[Response | None, dict[str, str]]:
    """Latency/fault, auth, rate limit: a refusal to answer, else the rate headers every
    answer carries."""
    state = sandbox_state(request)
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault, {}
    if (denied := _auth(request)) is not None:
        return denied, {}
    decision = state.take_rate(NAME)
    if decision.policy is not None:
        body = {
            "error": "APIRateLimitExceeded",
            "description": "Number of allowed API requests per minute exceeded",
        }
        return JSONResponse(body, status_code=429, headers=_rate_headers(state, retry=True)), {}
    return None, _rate_headers(state)


@router.get("/api/v2/tickets.json")
@router.get("/api/v2/tickets")
async def list_tickets(request: Request) -> Response:
    """Cursor pages with ``page[size]`` (≤ 100) and ``page[after]``/``page[before]``;
    without ``page[size]``, offset pages with ``page``/``per_page`` (≤ 10,000 records deep);
    ``external_id``: every ticket carrying it (external ids need not be unique)."""
    state = sandbox_state(request)
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    base = f"{str(request.base_url).rstrip('/')}/{NAME}"
    total = state.config.volume("zendesk.tickets")
    params = request.query_params
    if "external_id" in params:
        found = state.writes.find(NAME, "external_id", params["external_id"])
        body = {"tickets": found, "next_page": None, "previous_page": None, "count": len(found)}
        return JSONResponse(body, headers=headers)
    if "page[size]" in params:
        return _cursor_page(request, params, total, base, headers)
    return _offset_page(request, params, total, base, headers)


class _Refusal(Exception):
    """A 400 a listing answers instead of a page."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def _bad_page(message: str, headers: dict[str, str]) -> _Refusal:
    return _Refusal(_error(400, "InvalidPaginationParameter", message, headers))


def _cursor_size(raw: str, headers: dict[str, str]) -> int:
    try:
        size = int(raw)
    except ValueError:
        body = {
            "error": {
                "title": "Invalid attribute",
                "message": (
                    "You passed an invalid value for the page.size attribute. Invalid parameter: "
                    "page.size must be an integer from api/v2/tickets/index"
                ),
            }
        }
        raise _Refusal(JSONResponse(body, status_code=400, headers=headers)) from None
    if size > MAX_PAGE_SIZE:
        raise _bad_page(f"page[size] must be less than or equal to {MAX_PAGE_SIZE}", headers)
    if size < 1:
        raise _bad_page("page[size] must be greater than 0", headers)
    return size


def _cursor_window(
    params: Any, total: int, size: int, headers: dict[str, str]
) -> tuple[int, int, bool]:
    """(start, stop, has_more) of a cursor page: before ``page[before]``, else after
    ``page[after]`` (or from the start)."""
    if "page[after]" in params and "page[before]" in params:
        raise _bad_page("page[after] and page[before] cannot be used together", headers)
    if "page[before]" in params:
        before = decode_cursor(params["page[before]"])
        if before is None:
            raise _bad_page("page[before] is not a valid cursor", headers)
        stop = min(total, before - 1)
        start = max(0, stop - size)
        return start, stop, start > 0
    after = 0
    if "page[after]" in params:
        decoded = decode_cursor(params["page[after]"])
        if decoded is None:
            raise _bad_page("page[after] is not a valid cursor", headers)
        after = decoded
    start = min(after, total)
    stop = min(total, start + size)
    return start, stop, stop < total


def _cursor_page(
    request: Request, params: Any, total: int, base: str, headers: dict[str, str]
) -> Response:
    try:
        size = _cursor_size(params["page[size]"], headers)
        start, stop, more = _cursor_window(params, total, size, headers)
    except _Refusal as exc:
        return exc.response
    tickets = [ticket(i, base) for i in range(start + 1, stop + 1)]
    keep = [(k, v) for k, v in params.multi_items() if k not in ("page[after]", "page[before]")]
    first = encode_cursor(start + 1) if tickets else None
    last = encode_cursor(stop) if tickets else None
    # Like Zendesk, the last page still names an after_cursor and a next link: only
    # `has_more: false` says the listing is over.
    body = {
        "tickets": tickets,
        "meta": {"has_more": more, "after_cursor": last, "before_cursor": first},
        "links": {
            "prev": _url(request, [*keep, ("page[before]", first)]) if first else None,
            "next": _url(request, [*keep, ("page[after]", last)]) if last else None,
        },
    }
    return JSONResponse(body, headers=headers)


def _offset_page(
    request: Request, params: Any, total: int, base: str, headers: dict[str, str]
) -> Response:
    try:
        page = int(params.get("page", "1"))
        per_page = int(params.get("per_page", "100"))
    except ValueError:
        return _error(
            400, "InvalidPaginationParameter", "page and per_page must be integers", headers
        )
    page, per_page = max(1, page), min(MAX_PAGE_SIZE, max(1, per_page))
    if page * per_page > OFFSET_LIMIT:
        body: dict[str, Any] = {
            "errors": [
                {
                    "code": "InvalidPaginationDepth",
                    "title": "Pagination requests using Offset Pagination are limited to page 100 "
                    "or up to 10000 records (page * per_page)",
                    "detail": "Offset pagination is limited to the first 10000 records; use cursor "
                    "pagination (page[size] and page[after]) to read further.",
                }
            ]
        }
        return JSONResponse(body, status_code=400, headers=headers)
    start = min(total, (page - 1) * per_page)
    stop = min(total, start + per_page)
    keep = [(k, v) for k, v in params.multi_items() if k not in ("page", "per_page")]
    body = {
        "tickets": [ticket(i, base) for i in range(start + 1, stop + 1)],
        "next_page": _url(request, [*keep, ("page", page + 1), ("per_page", per_page)])
        if stop < total
        else None,
        "previous_page": _url(request, [*keep, ("page", page - 1), ("per_page", per_page)])
        if page > 1
        else None,
        "count": total,
    }
    return JSONResponse(body, headers=headers)


DOORKEEPER = {
    "invalid_grant": "The provided authorization grant is invalid, expired, revoked, does not "
    "match the redirection URI used in the authorization request, or was "
    "issued to another client.",
    "invalid_client": "Client authentication failed due to unknown client, no client "
    "authentication included, or unsupported authentication method.",
    "unsupported_grant_type": "The authorization grant type is not supported by the "
    "authorization server.",
    "invalid_request": "The request is missing a required parameter, includes an unsupported "
    "parameter value, or is otherwise malformed.",
}


@router.post("/oauth/tokens")
async def token(request: Request) -> Response:
    """Refresh grant, form-encoded or JSON; the refresh token rotates on every use."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, _unavailable)) is not None:
        return fault
    form = await token_form(request)

    def oauth_error(code: str, status: int = 400) -> JSONResponse:
        return JSONResponse(
            {"error": code, "error_description": DOORKEEPER[code]}, status_code=status
        )

    if form.get("grant_type") == "authorization_code":
        return _code_grant(state, {k: str(v) for k, v in form.items()})
    if form.get("grant_type") != "refresh_token":
        return oauth_error("unsupported_grant_type")
    if not form.get("refresh_token"):
        return oauth_error("invalid_request")
    try:
        issued = state.refresh(
            NAME,
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
            str(form["refresh_token"]),
        )
    except TokenError as exc:
        if exc.reason == "client":
            return oauth_error("invalid_client", 401)
        return oauth_error("invalid_grant")
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "token_type": "bearer",
            "scope": str(form.get("scope") or "read"),
            "expires_in": issued.expires_in,
        }
    )


def _code_grant(state: SandboxState, form: dict[str, str]) -> Response:
    """The authorization-code grant: the code bound to client, redirect URI and PKCE."""
    try:
        issued = redeem(state, NAME, form)
    except TokenError as exc:
        code, status = ("invalid_client", 401) if exc.reason == "client" else ("invalid_grant", 400)
        return JSONResponse({"error": code, "error_description": DOORKEEPER[code]},
                            status_code=status)  # fmt: skip
    return JSONResponse({"access_token": issued.access_token, "refresh_token": issued.refresh_token,
                         "token_type": "bearer", "scope": form.get("scope") or "read",
                         "expires_in": issued.expires_in})  # fmt: skip


consent_routes(router, "/oauth/authorizations/new", NAME, "Zendesk", code_params)
