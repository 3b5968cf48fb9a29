"""Signing in to `/mcp` with OAuth: toolqueue is the authorization server of its own MCP
endpoint, built on the official SDK's auth support (its provider protocol, its metadata,
authorize, token, registration and revocation handlers).

A person signs in at `/oauth/signin` by pasting an API key of their tenant once (toolqueue has
tenants and keys, no user passwords); the tokens issued then act as that key, narrowed to the
scopes the client asked for (`read`, `write`, `approve`: what MCP tools need; `admin` stays
with API keys). Revoking the key ends its tokens (app.store.oauth). Tokens are for the `/mcp`
resource only (RFC 8707): /v1 routes keep taking API keys.

Endpoints (the SDK's paths, relative to the issuer, `Settings.issuer_url`):
`/.well-known/oauth-protected-resource/mcp` (RFC 9728), `/.well-known/oauth-authorization-server`
(RFC 8414), `/register` (RFC 7591), `/authorize` (PKCE S256 required), `/token`, `/revoke`, and
the sign-in page `/oauth/signin`. None is a JSON API route, so none is in the OpenAPI schema.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from anyio import to_thread
from fastapi import FastAPI
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    IdentityAssertionParams,
    RefreshToken,
    RegistrationError,
    TokenError,
    construct_redirect_uri,
)
from mcp.server.auth.routes import (
    build_resource_metadata_url,
    create_auth_routes,
    create_protected_resource_routes,
)
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from app.kernel import pages
from app.kernel.errors import Unauthorized
from app.kernel.settings import get_settings
from app.mcp import oauthlimits as limits
from app.store import oauth as store
from app.store.apikeys import Principal, authenticate

MCP_SCOPES = ("read", "write", "approve")
MAX_REGISTRATION_BYTES = 8192  # a real client's metadata (name, redirect URIs, URLs) is < 2 KiB
SIGNIN_PATH = "/oauth/signin"
# no `form-action`: browsers apply it to the redirect after the POST too, and a client's
# redirect URI may be any origin or a native app's own scheme
PAGE_HEADERS = pages.HEADERS


def resource_url(mcp_path: str) -> str:
    return get_settings().issuer_url + mcp_path


def resource_metadata_url(mcp_path: str) -> str:
    return str(build_resource_metadata_url(AnyHttpUrl(resource_url(mcp_path))))


def principal(token: str, mcp_path: str) -> Principal:
    """Who a bearer on `/mcp` is: an access token's key (narrowed to its grant), else an API
    key. Raises Unauthorized (`invalid_token`) for anything else."""
    if not token.startswith(store.ACCESS_PREFIX):
        return authenticate(token)
    grant = store.access(token)
    if grant is None or not _same_resource(grant.resource, resource_url(mcp_path)):
        raise Unauthorized("the access token is unknown or expired", code="invalid_token")
    who = grant.principal()
    if who is None:
        raise Unauthorized("the API key behind this access token was revoked", code="invalid_token")
    return who


def _same_resource(granted: str | None, ours: str) -> bool:
    return granted is None or granted.rstrip("/") == ours.rstrip("/")


class Provider:
    """The SDK's `OAuthAuthorizationServerProvider`, over app.store.oauth (Redis calls run in a
    worker thread, as every async surface here does)."""

    def __init__(self, mcp_path: str) -> None:
        self.mcp_path = mcp_path

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        doc = await to_thread.run_sync(store.client, client_id)
        return OAuthClientInformationFull.model_validate(doc) if doc else None

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        """Keep the registration (its secret sealed: app.store.oauth.save_client), refusing
        one larger than any real client's metadata: each is kept up to a day unused."""
        doc = client_info.model_dump(mode="json", exclude_none=True)
        if len(orjson.dumps(doc)) > MAX_REGISTRATION_BYTES:
            raise RegistrationError(
                "invalid_client_metadata",
                f"client metadata is limited to {MAX_REGISTRATION_BYTES} bytes",
            )
        await to_thread.run_sync(store.save_client, client_info.client_id, doc)

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        """Park the request and send the person to the sign-in page."""
        if params.resource and not _same_resource(params.resource, resource_url(self.mcp_path)):
            raise AuthorizeError("invalid_target", "this server issues tokens for its /mcp only")
        pending = {
            "client_id": client.client_id,
            "client_name": client.client_name or client.client_id,
            "redirect_uri": str(params.redirect_uri),
            "redirect_uri_provided_explicitly": params.redirect_uri_provided_explicitly,
            "code_challenge": params.code_challenge,
            "scopes": params.scopes or list(MCP_SCOPES),
            "state": params.state,
            "resource": params.resource,
        }
        rid = await to_thread.run_sync(store.save_request, pending)
        return f"{get_settings().issuer_url}{SIGNIN_PATH}?request={rid}"

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        doc = await to_thread.run_sync(store.code, authorization_code)
        if doc is None or doc.get("client_id") != client.client_id:
            return None
        return AuthorizationCode.model_validate({**doc, "code": authorization_code})

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        grant = await to_thread.run_sync(store.take_code, authorization_code.code)
        if grant is None:  # spent by a concurrent exchange
            raise TokenError("invalid_grant", "authorization code does not exist")
        tokens = await self._tokens(client, grant)
        await to_thread.run_sync(store.spend_code, authorization_code.code, tokens)
        return _oauth_token(tokens)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        grant = await to_thread.run_sync(store.refresh, refresh_token)
        if grant is None or grant.client_id != client.client_id:
            return None
        return RefreshToken(
            token=refresh_token,
            client_id=grant.client_id,
            scopes=list(grant.scopes),
            expires_at=grant.expires_at,
            resource=grant.resource,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        grant = await to_thread.run_sync(store.refresh, refresh_token.token)
        if grant is None or await to_thread.run_sync(grant.principal) is None:
            raise TokenError("invalid_grant", "the refresh token or its API key is gone")
        narrowed = store.Grant(
            grant.tenant_id, grant.key_id, grant.client_id, tuple(scopes), grant.resource
        )
        tokens = await to_thread.run_sync(store.rotate, refresh_token.token, narrowed)
        if tokens is None:
            raise TokenError("invalid_grant", "the refresh token was already used")
        await to_thread.run_sync(store.touch_client, client.client_id)  # lives as its tokens do
        return _oauth_token(tokens)

    async def load_access_token(self, token: str) -> AccessToken | None:
        grant = await to_thread.run_sync(store.access, token)
        if grant is None:
            return None
        return AccessToken(
            token=token,
            client_id=grant.client_id,
            scopes=list(grant.scopes),
            expires_at=grant.expires_at,
            resource=grant.resource,
        )

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        await to_thread.run_sync(store.revoke, token.token)

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: IdentityAssertionParams
    ) -> OAuthToken:
        """SEP-990's enterprise grant is not offered (not advertised either)."""
        raise TokenError("unsupported_grant_type", "the JWT bearer grant is not supported")

    async def _tokens(self, client: OAuthClientInformationFull, grant: store.Grant) -> store.Tokens:
        if await to_thread.run_sync(grant.principal) is None:
            raise TokenError("invalid_grant", "the API key that signed in was revoked")
        await to_thread.run_sync(store.touch_client, client.client_id)
        return await to_thread.run_sync(store.issue_tokens, grant)


