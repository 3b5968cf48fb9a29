"""What every Shopify endpoint shares: the API version in the path, the access-token header,
Shopify-shaped JSON answers, and the gate (fault, version, auth) in front of the data."""

from __future__ import annotations

import re
import uuid
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import preamble, sandbox_state

NAME = "shopify"
API_VERSION = "2025-10"
OLDEST_SUPPORTED = "2025-01"
UNAUTHORIZED = "[API] Invalid API key or access token (unrecognized login or wrong password)"


def unavailable() -> dict[str, Any]:
    return {"errors": "Service Unavailable"}


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        body, status_code=status, headers={"X-Request-Id": str(uuid.uuid4()), **(headers or {})}
    )


def served_version(raw: str) -> str | None:
    """The version served: ``None`` (404) unless it looks like one; old ones fall forward."""
    if raw == "unstable":
        return raw
    if not re.fullmatch(r"\d{4}-(01|04|07|10)", raw):
        return None
    return max(raw, OLDEST_SUPPORTED)


def access_token(request: Request) -> str | None:
    return request.headers.get("x-shopify-access-token") or None


def _auth(request: Request) -> JSONResponse | None:
    """Unknown and expired tokens get the same 401 (Shopify does not say which)."""
    if sandbox_state(request).check_access(NAME, access_token(request)) is None:
        return None
    return json_response({"errors": UNAUTHORIZED}, 401)


async def gate(request: Request, version: str) -> tuple[Response | None, str]:
    """Latency and faults, then the path's version (404), then the token (401): a refusal,
    or None and the version served."""
    if (fault := await preamble(request, unavailable)) is not None:
        return fault, ""
    served = served_version(version)
    if served is None:
        return json_response({"errors": "Not Found"}, 404), ""
    if (denied := _auth(request)) is not None:
        return denied, served
    return None, served
