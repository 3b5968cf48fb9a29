"""What every GitHub endpoint shares: GitHub-shaped errors, the x-ratelimit-* headers and
the gate in front of the data.

Order of checks mirrors api.github.com: latency/fault, User-Agent, auth (401 "Bad
credentials", counted against the unauthenticated pool), the primary rate limit (refusals
are free), then the optional secondary limit.

Knobs (module level, for in-process tests): ``PRIMARY_LIMIT_STATUS`` (403 or 429; None, the
default, alternates 403, 429, 403… per refusal, so a remote test sees both), and the
secondary limit, enabled by a ``rate_budgets["github:secondary"]`` budget in the live config
(same window length), answered 403 with ``retry-after`` (``SECONDARY_RETRY_AFTER_S`` pins it;
0 omits it).
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from sandbox.common import preamble, sandbox_state
from sandbox.state import RateDecision, SandboxState

NAME = "github"
PRIMARY_LIMIT_STATUS: int | None = None  # 403 | 429 | None (alternate per refusal)
SECONDARY_KEY = f"{NAME}:secondary"  # rate_budgets key enabling the secondary limit
# Secondary refusals' retry-after: None = seconds until the secondary window frees; 0 = no
# retry-after at all (GitHub then says: wait at least a minute).
SECONDARY_RETRY_AFTER_S: int | None = None

DOCS = "https://docs.github.com/rest"
ISSUES_DOC = f"{DOCS}/issues/issues#list-repository-issues"
PULLS_DOC = f"{DOCS}/pulls/pulls#list-pull-requests"
AUTH_DOC = DOCS
RATE_DOC = f"{DOCS}/overview/rate-limits-for-the-rest-api"
SECONDARY_DOC = f"{RATE_DOC}#about-secondary-rate-limits"
UA_REFUSAL = (
    "Request forbidden by administrative rules. Please make sure your request has a "
    "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api"
    "#user-agent-required). Check https://developer.github.com for other possible causes.\n"
)


def _request_id() -> str:
    return uuid.uuid4().hex[:8].upper() + ":" + uuid.uuid4().hex[:12].upper()


def base_headers() -> dict[str, str]:
    return {"x-github-request-id": _request_id(), "x-github-api-version-selected": "2022-11-28"}


def error(
    status: int, message: str, doc: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"message": message, **extra, "documentation_url": doc, "status": str(status)}
    return JSONResponse(body, status_code=status, headers={**base_headers(), **(headers or {})})


def unavailable() -> dict[str, Any]:
    return {"message": "Server Error", "documentation_url": DOCS, "status": "503"}


def _window_end(state: SandboxState, key: str, window_ms: int) -> float:
    """Wall-clock instant the oldest accepted call of `key` leaves the rolling window."""
    now_m, now = time.monotonic(), time.time()
    with state.lock:
        window = state.windows.get(key)
        oldest = window[0] if window else now_m
    return now + (oldest + window_ms / 1000 - now_m)


def _rate_headers(state: SandboxState, d: RateDecision) -> dict[str, str]:
    if d.policy == "DAILY":
        remaining, reset = 0, (int(time.time() // 86400) + 1) * 86400
    else:
        remaining, reset = d.remaining, math.ceil(_window_end(state, NAME, d.window_ms))
    return {
        "x-ratelimit-limit": str(d.limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-used": str(d.limit - remaining),
        "x-ratelimit-reset": str(reset),  # epoch seconds, not a delta
        "x-ratelimit-resource": "core",
    }


def _unauthenticated_headers() -> dict[str, str]:
    return {
        "x-ratelimit-limit": "60",
        "x-ratelimit-remaining": "59",
        "x-ratelimit-used": "1",
        "x-ratelimit-reset": str(int(time.time()) + 3600),
        "x-ratelimit-resource": "core",
    }


def auth_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() in ("bearer", "token") else None


def _primary_refusal(state: SandboxState, headers: dict[str, str]) -> JSONResponse:
    status = PRIMARY_LIMIT_STATUS or (403 if state.stats()["rate_limited"] % 2 else 429)
    body = {
        "message": "API rate limit exceeded for user ID 1.",
        "documentation_url": f"{RATE_DOC}#about-the-primary-rate-limit",
        "status": str(status),
    }
    return JSONResponse(body, status_code=status, headers=headers)


def secondary_body(headers: dict[str, str]) -> dict[str, Any]:
    """GitHub's secondary-limit refusal, naming the request id of ``headers``."""
    return {
        "message": "You have exceeded a secondary rate limit. Please wait a few "
        "minutes before you try again. If you reach out to GitHub Support for help, "
        f"please include the request ID {headers['x-github-request-id']}.",
        "documentation_url": SECONDARY_DOC,
        "status": "403",
    }


def _secondary_refusal(
    state: SandboxState, second: RateDecision, headers: dict[str, str]
) -> JSONResponse:
    wait = SECONDARY_RETRY_AFTER_S
    if wait is None:
        end = _window_end(state, SECONDARY_KEY, second.window_ms)
        wait = max(1, math.ceil(end - time.time()))
    body = secondary_body(headers)
    extra = {"retry-after": str(wait)} if wait else {}
    return JSONResponse(body, status_code=403, headers={**headers, **extra})


async def gate(request: Request) -> tuple[Response | None, dict[str, str]]:
    """Fault, User-Agent, auth, primary and secondary limits: a refusal, or the headers."""
    state = sandbox_state(request)
    if (fault := await preamble(request, unavailable)) is not None:
        return fault, {}
    if not request.headers.get("user-agent"):
        return PlainTextResponse(UA_REFUSAL, status_code=403), {}
    if state.check_access(NAME, auth_token(request)) is not None:
        return error(401, "Bad credentials", AUTH_DOC, _unauthenticated_headers()), {}
    decision = state.take_rate(NAME)
    headers = {**base_headers(), **_rate_headers(state, decision)}
    if decision.policy is not None:
        return _primary_refusal(state, headers), headers
    if SECONDARY_KEY in state.config.rate_budgets:
        second = state.take_rate(SECONDARY_KEY)
        if second.policy is not None:
            return _secondary_refusal(state, second, headers), headers
    return None, headers