def _oauth_token(tokens: store.Tokens) -> OAuthToken:
    return OAuthToken(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        scope=" ".join(tokens.scopes),
        refresh_token=tokens.refresh_token,
    )


async def signin(request: Request) -> Response:
    """The sign-in page (GET) and its answer (POST): Approve with an API key, or Deny."""
    if request.method == "GET":
        rid = request.query_params.get("request", "")
        pending = await to_thread.run_sync(store.request, rid)
        return _page(rid, pending) if pending else _expired()
    form = await request.form()
    rid, key, action = (str(form.get(f, "")) for f in ("request", "api_key", "action"))
    if action != "approve":
        return await _deny(rid)
    return await _approve(rid, key.strip(), limits.client_ip(request.scope))


async def _deny(rid: str) -> Response:
    pending = await to_thread.run_sync(store.take_request, rid)
    if pending is None:
        return _expired()
    return _back(pending, error="access_denied")


async def _approve(rid: str, api_key: str, ip: str) -> Response:
    pending = await to_thread.run_sync(store.request, rid)
    if pending is None:
        return _expired()
    wait = await to_thread.run_sync(limits.signin_wait, ip)
    if wait:
        return _too_many(rid, pending, wait)
    try:
        who = await to_thread.run_sync(authenticate, api_key)
    except Unauthorized:
        return await _failed(rid, pending, ip)
    granted = tuple(s for s in _scopes(pending) if s in who.scopes)
    if not granted:
        return _page(rid, pending, "This key holds none of the scopes asked for.", status=403)
    if await to_thread.run_sync(store.take_request, rid) is None:
        return _expired()
    grant = store.Grant(
        who.tenant_id, who.key_id, str(pending["client_id"]), granted, _str(pending, "resource")
    )
    fields = ("code_challenge", "redirect_uri", "redirect_uri_provided_explicitly")
    bound = {k: pending[k] for k in fields}
    code = await to_thread.run_sync(store.issue_code, grant, bound)
    return _back(pending, code=code)


