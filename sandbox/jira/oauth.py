"""OAuth: ``POST /oauth/token`` stands in for ``https://auth.atlassian.com/oauth/token``:
JSON or form refresh grant, ``expires_in``, rotating refresh tokens, reuse → 403
``invalid_grant``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state, token_call, token_form
from sandbox.jira.http import NAME, unavailable
from sandbox.state import TokenError

SCOPE = "read:jira-work read:jira-user offline_access"

router = APIRouter()


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    """Atlassian's token endpoint: JSON (documented) or form body; rotates refresh tokens."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, unavailable)) is not None:
        return fault
    form = await token_form(request)
    if form.get("grant_type") != "refresh_token":
        return _oauth_error(
            400, "unsupported_grant_type", "The authorization grant type is not supported."
        )
    try:
        issued = state.refresh(
            NAME,
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
            str(form.get("refresh_token", "")),
        )
    except TokenError as exc:
        if exc.reason == "client":
            return _oauth_error(401, "access_denied", "Unauthorized")
        return _oauth_error(403, "invalid_grant", "Unknown or invalid refresh token.")
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
            "token_type": "Bearer",
            "refresh_token": issued.refresh_token,
            "scope": SCOPE,
        }
    )
