"""Stripe Connect OAuth (connect.stripe.com): the consent page and the token endpoint.

`GET /oauth/authorize` is the consent page (Approve / Deny); approving redirects with `code`
and `state`, denying with `error=access_denied`, `error_description` and `state`. `POST
/oauth/token` takes `grant_type` (`authorization_code` with `code`, or `refresh_token` with
`refresh_token`) and knows the platform by its secret key: the `client_secret` field, or the
key as Bearer / Basic user, as Stripe's libraries send it. No `client_id`, `redirect_uri` or
PKCE: Stripe's token request has none. The answer is Stripe's: `access_token` (a secret key
of the connected account that never expires), `refresh_token`, `stripe_user_id`,
`stripe_publishable_key`, `scope`, `livemode`, `token_type`. Refusals are OAuth-shaped
(`{"error": "<code>", "error_description": …}`, `error` a string, unlike the API's object):
400 `invalid_grant` (a code unknown, used, expired or another platform's), `invalid_request`,
`unsupported_grant_type`; 401 `invalid_client` for an unknown key (the sandbox's choice).
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state, token_call, token_form
from sandbox.consentpage import code_params, consent_routes
from sandbox.state import Issued, SandboxState, TokenError
from sandbox.stripe.reads import NAME, _key, _masked, _suffix, _unavailable

router = APIRouter()
DENIED = "The user denied your request"


def _redirect(
    state: SandboxState, vendor: str, form: dict[str, str], approved: bool
) -> dict[str, str]:
    """Stripe's redirect back: RFC 6749's, with an `error_description` on a refusal."""
    params = code_params(state, vendor, form, approved)
    return params if approved else {**params, "error_description": DENIED}


consent_routes(router, "/oauth/authorize", NAME, "Stripe", _redirect)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    """The code grant and the refresh grant, for the platform the secret key names."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, _unavailable)) is not None:
        return fault
    form = {k: str(v) for k, v in (await token_form(request)).items()}
    key = form.get("client_secret") or _key(request) or ""
    client_id = state.client_by_secret(NAME, key)
    if client_id is None:
        return _oauth_error(401, "invalid_client", f"No such API key: {_masked(key)}")
    grant = form.get("grant_type", "")
    if grant == "authorization_code":
        return _code_grant(state, client_id, key, form.get("code", ""))
    if grant == "refresh_token":
        return _refresh_grant(state, client_id, key, form)
    return _oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {grant}")


def _code_grant(state: SandboxState, client_id: str, key: str, code: str) -> Response:
    if not code:
        return _oauth_error(400, "invalid_request", "No authorization code provided")
    scope = state.code_scope(code) or "read_only"
    try:
        issued = state.exchange_code(NAME, client_id, key, code, None, None)
    except TokenError:
        return _oauth_error(400, "invalid_grant", "Authorization code does not exist or was "
                            "already used")  # fmt: skip
    return _answer(issued, client_id, scope)


def _refresh_grant(state: SandboxState, client_id: str, key: str, form: dict[str, str]) -> Response:
    try:
        issued = state.refresh(NAME, client_id, key, form.get("refresh_token", ""))
    except TokenError:
        return _oauth_error(400, "invalid_grant", "Refresh token does not exist or was revoked")
    return _answer(issued, client_id, form.get("scope") or "read_only")


def _answer(issued: Issued, client_id: str, scope: str) -> Response:
    """No `expires_in`: a Connect access token does not expire. The connected account's id
    is one per platform here (the sandbox holds one Stripe account's data)."""
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "livemode": False,
            "refresh_token": issued.refresh_token,
            "scope": scope,
            "stripe_publishable_key": "pk_test_" + secrets.token_urlsafe(18),
            "stripe_user_id": "acct_" + _suffix(f"acct{client_id}", 16),
            "token_type": "bearer",
        }
    )