async def _failed(rid: str, pending: dict[str, Any], ip: str) -> Response:
    """A key that is no key: counted against `ip` (app.mcp.oauthlimits), the form again."""
    quota = await to_thread.run_sync(limits.signin_failed, ip)
    if not quota.allowed:
        return _too_many(rid, pending, quota.retry_after_s)
    page = _page(rid, pending, "That is not an API key of any tenant.", status=401)
    page.headers.update(quota.headers())
    return page


def _too_many(rid: str, pending: dict[str, Any], wait_s: int) -> Response:
    error = f"Too many failed sign-ins from your address: try again in {wait_s} s."
    page = _page(rid, pending, error, status=429)
    page.headers.update(limits.signin_refusal_headers(wait_s))
    return page


def _scopes(pending: dict[str, Any]) -> list[str]:
    asked = pending.get("scopes")
    return [str(s) for s in asked] if isinstance(asked, list) else []


def _str(doc: dict[str, Any], field: str) -> str | None:
    value = doc.get(field)
    return str(value) if value is not None else None


def _back(pending: dict[str, Any], **params: str) -> Response:
    """To the client's redirect URI (registered, checked by the SDK's authorize handler)."""
    state = _str(pending, "state")
    url = construct_redirect_uri(str(pending["redirect_uri"]), state=state, **params)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


def _expired() -> Response:
    body = (
        "<p id='error'>This sign-in request has expired or was already answered. "
        "Start again from your MCP client.</p>"
    )
    page = pages.document("Sign-in expired", "<h1>Sign-in expired</h1>" + body)
    return HTMLResponse(page, status_code=400, headers=PAGE_HEADERS)


def _page(rid: str, pending: dict[str, Any], error: str = "", status: int = 200) -> Response:
    """The form; everything shown is escaped, and nothing secret is on it (the key is never
    echoed back, the request id is no credential)."""
    esc = html.escape
    client = esc(str(pending.get("client_name", "")))
    scopes = esc(", ".join(_scopes(pending)))
    target = esc(urlsplit(str(pending.get("redirect_uri", ""))).netloc or "the client")
    problem = f"<p id='error' role='alert'>{esc(error)}</p>" if error else ""
    body = f"""<p><strong id="client">{client}</strong> asks to use toolqueue's MCP tools as an
API key of your tenant, with the scopes <span id="scopes">{scopes}</span>; you will be sent
back to <span id="target">{target}</span>.</p>{problem}
<form method="post" action="{SIGNIN_PATH}">
<input type="hidden" name="request" value="{esc(rid)}">
<p><label for="api_key">API key</label>
<input id="api_key" name="api_key" type="password" autocomplete="off" required></p>
<p><button id="approve" name="action" value="approve" type="submit">Approve</button>
<button id="deny" class="secondary" name="action" value="deny" type="submit"
 formnovalidate>Deny</button></p>
</form>"""
    page = pages.document("Sign in to toolqueue", "<h1>Sign in to toolqueue</h1>" + body)
    return HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)


def mount(api: FastAPI, mcp_path: str) -> None:
    """Add the SDK's authorization-server and protected-resource routes, and the sign-in page."""
    issuer = AnyHttpUrl(get_settings().issuer_url)
    routes = create_auth_routes(
        Provider(mcp_path),
        issuer,
        client_registration_options=ClientRegistrationOptions(
            enabled=True, valid_scopes=list(MCP_SCOPES), default_scopes=list(MCP_SCOPES)
        ),
        revocation_options=RevocationOptions(enabled=True),
    )
    routes += create_protected_resource_routes(
        AnyHttpUrl(resource_url(mcp_path)),
        [issuer],
        scopes_supported=list(MCP_SCOPES),
        resource_name="toolqueue",
    )
    routes.append(Route(SIGNIN_PATH, signin, methods=["GET", "POST"]))
    _limit(routes)
    api.router.routes.extend(routes)


def _limit(routes: list[Route]) -> None:
    """Put the rate limits (app.mcp.oauthlimits) around the SDK's /register and /token."""
    wrappers: dict[str, Callable[[ASGIApp], ASGIApp]] = {
        "/register": limits.Registrations,
        "/token": limits.token_limited,
    }
    found = [r for r in routes if r.path in wrappers]
    if len(found) != len(wrappers):
        raise RuntimeError("the MCP SDK's /register or /token route moved: limits not placed")
    for route in found:
        route.app = wrappers[route.path](route.app)
