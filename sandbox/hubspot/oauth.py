"""OAuth: the consent page (`/oauth/authorize`), the authorization-code grant (PKCE checked
when the authorize step had a challenge) and the refresh grant; the refresh token rotates only
when configured to."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import correlation_id, sandbox_state, token_call
from sandbox.consentpage import code_params, consent_routes, redeem
from sandbox.hubspot.http import NAME, unavailable
from sandbox.state import Issued, SandboxState, TokenError

router = APIRouter()
consent_routes(router, "/oauth/authorize", "hubspot", "HubSpot", code_params)


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
    if form.get("grant_type") == "authorization_code":
        return _code_grant(state, form)
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
    return _issued(issued, state)


def _code_grant(state: SandboxState, form: dict[str, str]) -> Response:
    """`code` for tokens: the code's client, redirect_uri and PKCE verifier must match."""
    try:
        issued = redeem(state, NAME, form)
    except TokenError as exc:
        if exc.reason == "client":
            return _oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        return _oauth_error("BAD_AUTH_CODE", "missing or unknown auth code")
    return _issued(issued, state)


def _issued(issued: Issued, state: SandboxState) -> Response:
    """HubSpot's answer to either grant, with the portal's `hub_id` (added August 2025)."""
    return JSONResponse(
        {
            "token_type": "bearer",
            "refresh_token": issued.refresh_token,
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
            "hub_id": state.config.hubspot_hub_id,
        }
    )
