"""What every Salesforce endpoint shares: the error list shape, ``Sforce-Limit-Info``, and
the gate in front of the data.

Order of checks mirrors the real edge: latency/fault, auth (a 401 carries no limit header,
the org is unknown), the API request limit (refusals are free), then the request itself.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import preamble, sandbox_state
from sandbox.state import RateDecision

NAME = "salesforce"
VERSION = re.compile(r"^v\d{2}\.0$")


def errors(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        [{"message": message, "errorCode": code}], status_code=status, headers=headers
    )


def unavailable() -> Any:
    return [{"message": "Server temporarily unavailable", "errorCode": "SERVER_UNAVAILABLE"}]


def limit_header(d: RateDecision) -> dict[str, str]:
    """``Sforce-Limit-Info: api-usage=used/limit`` (the sandbox's rolling budget stands in for
    the org's 24-hour allocation)."""
    return {"Sforce-Limit-Info": f"api-usage={d.limit - d.remaining}/{d.limit}"}


def _token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() in ("bearer", "oauth") else None


async def gate(request: Request) -> tuple[Response | None, dict[str, str]]:
    """Fault, auth and limit checks shared by every data endpoint."""
    state = sandbox_state(request)
    if (fault := await preamble(request, unavailable)) is not None:
        return fault, {}
    if state.check_access(NAME, _token(request)) is not None:
        return errors(401, "INVALID_SESSION_ID", "Session expired or invalid"), {}
    decision = state.take_rate(NAME)
    headers = limit_header(decision)
    if decision.policy is not None:
        return errors(
            403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", headers
        ), headers
    return None, headers


def not_found(headers: dict[str, str]) -> JSONResponse:
    return errors(404, "NOT_FOUND", "The requested resource does not exist", headers)
