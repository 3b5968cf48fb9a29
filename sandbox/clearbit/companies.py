"""Clearbit Company API double: `GET /v2/companies/find?domain=` with Clearbit's dialect.

Order of checks: latency/fault (a 503 `api_error`), the API key (Bearer, or Basic with the key
as user name as Clearbit's own clients send it; 401 otherwise), the rate limit (429
`rate_limit`; refusals are free), then the domain: a malformed one (no top-level domain, a
numeric or one-letter one, bad characters) is a 422 `params_invalid`, a well-formed one
Clearbit does not know a 404 `unknown_record`, a known one (or one of its aliases) a 200 with
the company. Every answer past the key check carries `X-RateLimit-Limit`, `-Remaining` and
`-Reset` (seconds until a request is accepted again).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.clearbit.data import company, known
from sandbox.common import preamble, sandbox_state
from sandbox.state import SandboxState

NAME = "clearbit"
ROTATES_REFRESH_TOKENS = False  # API keys, no OAuth
# labels of letters, digits and inner hyphens; the last one letters only (or punycode)
DOMAIN = re.compile(
    r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)

router = APIRouter()


def _error(status: int, kind: str, message: str, headers: dict[str, str]) -> JSONResponse:
    """Clearbit's error shape: `{"error": {"type", "message"}}`."""
    body = {"error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _unavailable() -> dict[str, Any]:
    return {"error": {"type": "api_error", "message": "Internal API error."}}


def _key(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip() or None
    if scheme.lower() == "basic":  # curl -u sk_…:
        try:
            return base64.b64decode(value.strip(), validate=True).decode().split(":", 1)[0] or None
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    return None


def _rate_headers(state: SandboxState, refused: str | None = None) -> dict[str, str]:
    """The budget as the rolling window holds it now (a read-only look); a refusal's reset is
    when its window lets a request in again (a DAILY one: the next UTC midnight)."""
    limit = state.config.budget(NAME)
    window_s = state.config.rate_window_ms / 1000
    now = time.monotonic()
    with state.lock:
        live = [t for t in state.windows.get(NAME, ()) if t > now - window_s]
    reset = (live[0] + window_s - now) if live else window_s
    if refused == "DAILY":
        reset = 86400 - time.time() % 86400
    remaining = 0 if refused else max(0, limit - len(live))
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(max(1, math.ceil(reset))),
    }


async def _gate(request: Request) -> tuple[Response | None, dict[str, str]]:
    """Latency/fault, the key, the rate limit: a refusal, else the headers of the answer."""
    state = sandbox_state(request)
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault, {}
    key = _key(request)
    if key is None or state.check_access(NAME, key) == "invalid":  # keys never expire
        message = "API key required." if key is None else "Invalid API key."
        return _error(401, "unauthorized", message, {"www-authenticate": "Bearer"}), {}
    decision = state.take_rate(NAME)
    if decision.policy is not None:
        headers = _rate_headers(state, decision.policy)
        message = f"Rate limit exceeded. Retry in {headers['X-RateLimit-Reset']} seconds."
        return _error(429, "rate_limit", message, headers), {}
    return None, _rate_headers(state)


@router.get("/v2/companies/find")
async def find_company(request: Request) -> Response:
    """The company at `domain` (case-insensitive; an alias finds its company)."""
    denied, headers = await _gate(request)
    if denied is not None:
        return denied
    raw = request.query_params.get("domain")
    if raw is None or not raw.strip():
        return _error(422, "params_invalid", "Missing required parameter: domain", headers)
    domain = raw.strip().lower()
    if len(domain) > 253 or not DOMAIN.match(domain):
        return _error(422, "params_invalid", f"Invalid domain: {raw}", headers)
    canonical = known(domain)
    if canonical is None:
        return _error(404, "unknown_record", f"Unknown domain: {domain}", headers)
    return JSONResponse(company(canonical), headers=headers)
