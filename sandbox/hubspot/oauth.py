"""OAuth: form-encoded refresh grant; the refresh token rotates only when configured to."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import correlation_id, sandbox_state, token_call
from sandbox.hubspot.http import NAME, unavailable
from sandbox.state import TokenError

router = APIRouter()


def _oauth_error(status: str, message: str) -> JSONResponse:
    cid = correlation_id()
    return JSONResponse(
        {"status": status, "message": message, "correlationId": cid},
        status_code=400,
        headers={"X-HubSpot-Correlation-Id": cid},
    )


@router.post("/oauth/v1/token")
async def token(request: Request) -> Response:
    """Form-encoded refresh grant; the refresh token rotates only when configured to."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, unavailable)) is not None:
        return fault
    form = dict(
        parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    )
    if form.get("grant_type") != "refresh_token":
        return _oauth_error("BAD_GRANT_TYPE", "missing or unknown grant type")
    try:
        issued = state.refresh(
            NAME,
            form.get("client_id", ""),
            form.get("client_secret", ""),
            form.get("refresh_token", ""),
        )
    except TokenError as exc:
        if exc.reason == "client":
            return _oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        return _oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
    return JSONResponse(
        {
            "token_type": "bearer",
            "refresh_token": issued.refresh_token,
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
        }
    )
