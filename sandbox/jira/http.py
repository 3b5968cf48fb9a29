"""What every Jira endpoint shares: the error shape, the X-RateLimit-* headers and the
429 with ``Retry-After``, the gate in front of the data, integer parameters.

Every accepted response carries ``X-RateLimit-Limit``/``-Remaining`` (and
``X-RateLimit-NearLimit: true`` at ≤ 20 % left); a refusal is a 429 with ``Retry-After``
(seconds), ``X-RateLimit-Reset`` (ISO minute) and ``RateLimit-Reason: jira-burst-based``.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import bearer_token, preamble, sandbox_state
from sandbox.jira.jql import JqlError
from sandbox.state import RateDecision

NAME = "jira"
NEAR_LIMIT = 0.2


def error_response(
    status: int,
    messages: list[str],
    headers: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"errorMessages": messages, "errors": errors or {}}, status_code=status, headers=headers
    )


def unavailable() -> dict[str, Any]:
    return {"errorMessages": ["Service Unavailable"], "errors": {}}


def rate_headers(d: RateDecision) -> dict[str, str]:
    headers = {"X-RateLimit-Limit": str(d.limit), "X-RateLimit-Remaining": str(d.remaining)}
    if d.remaining <= d.limit * NEAR_LIMIT:
        headers["X-RateLimit-NearLimit"] = "true"
    return headers


def _retry_after(request: Request, d: RateDecision) -> int:
    """Whole seconds until the window admits a call again (until UTC midnight when daily)."""
    state = sandbox_state(request)
    now = time.time()
    if d.policy == "DAILY":
        return max(1, math.ceil(86400 - now % 86400))
    window_s = d.window_ms / 1000
    with state.lock:
        window = state.windows.get(NAME)
        oldest = window[0] if window else None
    left = window_s if oldest is None else oldest + window_s - time.monotonic()
    return max(1, math.ceil(left))


def _refusal(request: Request, d: RateDecision) -> JSONResponse:
    wait = _retry_after(request, d)
    reset = datetime.fromtimestamp(math.ceil((time.time() + wait) / 60) * 60, UTC)
    headers = {
        **rate_headers(d),
        "Retry-After": str(wait),
        "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
        "RateLimit-Reason": "jira-burst-based",
    }
    return error_response(429, ["Rate limit exceeded."], headers)


async def gate(request: Request) -> tuple[Response | None, dict[str, str]]:
    state = sandbox_state(request)
    if (fault := await preamble(request, unavailable)) is not None:
        return fault, {}
    if state.check_access(NAME, bearer_token(request)) is not None:
        body = {"code": 401, "message": "Client must be authenticated to access this resource."}
        return JSONResponse(body, status_code=401), {}
    decision = state.take_rate(NAME)
    if decision.policy is not None:
        return _refusal(request, decision), {}
    return None, rate_headers(decision)


def base_url(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/{NAME}"


def int_param(raw: Any, name: str, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise JqlError(f"The value '{raw}' is not valid for the parameter '{name}'.") from None
