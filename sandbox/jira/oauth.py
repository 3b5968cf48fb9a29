"""OAuth: ``GET /authorize`` (the 3LO consent page of ``auth.atlassian.com``), ``POST
/oauth/token`` stands in for ``https://auth.atlassian.com/oauth/token``: the code grant
(bound to client and redirect URI; 403 ``invalid_grant`` otherwise) and the JSON or form
refresh grant, ``expires_in``, rotating refresh tokens, reuse → 403 ``invalid_grant``; and
``GET /oauth/token/accessible-resources`` (the token's two sites, ``CLOUD_ID`` first)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import bearer_token, sandbox_state, token_call, token_form
from sandbox.consentpage import code_params, consent_routes, redeem
from sandbox.jira.http import NAME, unavailable
from sandbox.state import Issued, SandboxState, TokenError

SCOPE = "read:jira-work read:jira-user offline_access"

CLOUD_ID = "11223344-a1b2-4b5c-9d8e-sandbox00001"  # the sandbox's Atlassian site
OTHER_CLOUD_ID = "55667788-c3d4-4e5f-8a9b-sandbox00002"  # a second site the user also grants

router = APIRouter()
consent_routes(router, "/authorize", NAME, "Atlassian", code_params)


@router.get("/oauth/token/accessible-resources")
def accessible_resources(request: Request) -> Response:
    """The sites a 3LO token reaches: two, for a valid token (the user granted both); 401
    otherwise."""
    if sandbox_state(request).check_access(NAME, bearer_token(request)) is not None:
        return JSONResponse({"code": 401, "message": "Unauthorized"}, status_code=401)
    return JSONResponse([
        {"id": CLOUD_ID, "name": "sandbox", "url": "https://sandbox.atlassian.net",
         "scopes": SCOPE.split(), "avatarUrl": ""},
        {"id": OTHER_CLOUD_ID, "name": "acme", "url": "https://acme.atlassian.net",
         "scopes": SCOPE.split(), "avatarUrl": ""},
    ])  # fmt: skip


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    """Atlassian's token endpoint: JSON (documented) or form body; rotates refresh tokens."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, unavailable)) is not None:
        return fault
    form = await token_form(request)
    if form.get("grant_type") == "authorization_code":
        return _code_grant(state, {k: str(v) for k, v in form.items()})
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
    return _issued(issued)


def _code_grant(state: SandboxState, form: dict[str, str]) -> Response:
    try:
        issued = redeem(state, NAME, form)
    except TokenError as exc:
        if exc.reason == "client":
            return _oauth_error(401, "access_denied", "Unauthorized")
        return _oauth_error(403, "invalid_grant", "Invalid authorization code")
    return _issued(issued)


def _issued(issued: Issued) -> Response:
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
            "token_type": "Bearer",
            "refresh_token": issued.refresh_token,
            "scope": SCOPE,
        }
    )
