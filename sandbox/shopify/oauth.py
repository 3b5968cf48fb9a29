"""OAuth: expiring offline tokens, rotating refresh tokens, Doorkeeper-style errors."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state, token_call, token_form
from sandbox.shopify.http import NAME, json_response, unavailable
from sandbox.state import TokenError

REFRESH_TOKEN_TTL_S = 90 * 86400
SCOPE = "read_customers,read_orders"
BAD_GRANT_TYPE = "The authorization grant type is not supported by the authorization server."
BAD_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication included, "
    "or unsupported authentication method."
)
BAD_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)

router = APIRouter()


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return json_response({"error": error, "error_description": description}, status)


@router.post("/admin/oauth/access_token")
async def access_token(request: Request) -> Response:
    """Form-encoded or JSON ``grant_type=refresh_token``; Doorkeeper-style OAuth errors."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, unavailable)) is not None:
        return fault
    form = await token_form(request)
    if form.get("grant_type") != "refresh_token":
        return _oauth_error(400, "unsupported_grant_type", BAD_GRANT_TYPE)
    try:
        issued = state.refresh(
            NAME,
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
            str(form.get("refresh_token", "")),
        )
    except TokenError as exc:
        if exc.reason == "client":
            return _oauth_error(401, "invalid_client", BAD_CLIENT)
        return _oauth_error(400, "invalid_grant", BAD_GRANT)
    return json_response(
        {
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "refresh_token_expires_in": REFRESH_TOKEN_TTL_S,
            "scope": SCOPE,
        }
    )
