"""OAuth: the consent page (`/login/oauth/authorize`; Deny sends `error=access_denied` with
GitHub's description and `error_uri`), the code exchange (no `grant_type` needed; the code
bound to client, redirect URI and PKCE challenge; `bad_verification_code` otherwise) and the
refresh grant of GitHub App user tokens (``ghu_`` access, ``ghr_`` refresh,
rotating). Every answer is HTTP 200, errors included; JSON when the client sends
``Accept: application/json``, else form-encoded like github.com."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from sandbox.common import sandbox_state, token_call
from sandbox.consentpage import code_params, consent_routes
from sandbox.github.http import NAME, unavailable
from sandbox.state import Issued, SandboxState, TokenError

TOKEN_DOC = (
    "https://docs.github.com/apps/managing-oauth-apps/"
    "troubleshooting-oauth-app-access-token-request-errors"
)
REFRESH_DOC = (
    "https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/"
    "refreshing-user-access-tokens"
)
REFRESH_TOKEN_TTL_S = 15_811_200  # six months, as GitHub says in every refresh answer

AUTHORIZE_DOC = (
    "https://docs.github.com/apps/managing-oauth-apps/"
    "troubleshooting-authorization-request-errors/#access-denied"
)

router = APIRouter()


def _callback(state: SandboxState, vendor: str, form: dict[str, str], approved: bool) -> dict[
    str, str
]:
    params = code_params(state, vendor, form, approved)
    if not approved:
        params["error_description"] = "The user has denied your application access."
        params["error_uri"] = AUTHORIZE_DOC
    return params


consent_routes(router, "/login/oauth/authorize", NAME, "GitHub", _callback)


def _answer(doc: dict[str, Any], as_json: bool) -> Response:
    if as_json:
        return JSONResponse(doc)
    text = urlencode({k: "" if v is None else v for k, v in doc.items()})
    return PlainTextResponse(text, media_type="application/x-www-form-urlencoded")


def _error(code: str, description: str, anchor: str, as_json: bool) -> Response:
    doc = {"error": code, "error_description": description, "error_uri": f"{TOKEN_DOC}#{anchor}"}
    return _answer(doc, as_json)


def _refused(exc: TokenError, as_json: bool) -> Response:
    if exc.reason == "client":
        return _error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
            "incorrect-client-credentials",
            as_json,
        )
    doc = {
        "error": "bad_refresh_token",
        "error_description": "The refresh token passed is incorrect or expired.",
        "error_uri": REFRESH_DOC,
    }
    return _answer(doc, as_json)


def _brand(state: SandboxState, issued: Issued, presented: str) -> tuple[str, str]:
    """Give the state's tokens GitHub's prefixes (ghu_ access, ghr_ refresh) in place."""
    access = "ghu_" + issued.access_token.removeprefix("C")
    refresh = issued.refresh_token
    with state.lock:
        state.access[access] = state.access.pop(issued.access_token)
        if refresh != presented and not refresh.startswith("ghr_"):
            state.refresh_tokens["ghr_" + refresh] = state.refresh_tokens.pop(refresh)
            refresh = "ghr_" + refresh
    return access, refresh


@router.post("/login/oauth/access_token")
async def token(request: Request) -> Response:
    """Refresh grant (form-encoded). Every answer is HTTP 200, errors included; JSON when the
    client sends `Accept: application/json`, else form-encoded like github.com."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, unavailable)) is not None:
        return fault
    raw = (await request.body()).decode("utf-8", "replace")
    form = dict(parse_qsl(raw, keep_blank_values=True)) or dict(request.query_params)
    as_json = "json" in request.headers.get("accept", "")
    if form.get("code") and form.get("grant_type") in (None, "authorization_code"):
        return _code_grant(state, form, as_json)
    if form.get("grant_type") != "refresh_token":
        return _error(
            "unsupported_grant_type",
            "The grant type is not supported.",
            "unsupported-grant-type",
            as_json,
        )
    presented = form.get("refresh_token", "")
    try:
        issued = state.refresh(
            NAME, form.get("client_id", ""), form.get("client_secret", ""), presented
        )
    except TokenError as exc:
        return _refused(exc, as_json)
    access, refresh = _brand(state, issued, presented)
    doc = {
        "access_token": access,
        "expires_in": issued.expires_in,
        "refresh_token": refresh,
        "refresh_token_expires_in": REFRESH_TOKEN_TTL_S,
        "token_type": "bearer",
        "scope": "",
    }
    return _answer(doc, as_json)


def _code_grant(state: SandboxState, form: dict[str, str], as_json: bool) -> Response:
    """The web application flow's exchange; HTTP 200 for errors too, as github.com."""
    try:
        issued = state.exchange_code(
            NAME, form.get("client_id", ""), form.get("client_secret", ""), form.get("code", ""),
            form.get("redirect_uri") or None, form.get("code_verifier") or None,
        )  # fmt: skip
    except TokenError as exc:
        if exc.reason == "client":
            return _refused(exc, as_json)
        return _error("bad_verification_code", "The code passed is incorrect or expired.",
                      "bad-verification-code", as_json)  # fmt: skip
    access, refresh = _brand(state, issued, "")
    doc = {
        "access_token": access,
        "expires_in": issued.expires_in,
        "refresh_token": refresh,
        "refresh_token_expires_in": REFRESH_TOKEN_TTL_S,
        "token_type": "bearer",
        "scope": form.get("scope", ""),
    }
    return _answer(doc, as_json)
