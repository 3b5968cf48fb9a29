"""Slack Web API reads: conversations.history, conversations.info, users.list, oauth.v2.access
(rotation).

Slack's dialect: almost every error is HTTP 200 with ``{"ok": false, "error": "<code>"}``
(auth failures included); the one exception is the rate limit, a 429 with ``Retry-After``
(seconds) and ``{"ok": false, "error": "ratelimited"}``. Pages use ``cursor``/``limit`` and
``response_metadata.next_cursor``, where the empty string marks the last page. Successful
answers carry no rate-limit headers (Slack sends none). Tokens may come as a bearer header
or as a ``token`` parameter (query or form).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
import uuid
import zlib
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import bearer_token, preamble, sandbox_state, token_call
from sandbox.consentpage import code_params, consent_routes
from sandbox.slack import posted
from sandbox.state import Issued, SandboxState, TokenError

NAME = "slack"
ROTATES_REFRESH_TOKENS = True  # with token rotation turned on, every refresh rotates
TEAM_ID = "T0SANDBOX1"
HISTORY_DEFAULT, HISTORY_MAX = 100, 999
USERS_MAX = 1000
ACCESS_PREFIX = "xoxe.xoxp-1-"  # rotating user tokens look like this
REFRESH_PREFIX = "xoxe-1-"

router = APIRouter()

# The workspace's channels; each holds `volumes["slack.messages.<id>"]` messages, else
# `volumes["slack.messages"]` (default_volume). Any other id is `channel_not_found`.
CHANNELS = {"C01GENERAL": "general", "C02RANDOM0": "random", "C03SUPPORT": "support"}

# ---- deterministic data, generated per index (page k of N costs O(page)) -----------------

BASE_US = 1_600_000_000 * 1_000_000  # 2020-09-13, in microseconds
STEP_US = 60_000_000  # one message a minute, plus < 1 s of jitter: ts is monotonic in i
FIRST = (
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "mallory",
    "niaj",
    "olivia",
    "peggy",
    "rupert",
    "sybil",
    "trent",
    "victor",
    "walter",
)
REAL = ("Smith", "Johnson", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Taylor", "Lee")
PHRASES = (
    "Deploy finished, all green :white_check_mark:",
    "Can someone review my PR?",
    "Standup in 5 minutes",
    "The staging DB is slow again",
    "Lunch anyone?",
    "Customer reported a bug in the export",
    "Thanks for the quick fix!",
    "Reminder: retro at 3pm",
    "Who owns the billing service?",
    "Rolling back the release",
)
# Every 7th message: multi-byte UTF-8 (2-, 3- and 4-byte sequences) and emoji.
UNICODE_PHRASES = (
    "Déploiement terminé ✅",
    "今日のリリースは延期です",
    "Спасибо за помощь!",
    "Toplantı yarın 🗓️",
    "𠮷野家で昼ご飯 🍜",
    "¿Alguien vio el ticket #42?",
)


def ts_us(i: int) -> int:
    return BASE_US + i * STEP_US + (i * 7_919) % 1_000_000


def ts_str(us: int) -> str:
    return f"{us // 1_000_000}.{us % 1_000_000:06d}"


def user_id(i: int) -> str:
    return f"U{i:08d}"


def message(channel: str, i: int) -> dict[str, Any]:
    """Message ``i`` (1-based, oldest first) of ``channel``; a pure function of both."""
    seed = zlib.crc32(channel.encode()) % 1000
    k = i + seed
    text = (
        UNICODE_PHRASES[(k // 7) % len(UNICODE_PHRASES)]
        if i % 7 == 0
        else PHRASES[(k * 3) % len(PHRASES)]
    )
    return {
        "type": "message",
        "user": user_id(1 + (k * 37) % 50),
        "text": f"{text} ({CHANNELS.get(channel, channel)} #{i})",
        "ts": ts_str(ts_us(i)),
        "team": TEAM_ID,
    }


def member(i: int) -> dict[str, Any]:
    """Member ``i`` (1-based) of the workspace; every 25th is deactivated."""
    first, last = FIRST[i % len(FIRST)], REAL[(i * 7) % len(REAL)]
    name = f"{first}.{last.lower()}{i}"
    real = f"{first.title()} {last}"
    return {
        "id": user_id(i),
        "team_id": TEAM_ID,
        "name": name,
        "deleted": i % 25 == 0,
        "color": f"{(i * 2_654_435) % 0xFFFFFF:06x}",
        "real_name": real,
        "tz": "Europe/Berlin" if i % 2 else "America/New_York",
        "tz_label": "Central European Time" if i % 2 else "Eastern Standard Time",
        "tz_offset": 3600 if i % 2 else -18000,
        "profile": {
            "real_name": real,
            "display_name": first,
            "email": f"{name}@example.com",
            "image_24": f"https://avatars.example/{i}_24.png",
            "team": TEAM_ID,
        },
        "is_admin": i == 1,
        "is_owner": i == 1,
        "is_bot": False,
        "is_app_user": False,
        "updated": 1_600_000_000 + i * 3_600,
    }


# ---- Slack-shaped responses ---------------------------------------------------------------


def _headers() -> dict[str, str]:
    return {"x-slack-req-id": uuid.uuid4().hex}


def _fail(
    error: str, status: int = 200, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse(
        {"ok": False, "error": error, **extra},
        status_code=status,
        headers={**_headers(), **(headers or {})},
    )


def _ok(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"ok": True, **body}, headers=_headers())


def _unavailable() -> dict[str, Any]:
    return {"ok": False, "error": "service_unavailable"}


def _strip(token: str | None, prefix: str) -> str | None:
    return token[len(prefix) :] if token and token.startswith(prefix) else token


async def _params(request: Request) -> dict[str, str]:
    """Slack reads arguments from the query string and from a form body alike."""
    params = dict(request.query_params)
    if request.method == "POST":
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            params.update(
                parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
            )
    return params


def _auth(request: Request, params: dict[str, str]) -> JSONResponse | None:
    """``not_authed`` without a token, ``invalid_auth`` for an unknown one and
    ``token_expired`` for an expired one: all with HTTP 200, as Slack does."""
    token = bearer_token(request) or params.get("token")
    if not token:
        return _fail("not_authed")
    late = sandbox_state(request).check_access(NAME, _strip(token, ACCESS_PREFIX))
    if late is None:
        return None
    return _fail("invalid_auth" if late == "invalid" else "token_expired")


def _reset_after(state: SandboxState) -> float:
    window_s = state.config.rate_window_ms / 1000
    now = time.monotonic()
    with state.lock:
        live = [t for t in state.windows.get(NAME, ()) if t > now - window_s]
    return (live[0] + window_s - now) if live else window_s


async def _gate(request: Request) -> tuple[dict[str, str], Response | None]:
    """Preamble, auth, then the method's rate budget (the sandbox's shared one)."""
    state = sandbox_state(request)
    if (fault := await preamble(request, _unavailable)) is not None:
        return {}, fault
    params = await _params(request)
    if (denied := _auth(request, params)) is not None:
        return params, denied
    if state.take_rate(NAME).policy is not None:
        wait = max(1, math.ceil(_reset_after(state)))
        return params, _fail("ratelimited", 429, {"Retry-After": str(wait)})
    return params, None


def _limit(raw: str | None, default: int, maximum: int) -> int | None:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        return None
    return default if value <= 0 else min(value, maximum)


def _invalid(field: str, why: str) -> JSONResponse:
    return _fail("invalid_arguments", response_metadata={"messages": [f"[ERROR] {why}: {field}"]})


def encode_cursor(kind: str, value: str) -> str:
    """Slack-style opaque cursor: base64 of ``next_ts:<digits>`` or ``user:<id>``."""
    return base64.b64encode(f"{kind}:{value}".encode()).decode()


def decode_cursor(raw: str, kind: str) -> str | None:
    try:
        text = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, value = text.partition(":")
    return value if prefix == kind and value else None


def _parse_ts(raw: str | None) -> int | None | bool:
    """Microseconds; None when absent; False when malformed."""
    if raw in (None, ""):
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return False
    if not value.is_finite() or value < 0:
        return False
    return int(value * 1_000_000)


def _index_at_or_before(us: int) -> int:
    """The largest message index whose ts is ≤ ``us`` (0 if none)."""
    i = max(0, (us - BASE_US) // STEP_US)
    while i > 0 and ts_us(i) > us:
        i -= 1
    while ts_us(i + 1) <= us:
        i += 1
    return int(i)


# ---- endpoints ----------------------------------------------------------------------------


def _bounds(params: dict[str, str], total: int) -> tuple[int, int] | JSONResponse:
    """The index window [low, high] of messages inside ``oldest``/``latest`` (exclusive
    unless ``inclusive``) and below the ``cursor``, or Slack's refusal."""
    oldest, latest = _parse_ts(params.get("oldest")), _parse_ts(params.get("latest"))
    if oldest is False:
        return _fail("invalid_ts_oldest")
    if latest is False:
        return _fail("invalid_ts_latest")
    inclusive = params.get("inclusive", "").lower() in ("1", "true")
    high = total
    if latest is not None:
        high = min(total, _index_at_or_before(latest if inclusive else latest - 1))
    low = 1
    if oldest is not None:
        low = _index_at_or_before(oldest if not inclusive else oldest - 1) + 1
    if "cursor" in params and params["cursor"]:
        value = decode_cursor(params["cursor"], "next_ts")
        if value is None or not value.isdigit():
            return _fail("invalid_cursor")
        high = min(high, _index_at_or_before(int(value)))
    return low, high


