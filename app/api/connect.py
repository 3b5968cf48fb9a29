"""/v1/oauth-apps, /v1/connect/sessions, and the hosted connect pages (/connect/...).

The pages are server-rendered HTML with no script: a heading, what is asked, and one link
(`#continue`) to the vendor; `/connect/done` is a landing page for a caller with none of its
own. Stable ids for drivers: `continue`, `error-code`, `account-id`. Nothing secret
is ever in a page or a Location header: the link token is an opaque handle, the PKCE
verifier and the client secret stay server side.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.api.auth import principal, tenant_id
from app.kernel import pages
from app.services import connect
from app.store import oauthapps
from app.store.apikeys import Principal

router = APIRouter(tags=["connect"])

DONE_PATH = connect.DONE_PATH
_CODE = re.compile(r"[a-z][a-z_-]{0,39}")  # what the done page shows of `error`
_ACCOUNT = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # … and of `account_id`

_HEADERS = {  # the link token never leaks to the vendor's page (no-referrer); forms post anywhere
    **pages.HEADERS,
    "Content-Security-Policy": pages.HEADERS["Content-Security-Policy"] + "; form-action *",
}


@router.put("/v1/oauth-apps/{vendor}", summary="Register the tenant's OAuth app (admin scope)")
def put_app(
    vendor: str, body: oauthapps.OAuthAppIn, who: Principal = Depends(principal)
) -> dict[str, Any]:
    who.require("admin")
    return oauthapps.put(who.tenant_id, vendor, body)


@router.get("/v1/oauth-apps/{vendor}", summary="The tenant's OAuth app (never its secret)")
def get_app(vendor: str, who: Principal = Depends(principal)) -> dict[str, Any]:
    who.require("admin")
    return oauthapps.view(who.tenant_id, vendor)


@router.delete("/v1/oauth-apps/{vendor}", status_code=204, summary="Remove the OAuth app")
def delete_app(vendor: str, who: Principal = Depends(principal)) -> Response:
    who.require("admin")
    oauthapps.delete(who.tenant_id, vendor)
    return Response(status_code=204)


@router.post("/v1/connect/sessions", status_code=201, summary="A single-use connect link")
def create_session(
    body: connect.SessionCreate, request: Request, tenant: str = Depends(tenant_id)
) -> dict[str, Any]:
    return connect.create_session(tenant, body, connect.api_origin(str(request.base_url)))


@router.get(
    "/v1/connect/sessions/{session_id}",
    summary="A connect session's status (pending, expired, connected, reactivated, failed)",
)
def get_session(session_id: str, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return connect.session_view(tenant, session_id)


@router.get("/connect/callback", response_class=HTMLResponse, include_in_schema=False)
def callback(request: Request) -> Response:
    """The vendor's redirect: 303 to the session's return_url, or an error page."""
    outcome = connect.callback(list(request.query_params.multi_items()))
    if outcome.location is None:
        return _error_page(outcome.error or "state_mismatch", outcome.description, None, 400)
    return RedirectResponse(outcome.location, status_code=303, headers=_HEADERS)


@router.get(DONE_PATH, response_class=HTMLResponse, include_in_schema=False)
def done_page(request: Request) -> Response:
    """A return_url for callers with no page of their own (the CLI, scripts): how it ended,
    from the query the callback added. Declared before `/connect/{token}`, which would
    otherwise take `done` for a token."""
    body = _outcome(dict(request.query_params))
    body += "<p>You can close this tab and go back to where you started.</p>"
    return HTMLResponse(pages.document("Connect: done", body), headers=_HEADERS)


def _outcome(q: dict[str, str]) -> str:
    """Only a well-formed account id or error code is shown, never `error_description`:
    anyone can make a link to this page, so it must not carry their text."""
    status, account, error = q.get("status", ""), q.get("account_id", ""), q.get("error", "")
    if status in ("connected", "reactivated") and _ACCOUNT.fullmatch(account):
        verb = "connected" if status == "connected" else "reconnected"
        shown = f'<code id="account-id">{escape(account)}</code>'
        return f'<h1 id="title">Account {verb}</h1><p>Account {shown} is {verb}.</p>'
    title = '<h1 id="title">Nothing was connected</h1>'
    if _CODE.fullmatch(error):
        return title + f'<p>Error code: <code id="error-code">{escape(error)}</code></p>'
    return title


@router.get("/connect/{token}", response_class=HTMLResponse, include_in_schema=False)
def connect_page(token: str) -> Response:
    try:
        shown = connect.page(token)
    except connect.ConnectError as exc:
        return _unusable(exc)
    return HTMLResponse(_page(shown, token), headers=_HEADERS)


@router.post("/connect/{token}/cancel", include_in_schema=False)
def cancel(token: str) -> Response:
    """The page's Cancel button: the session ends as `cancelled`, the browser goes back."""
    try:
        back = connect.cancel(token)
    except connect.ConnectError as exc:
        return _unusable(exc)
    return RedirectResponse(back, status_code=303, headers={"Cache-Control": "no-store"})


def _unusable(exc: connect.ConnectError) -> HTMLResponse:
    """A link unknown (404), or expired or used already (410)."""
    status = 404 if exc.code == "unknown_session" else 410
    return _error_page(exc.code, exc.description, None, status)


def _page(shown: dict[str, Any], token: str) -> str:
    vendor, tenant = escape(shown["vendor"].capitalize()), escape(shown["tenant"])
    verb = "Reconnect" if shown["reauthorize"] else "Connect"
    scopes = "".join(f"<li><code>{escape(s)}</code></li>" for s in shown["scopes"])
    body = (
        f'<h1 id="title">{verb} your {vendor} account</h1>'
        f'<p><strong id="tenant">{tenant}</strong> asks for access to your '
        f'<strong id="vendor">{vendor}</strong> account.</p>'
        f'<h2>Access asked</h2><ul id="scopes">{scopes or "<li>basic access</li>"}</ul>'
        f"<p>You will sign in at {vendor} and approve there; {tenant} never sees your "
        "password.</p>"
        f'<p><a id="continue" class="button" href="{escape(shown["authorize_url"])}" '
        f'rel="noreferrer">Continue to {vendor}</a></p>'
        f'<form method="post" action="{escape(token)}/cancel"><p>'
        '<button id="cancel" class="secondary" type="submit">Cancel</button></p></form>'
    )
    return pages.document(f"{verb} {vendor} — {shown['tenant']}", body)


def _error_page(code: str, description: str, back: str | None, status: int) -> HTMLResponse:
    link = f'<p><a id="back" href="{escape(back)}">Back</a></p>' if back else ""
    body = (
        '<h1 id="title">This connect link cannot be used</h1>'
        f'<p id="error-description">{escape(description)}</p>'
        f'<p>Error code: <code id="error-code">{escape(code)}</code></p>{link}'
        "<p>Ask the application that sent you here for a new link.</p>"
    )
    page = pages.document("Connect: error", body)
    return HTMLResponse(page, status_code=status, headers=_HEADERS)
