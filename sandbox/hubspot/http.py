"""What every HubSpot endpoint shares: HubSpot-shaped errors, the X-HubSpot-RateLimit-*
headers, and the gate in front of the data.

Order of checks mirrors the real edge: latency/fault, auth (401 carries no rate headers,
the portal is unknown), scopes (403 MISSING_SCOPES; see ``_missing_scope``), then the rate
limit (refusals are free).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import bearer_token, correlation_id, preamble, sandbox_state
from sandbox.state import RateDecision

NAME = "hubspot"
SCOPES_DOC = "https://developers.hubspot.com/scopes"


def error(
    status: int, message: str, category: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    cid = correlation_id()
    body = {
        "status": "error",
        "message": message,
        "correlationId": cid,
        "category": category,
        **extra,
    }
    return JSONResponse(
        body, status_code=status, headers={"X-HubSpot-Correlation-Id": cid, **(headers or {})}
    )


def unavailable() -> dict[str, Any]:
    return {
        "status": "error",
        "message": "Service Unavailable",
        "correlationId": correlation_id(),
        "category": "SERVICE_UNAVAILABLE",
    }


def rate_headers(d: RateDecision) -> dict[str, str]:
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


def _auth(request: Request) -> JSONResponse | None:
    late = sandbox_state(request).check_access(NAME, bearer_token(request))
    if late is None:
        return None
    if late == "invalid":
        return error(
            401,
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
            "oauth-overview",
            "INVALID_AUTHENTICATION",
        )
    return error(
        401,
        f"The OAuth token used to make this call expired {_ago(late)} ago.",
        "EXPIRED_AUTHENTICATION",
    )


def _missing_scope(request: Request, scope: str) -> JSONResponse | None:
    """HubSpot's 403 MISSING_SCOPES. Sandbox convention: a static private-app token ending in
    ``~scope+scope`` (e.g. ``pat-na1-x~crm.objects.deals.read``) holds only those scopes;
    every other token holds them all."""
    token = bearer_token(request) or ""
    if "~" not in token or scope in token.rsplit("~", 1)[1].split("+"):
        return None
    return error(
        403,
        "This app hasn't been granted all required scopes to make this call. Read more about "
        f"required scopes here: {SCOPES_DOC}.",
        "MISSING_SCOPES",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
        links={"scopes": SCOPES_DOC},
    )


def rate_refusal(decision: RateDecision, headers: dict[str, str]) -> JSONResponse:
    cid = correlation_id()
    which = "daily" if decision.policy == "DAILY" else "ten_secondly_rolling"
    body = {
        "status": "error",
        "message": f"You have reached your {which} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": cid,
        "policyName": decision.policy,
    }
    return JSONResponse(body, status_code=429, headers={**headers, "X-HubSpot-Correlation-Id": cid})


async def gate(request: Request, scope: str) -> Response | None:
    """Latency and faults, then the token (401), then its scopes (403): a refusal or None."""
    if (fault := await preamble(request, unavailable)) is not None:
        return fault
    return _auth(request) or _missing_scope(request, scope)


async def rate_gate(request: Request, scope: str) -> tuple[Response | None, dict[str, str]]:
    """The gate, then one call from the portal's rolling budget: (a refusal or None, the
    rate headers every answer after the auth check carries)."""
    if (denied := await gate(request, scope)) is not None:
        return denied, {}
    decision = sandbox_state(request).take_rate(NAME)
    headers = rate_headers(decision)
    if decision.policy is not None:
        return rate_refusal(decision, headers), headers
    return None, headers
