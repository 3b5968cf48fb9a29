"""HubSpot CRM v3 double: contacts list, OAuth refresh, one rolling budget per portal.

Order of checks mirrors the real edge: latency/fault, auth (401 carries no rate headers,
the portal is unknown), rate limit (refusals are free), then validation and the data.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import bearer_token, correlation_id, mark_token_call, preamble, sandbox_state
from sandbox.state import RateDecision, TokenError

NAME = "hubspot"
ROTATES_REFRESH_TOKENS = False  # HubSpot keeps the refresh token across refreshes
MAX_LIMIT = 100

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])

# ---- deterministic data, generated per index (page k of N costs O(limit)) ----------------

DEFAULT_PROPERTIES = (
    "createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"
)
ALWAYS_PROPERTIES = ("createdate", "hs_object_id", "lastmodifieddate")
KNOWN_PROPERTIES = frozenset(DEFAULT_PROPERTIES + ("phone", "company", "notes"))

ASCII_FIRST = (
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter",
    "Yvonne",
)
# Every 7th contact: multi-byte UTF-8 (2-, 3- and 4-byte sequences) to catch encoding bugs.
UNICODE_FIRST = (
    "José", "Zoë", "Łukasz", "李雷", "Ærøskøbing", "Дмитрий", "Nguyễn", "𠮷乃", "Renée", "Çağrı",
)
LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez",
    "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Young", "Allen", "King",
)
COMPANIES = (
    ("Acme Corp", "acme.example"), ("Globex", "globex.example"),
    ("Initech", "initech.example"), ("Umbrella", "umbrella.example"),
    ("Hooli", "hooli.example"), ("Stark Industries", "stark.example"),
    ("Wayne Enterprises", "wayne.example"), ("Tyrell", "tyrell.example"),
    ("Soylent", "soylent.example"), ("Vandelay Industries", "vandelay.example"),
    ("Cyberdyne", "cyberdyne.example"),
)
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation "
    "ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in "
    "reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur "
    "sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id "
    "est laborum. Met at trade show; follow up about renewal, pricing tiers and onboarding. "
) * 2
NOTES_LEN = 300
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def _iso(ms: int) -> str:
    """HubSpot's timestamp form: ISO-8601 UTC with milliseconds and a ``Z``."""
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def contact(i: int) -> dict[str, Any]:
    """Contact number ``i`` (1-based); a pure function of ``i`` so any page is cheap."""
    if i % 7 == 0:
        first = UNICODE_FIRST[(i // 7) % len(UNICODE_FIRST)]
    else:
        first = ASCII_FIRST[i % len(ASCII_FIRST)]
    last = LAST[(i * 31) % len(LAST)]
    company, domain = COMPANIES[(i * 17) % len(COMPANIES)]
    created_ms = i * 1_000_003 + (i * 7919) % 1000
    created, updated = _iso(created_ms), _iso(created_ms + (i * 104_729) % 2_592_000_000)
    start = (i * 13) % (len(LOREM) // 2)
    props = {
        "createdate": created,
        "email": f"{last.lower()}.{i}@{domain}",
        "firstname": first,
        "hs_object_id": str(i),
        "lastmodifieddate": updated,
        "lastname": last,
        "phone": f"+1 555 {i % 1000:03d} {(i * 7) % 10000:04d}",
        "company": company,
        "notes": f"Contact {i}: {LOREM[start:start + NOTES_LEN]}",
    }
    return {"id": str(i), "properties": props, "createdAt": created, "updatedAt": updated,
            "archived": False}


# ---- HubSpot-shaped responses -------------------------------------------------------------


def _error(status: int, message: str, category: str, headers: dict[str, str] | None = None,
           **extra: Any) -> JSONResponse:
    cid = correlation_id()
    body = {"status": "error", "message": message, "correlationId": cid, "category": category,
            **extra}
    return JSONResponse(body, status_code=status,
                        headers={"X-HubSpot-Correlation-Id": cid, **(headers or {})})


def _unavailable() -> dict[str, Any]:
    return {"status": "error", "message": "Service Unavailable", "correlationId": correlation_id(),
            "category": "SERVICE_UNAVAILABLE"}


def _rate_headers(d: RateDecision) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Max": str(d.limit),
        "X-HubSpot-RateLimit-Remaining": str(d.remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(d.window_ms),
        "X-HubSpot-RateLimit-Daily": str(d.daily_limit),
        "X-HubSpot-RateLimit-Daily-Remaining": str(d.daily_remaining),
    }


def _ago(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}(s)"
    return f"{int(seconds)} second(s)"


def _encode_after(offset: int) -> str:
    """Opaque cursor like HubSpot's ``NTI1Cg%3D%3D``: base64 of the offset, percent-encoded."""
    return base64.urlsafe_b64encode(f"{offset}\n".encode()).decode().replace("=", "%3D")


def _decode_after(raw: str) -> int | None:
    """Accept the cursor as sent in JSON (``%3D``), as decoded from the link (``=``), or
    without padding; ``None`` when it is not one of ours."""
    value = raw
    for _ in range(2):
        value = unquote(value)
    value += "=" * (-len(value) % 4)
    try:
        text = base64.b64decode(value, altchars=b"-_", validate=True).decode("ascii").strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def _auth(request: Request) -> JSONResponse | None:
    late = sandbox_state(request).check_access(NAME, bearer_token(request))
    if late is None:
        return None
    if late == "invalid":
        return _error(
            401,
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
            "oauth-overview",
            "INVALID_AUTHENTICATION",
        )
    return _error(401, f"The OAuth token used to make this call expired {_ago(late)} ago.",
                  "EXPIRED_AUTHENTICATION")


# ---- endpoints ----------------------------------------------------------------------------


@router.get("/crm/v3/objects/contacts")
async def list_contacts(request: Request) -> Response:
    """``limit`` 1..100 (default 10), opaque ``after``, ``properties`` (comma list or repeated);
    no ``paging`` key on the last page."""
    state = sandbox_state(request)
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault
    if (denied := _auth(request)) is not None:
        return denied
    decision = state.take_rate(NAME)
    headers = _rate_headers(decision)
    if decision.policy is not None:
        cid = correlation_id()
        which = "daily" if decision.policy == "DAILY" else "ten_secondly_rolling"
        body = {"status": "error", "message": f"You have reached your {which} limit.",
                "errorType": "RATE_LIMIT", "correlationId": cid, "policyName": decision.policy}
        return JSONResponse(body, status_code=429,
                            headers={**headers, "X-HubSpot-Correlation-Id": cid})

    params = request.query_params
    raw_limit = params.get("limit", "10")
    try:
        limit = int(raw_limit)
    except ValueError:
        return _error(400, f"Unable to parse limit: '{raw_limit}' is not a number",
                      "VALIDATION_ERROR", headers)
    if not 1 <= limit <= MAX_LIMIT:
        return _error(400, f"limit must be between 1 and {MAX_LIMIT}, got {limit}",
                      "VALIDATION_ERROR", headers)
    offset = 0
    if "after" in params:
        decoded = _decode_after(params["after"])
        if decoded is None:
            return _error(400, f"Invalid input: '{params['after']}' is not a valid paging cursor",
                          "VALIDATION_ERROR", headers)
        offset = decoded
    archived = params.get("archived", "false").lower()
    if archived not in ("true", "false"):
        return _error(400, f"Unable to parse archived: '{archived}'", "VALIDATION_ERROR", headers)

    wanted = [p for v in params.getlist("properties") for p in v.split(",") if p.strip()]
    names = list(dict.fromkeys(p.strip() for p in wanted)) if wanted else list(DEFAULT_PROPERTIES)
    # HubSpot always adds these three to whatever was asked for.
    names = [n for n in names if n in KNOWN_PROPERTIES] + [
        n for n in ALWAYS_PROPERTIES if n not in names]

    total = 0 if archived == "true" else state.config.hubspot_contacts  # nothing is archived
    stop = min(total, offset + limit)
    results = []
    for i in range(offset + 1, stop + 1):
        c = contact(i)
        c["properties"] = {n: c["properties"][n] for n in names}
        results.append(c)
    body: dict[str, Any] = {"results": results}
    if stop < total:
        after = _encode_after(stop)
        query = [(k, v) for k, v in params.multi_items() if k != "after"]
        query.append(("after", unquote(after)))
        link = f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(query)}"
        body["paging"] = {"next": {"after": after, "link": link}}
    return JSONResponse(body, headers=headers)


@router.post("/oauth/v1/token")
async def token(request: Request) -> Response:
    """Form-encoded refresh grant; the refresh token rotates only when configured to."""
    mark_token_call(request)
    state = sandbox_state(request)
    state.count_refresh(NAME)
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"),
                          keep_blank_values=True))

    def oauth_error(status: str, message: str) -> JSONResponse:
        cid = correlation_id()
        return JSONResponse({"status": status, "message": message, "correlationId": cid},
                            status_code=400, headers={"X-HubSpot-Correlation-Id": cid})

    if form.get("grant_type") != "refresh_token":
        return oauth_error("BAD_GRANT_TYPE", "missing or unknown grant type")
    try:
        issued = state.refresh(NAME, form.get("client_id", ""), form.get("client_secret", ""),
                               form.get("refresh_token", ""))
    except TokenError as exc:
        if exc.reason == "client":
            return oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        return oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
    return JSONResponse({"token_type": "bearer", "refresh_token": issued.refresh_token,
                         "access_token": issued.access_token, "expires_in": issued.expires_in})
