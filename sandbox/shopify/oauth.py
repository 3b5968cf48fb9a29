"""OAuth: the install consent page (`/admin/oauth/authorize`, comma-separated scopes, no
PKCE), its HMAC-signed callback (`code`, `hmac`, `host`, `shop`, `state`, `timestamp`; hex
HMAC-SHA256 with the app secret over the other parameters sorted), the code exchange (JSON or
form `client_id`, `client_secret`, `code`), expiring offline tokens, rotating refresh tokens,
Doorkeeper-style errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state, token_call, token_form
from sandbox.consentpage import code_params, consent_routes
from sandbox.shopify.http import NAME, json_response, unavailable
from sandbox.shopify.webhooks import SHOP_DOMAIN
from sandbox.state import Issued, SandboxState, TokenError

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

BAD_CODE = "The authorization code was not found or was already used"

router = APIRouter()


def _signed(
    state: SandboxState, vendor: str, form: dict[str, str], approved: bool
) -> dict[str, str]:
    """The install callback, signed with the app's secret (a Deny is not signed)."""
    unbound = {k: v for k, v in form.items() if not k.startswith("code_challenge")}  # no PKCE
    params = code_params(state, vendor, unbound, approved)
    if not approved:
        return params
    params |= {
        "shop": SHOP_DOMAIN,
        "timestamp": str(int(time.time())),
        "host": base64.b64encode(f"{SHOP_DOMAIN}/admin".encode()).decode(),
    }
    secret = state.client_secret(vendor, form.get("client_id", "")) or ""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
    params["hmac"] = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return params


consent_routes(router, "/admin/oauth/authorize", NAME, "Shopify", _signed)


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return json_response({"error": error, "error_description": description}, status)


@router.post("/admin/oauth/access_token")
async def access_token(request: Request) -> Response:
    """Form-encoded or JSON ``grant_type=refresh_token``; Doorkeeper-style OAuth errors."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, unavailable)) is not None:
        return fault
    form = await token_form(request)
    if form.get("code") and form.get("grant_type") in (None, "authorization_code"):
        return _code_grant(state, {k: str(v) for k, v in form.items()})
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
    return _issued(issued)


def _code_grant(state: SandboxState, form: dict[str, str]) -> Response:
    """Shopify's exchange: `client_id`, `client_secret`, `code` (no redirect_uri, no PKCE)."""
    try:
        issued = state.exchange_code(
            NAME, form.get("client_id", ""), form.get("client_secret", ""), form.get("code", ""),
            None, None,
        )  # fmt: skip
    except TokenError as exc:
        if exc.reason == "client":
            return _oauth_error(401, "invalid_client", BAD_CLIENT)
        return _oauth_error(400, "invalid_request", BAD_CODE)
    return _issued(issued)


def _issued(issued: Issued) -> Response:
    return json_response(
        {
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
            "refresh_token": issued.refresh_token,
            "refresh_token_expires_in": REFRESH_TOKEN_TTL_S,
            "scope": SCOPE,
        }
    )
