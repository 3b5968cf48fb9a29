"""OAuth: the consent page (`/services/oauth2/authorize`; Deny sends `error=access_denied`
with `error_description=end-user denied authorization`), the authorization-code grant (PKCE
checked; the answer has `instance_url` and a `refresh_token`) and the form-encoded refresh
grant. No ``expires_in`` (session timeout is an org setting);
a new ``refresh_token`` only when rotation is configured."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state, token_call
from sandbox.consentpage import code_params, consent_routes
from sandbox.salesforce.http import NAME, unavailable
from sandbox.state import SandboxState, TokenError

ROTATES_REFRESH_TOKENS = False  # refresh-token rotation is an opt-in Connected App setting

router = APIRouter()


def _callback(
    state: SandboxState, vendor: str, form: dict[str, str], approved: bool
) -> dict[str, str]:
    params = code_params(state, vendor, form, approved)
    if not approved:
        params["error_description"] = "end-user denied authorization"
    return params


consent_routes(router, "/services/oauth2/authorize", NAME, "Salesforce", _callback)


def _oauth_error(error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


def _refused(state: SandboxState, exc: TokenError, client_id: str) -> JSONResponse:
    """Salesforce tells an unknown client from a wrong secret, and both from a bad token."""
    if exc.reason != "client":
        return _oauth_error("invalid_grant", "expired access/refresh token")
    with state.lock:
        known = (NAME, client_id) in state.clients
    if not known:
        return _oauth_error("invalid_client_id", "client identifier invalid")
    return _oauth_error("invalid_client", "invalid client credentials")


def _identity(client_id: str, secret: str) -> dict[str, str]:
    """``id``, ``issued_at`` and the HMAC ``signature`` over both, keyed by the secret."""
    org = hashlib.sha256(client_id.encode()).hexdigest()[:9].upper()
    identity = f"https://login.salesforce.com/id/00D{org}AAA/005{org}AAA"
    issued_at = str(int(time.time() * 1000))
    signature = base64.b64encode(
        hmac.new(secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()
    ).decode()
    return {"id": identity, "issued_at": issued_at, "signature": signature}


@router.post("/services/oauth2/token")
async def token(request: Request) -> Response:
    """Form-encoded refresh grant. No ``expires_in`` (session timeout is an org setting); a
    new ``refresh_token`` only when rotation is configured."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, unavailable)) is not None:
        return fault
    form = dict(
        parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    )
    if form.get("grant_type") == "authorization_code":
        return _code_grant(request, state, form)
    if form.get("grant_type") != "refresh_token":
        return _oauth_error("unsupported_grant_type", "grant type not supported")
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    try:
        issued = state.refresh(NAME, client_id, secret, form.get("refresh_token", ""))
    except TokenError as exc:
        return _refused(state, exc, client_id)
    signed = _identity(client_id, secret)
    body = {
        "access_token": issued.access_token,
        "instance_url": f"{str(request.base_url).rstrip('/')}/{NAME}",
        "id": signed["id"],
        "token_type": "Bearer",
        "issued_at": signed["issued_at"],
        "signature": signed["signature"],
    }
    if state.config.rotate_refresh_tokens.get(NAME, ROTATES_REFRESH_TOKENS):
        body["refresh_token"] = issued.refresh_token
    return JSONResponse(body)


def _code_grant(request: Request, state: SandboxState, form: dict[str, str]) -> Response:
    """`code` for tokens (always with a refresh token here: the app asked `refresh_token`)."""
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    try:
        issued = state.exchange_code(
            NAME, client_id, secret, form.get("code", ""), form.get("redirect_uri", ""),
            form.get("code_verifier") or None,
        )  # fmt: skip
    except TokenError as exc:
        if exc.reason == "code":
            return _oauth_error("invalid_grant", "authentication failure")
        return _refused(state, exc, client_id)
    signed = _identity(client_id, secret)
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "instance_url": f"{str(request.base_url).rstrip('/')}/{NAME}",
            "id": signed["id"],
            "token_type": "Bearer",
            "issued_at": signed["issued_at"],
            "signature": signed["signature"],
            "scope": "api refresh_token",
        }
    )
