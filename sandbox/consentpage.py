"""The vendors' authorize step: a consent page with Approve / Deny, and the redirect back.

Each vendor's router mounts `consent_routes` at its own authorize path; what differs per
vendor (the callback's parameters: Shopify signs them, Salesforce adds an
`error_description`) is a `Redirect` function. The page is plain HTML (a real form; buttons
`#approve` and `#deny`), shows the client id and the scopes, and never any secret.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from sandbox.common import sandbox_state
from sandbox.state import Issued, SandboxState

FIELDS = ("client_id", "redirect_uri", "scope", "state", "code_challenge",
          "code_challenge_method", "response_type")  # fmt: skip
# (state, vendor, fields, approved) -> the callback's query parameters
Redirect = Callable[[SandboxState, str, dict[str, str], bool], dict[str, str]]


def code_params(
    state: SandboxState, vendor: str, form: dict[str, str], approved: bool
) -> dict[str, str]:
    """RFC 6749 4.1.2: `code` and `state`, or `error=access_denied` and `state`."""
    if not approved:
        return {"error": "access_denied", "state": form.get("state", "")}
    code = _issue(state, vendor, form)
    return {"code": code, "state": form.get("state", "")}


def redeem(state: SandboxState, vendor: str, form: dict[str, str]) -> Issued:
    """An authorization-code grant as a form posts it (client id and secret in the body): the
    code must be the client's, for this redirect_uri, and the verifier match its challenge
    (raises `TokenError`; each vendor words the refusal in its own dialect)."""
    return state.exchange_code(
        vendor, form.get("client_id", ""), form.get("client_secret", ""), form.get("code", ""),
        form.get("redirect_uri", ""), form.get("code_verifier") or None,
    )  # fmt: skip


def _issue(state: SandboxState, vendor: str, form: dict[str, str]) -> str:
    challenge = form.get("code_challenge") or None
    return state.issue_code(vendor, form.get("client_id", ""), form.get("redirect_uri", ""),
                            challenge, form.get("scope", ""))  # fmt: skip


def consent_routes(
    router: APIRouter, path: str, vendor: str, title: str, redirect: Redirect
) -> None:
    """GET `path`: the consent page; POST `path`: the decision, then 302 to redirect_uri."""

    @router.get(path, response_class=HTMLResponse)
    def authorize_page(request: Request) -> Response:
        form = {k: request.query_params.get(k, "") for k in FIELDS}
        if (bad := _refusal(sandbox_state(request), vendor, form)) is not None:
            return bad
        return HTMLResponse(_page(title, request.url.path, form))

    @router.post(path)
    async def decide(request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        form = dict(parse_qsl(raw, keep_blank_values=True))
        state = sandbox_state(request)
        if (bad := _refusal(state, vendor, form)) is not None:
            return bad
        params = redirect(state, vendor, form, form.get("decision") == "approve")
        target = form["redirect_uri"]
        sep = "&" if urlsplit(target).query else "?"
        return RedirectResponse(target + sep + urlencode(params), status_code=302)


def _refusal(state: SandboxState, vendor: str, form: dict[str, str]) -> Response | None:
    """An unknown client or a redirect URI that is not http(s) is shown an error page, never
    redirected (as the vendors do: an unverified redirect_uri gets no code)."""
    if not state.client_known(vendor, form.get("client_id", "")):
        return HTMLResponse(_doc("Error", "<h1>Unknown client_id</h1>"), status_code=400)
    if not form.get("redirect_uri", "").startswith(("http://", "https://")):
        return HTMLResponse(_doc("Error", "<h1>Bad redirect_uri</h1>"), status_code=400)
    return None


def _page(title: str, path: str, form: dict[str, str]) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in form.items() if v
    )
    scopes = "".join(
        f"<li>{escape(s)}</li>" for s in form.get("scope", "").replace(",", " ").split() if s
    )
    body = (
        f'<h1 id="title">{escape(title)}: authorize an app</h1>'
        f'<p>The app <strong id="client-id">{escape(form.get("client_id", ""))}</strong> asks '
        f'for:</p><ul id="scopes">{scopes}</ul>'
        f'<form method="post" action="{escape(path)}" id="consent">{hidden}'
        '<button type="submit" name="decision" value="approve" id="approve">Approve</button> '
        '<button type="submit" name="decision" value="deny" id="deny">Deny</button>'
        "</form>"
    )
    return _doc(f"{title}: authorize", body)


def _doc(title: str, body: str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>'
            f"{escape(title)}</title></head><body><main>{body}</main></body></html>\n")  # fmt: skip