def _posted_page(
    state: SandboxState, params: dict[str, str], channel: str, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Posted messages inside ``oldest``/``latest``/``cursor`` (already checked by
    :func:`_bounds`), newest first, at most ``limit``; and the ts (µs) of the next one when more
    remain (the cursor, an inclusive upper bound like the seeded ``next_ts``)."""
    oldest, latest = _parse_ts(params.get("oldest")), _parse_ts(params.get("latest"))
    inclusive = params.get("inclusive", "").lower() in ("1", "true")
    top = decode_cursor(params["cursor"], "next_ts") if params.get("cursor") else None

    def inside(us: int) -> bool:
        if isinstance(oldest, int) and (us < oldest or (us == oldest and not inclusive)):
            return False
        if isinstance(latest, int) and (us > latest or (us == latest and not inclusive)):
            return False
        return top is None or us <= int(top)

    rows = [o for o in posted.listed(state, channel) if inside(int(o["_us"]))]
    more = int(rows[limit]["_us"]) if len(rows) > limit else None
    with_metadata = params.get("include_all_metadata", "").lower() in ("1", "true")
    return [posted.shown(o, with_metadata) for o in rows[:limit]], more


def _history(
    state: SandboxState, params: dict[str, str], channel: str, total: int, limit: int
) -> dict[str, Any] | JSONResponse:
    """The page: posted messages first, then seeded ones, newest first."""
    bounds = _bounds(params, total)
    if isinstance(bounds, JSONResponse):
        return bounds
    low, high = bounds
    messages, more_posted = _posted_page(state, params, channel, limit)
    if more_posted is not None:
        return {"messages": messages, "more": True, "cursor": more_posted}
    stop = max(low - 1, high - (limit - len(messages)))
    messages += [message(channel, i) for i in range(high, stop, -1)]
    return {"messages": messages, "more": stop >= low, "cursor": ts_us(stop)}


@router.api_route("/api/conversations.history", methods=["GET", "POST"])
async def conversations_history(request: Request) -> Response:
    """Newest first; ``limit`` 1..999 (default 100), ``oldest``/``latest`` bounds
    (exclusive unless ``inclusive``), ``cursor`` from ``response_metadata.next_cursor``;
    posted messages (:mod:`.posted`) come first, with their ``metadata`` when
    ``include_all_metadata`` is true."""
    params, refused = await _gate(request)
    if refused is not None:
        return refused
    channel = params.get("channel", "")
    if not channel:
        return _invalid("channel", "missing required field")
    if channel not in CHANNELS:
        return _fail("channel_not_found")
    limit = _limit(params.get("limit"), HISTORY_DEFAULT, HISTORY_MAX)
    if limit is None:
        return _invalid("limit", "invalid type for field, expected integer")
    state = sandbox_state(request)
    config = state.config
    total = config.volumes.get(f"slack.messages.{channel}", config.volume("slack.messages"))
    page = _history(state, params, channel, total, limit)
    if isinstance(page, JSONResponse):
        return page
    more = bool(page["more"])
    return _ok(
        {
            "messages": page["messages"],
            "has_more": more,
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {
                "next_cursor": encode_cursor("next_ts", str(page["cursor"])) if more else ""
            },
        }
    )


@router.api_route("/api/conversations.info", methods=["GET", "POST"])
async def conversations_info(request: Request) -> Response:
    """One conversation's facts (``channel``): the seeded public channels, the app a member
    and none archived; ``channel_not_found`` for any other id."""
    params, refused = await _gate(request)
    if refused is not None:
        return refused
    channel = params.get("channel", "")
    if not channel:
        return _invalid("channel", "missing required field")
    if channel not in CHANNELS:
        return _fail("channel_not_found")
    number = list(CHANNELS).index(channel) + 1
    info = {"id": channel, "name": CHANNELS[channel], "is_channel": True, "is_group": False,
            "is_im": False, "is_private": False, "is_archived": False, "is_general":
            CHANNELS[channel] == "general", "is_member": True, "created": 1_500_000_000 + number,
            "creator": user_id(1), "name_normalized": CHANNELS[channel]}  # fmt: skip
    return _ok({"channel": info})


@router.api_route("/api/users.list", methods=["GET", "POST"])
async def users_list(request: Request) -> Response:
    """Members by id; ``limit`` up to 1000; without a limit Slack tries to send everyone
    (``limit_required`` for a workspace too big for that)."""
    params, refused = await _gate(request)
    if refused is not None:
        return refused
    total = sandbox_state(request).config.volume("slack.users")
    limit = _limit(params.get("limit"), 0, USERS_MAX)
    if limit is None:
        return _invalid("limit", "invalid type for field, expected integer")
    if limit == 0:
        if total > USERS_MAX:
            return _fail("limit_required")
        limit = USERS_MAX
    start = 1
    if params.get("cursor"):
        value = decode_cursor(params["cursor"], "user")
        if value is None or not re.fullmatch(r"U\d{8}", value):
            return _fail("invalid_cursor")
        start = int(value[1:])
    stop = min(total, start + limit - 1)
    members = [member(i) for i in range(start, stop + 1)]
    next_cursor = encode_cursor("user", user_id(stop + 1)) if stop < total else ""
    return _ok(
        {
            "members": members,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": next_cursor},
        }
    )


def _client(request: Request, form: dict[str, str]) -> tuple[str, str] | None:
    """(client_id, client_secret) from the form, else from HTTP Basic; None: unreadable."""
    client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
    scheme, _, blob = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and not client_id:
        try:
            client_id, _, client_secret = base64.b64decode(blob).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
    return client_id, client_secret


def _granted(issued: Issued) -> JSONResponse:
    return _ok(
        {
            "app_id": "A0SANDBOX1",
            "scope": "channels:history,users:read,users:read.email",
            "token_type": "user",
            "access_token": ACCESS_PREFIX + issued.access_token,
            "expires_in": issued.expires_in,
            "refresh_token": REFRESH_PREFIX + issued.refresh_token,
            "team": {"id": TEAM_ID, "name": "Sandbox"},
            "enterprise": None,
            "is_enterprise_install": False,
        }
    )


@router.post("/api/oauth.v2.access")
async def oauth_v2_access(request: Request) -> Response:
    """Refresh grant (token rotation): form fields, client credentials in the form or as
    HTTP Basic. Every refusal is HTTP 200 with ``ok: false``."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, _unavailable)) is not None:
        return fault
    form = await _params(request)
    client = _client(request, form)
    if client is None:
        return _fail("invalid_client_id")
    client_id, client_secret = client
    if form.get("code") and form.get("grant_type") in (None, "authorization_code"):
        return _code_grant(state, form, client_id, client_secret)
    if form.get("grant_type") != "refresh_token":
        return _fail("invalid_grant_type")
    with state.lock:
        known = (NAME, client_id) in state.clients
    if not known:
        return _fail("invalid_client_id")
    refresh = _strip(form.get("refresh_token", ""), REFRESH_PREFIX) or ""
    try:
        issued = state.refresh(NAME, client_id, client_secret, refresh)
    except TokenError as exc:
        return _fail("bad_client_secret" if exc.reason == "client" else "invalid_refresh_token")
    return _granted(issued)


def _code_grant(
    state: SandboxState, form: dict[str, str], client_id: str, client_secret: str
) -> Response:
    """The install's code exchange; `invalid_code` (HTTP 200, ok: false) for a reused, swapped
    or misdirected code, `bad_client_secret` / `invalid_client_id` for the client."""
    try:
        issued = state.exchange_code(
            NAME, client_id, client_secret, form.get("code", ""),
            form.get("redirect_uri") or None, form.get("code_verifier") or None,
        )  # fmt: skip
    except TokenError as exc:
        if exc.reason == "client":
            return _fail("invalid_client_id" if not state.client_known(NAME, client_id)
                         else "bad_client_secret")  # fmt: skip
        return _fail("invalid_code")
    return _granted(issued)


consent_routes(router, "/oauth/v2/authorize", NAME, "Slack", code_params)
