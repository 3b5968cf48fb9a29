"""The sandbox vendors' authorize step: consent page, codes bound to client, redirect URI and
PKCE challenge, and each vendor's refusal shape for a wrong verifier, redirect or reused code."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

REDIRECT = "https://app.example/cb"
VERIFIER = "v" * 50
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")
AUTHORIZE = {"hubspot": "/hubspot/oauth/authorize",
             "github": "/github/login/oauth/authorize", "slack": "/slack/oauth/v2/authorize",
             "jira": "/jira/authorize", "zendesk": "/zendesk/oauth/authorizations/new",
             "salesforce": "/salesforce/services/oauth2/authorize",
             "shopify": "/shopify/admin/oauth/authorize"}  # fmt: skip
TOKEN = {"hubspot": "/hubspot/oauth/v1/token", "github": "/github/login/oauth/access_token",
         "jira": "/jira/oauth/token", "zendesk": "/zendesk/oauth/tokens",
         "salesforce": "/salesforce/services/oauth2/token", "slack": "/slack/api/oauth.v2.access",
         "shopify": "/shopify/admin/oauth/access_token"}  # fmt: skip
# a code that does not fit: the vendor's own error body
REFUSED = {"hubspot": {"status": "BAD_AUTH_CODE"}, "github": {"error": "bad_verification_code"},
           "salesforce": {"error": "invalid_grant"}, "shopify": {"error": "invalid_request"},
           "slack": {"ok": False, "error": "invalid_code"},
           "jira": {"error": "invalid_grant"}, "zendesk": {"error": "invalid_grant"}}  # fmt: skip


def approve(client: Any, vendor: str, decision: str = "approve") -> dict[str, str]:
    """Open the consent page, press a button; the redirect's query."""
    query = {"client_id": "cid-1", "redirect_uri": REDIRECT, "scope": "a b", "state": "st-1",
             "code_challenge": CHALLENGE.decode(), "code_challenge_method": "S256"}  # fmt: skip
    page = client.get(AUTHORIZE[vendor], params=query)
    assert page.status_code == 200 and 'id="approve"' in page.text and 'id="deny"' in page.text
    assert "cid-1" in page.text and "secret-1" not in page.text
    resp = client.post(AUTHORIZE[vendor], data={**query, "decision": decision},
                       follow_redirects=False)  # fmt: skip
    assert resp.status_code == 302 and resp.headers["location"].startswith(REDIRECT + "?")
    return dict(parse_qsl(urlsplit(resp.headers["location"]).query))


def exchange(client: Any, vendor: str, code: str, **over: str) -> Any:
    form = {"grant_type": "authorization_code", "code": code, "client_id": "cid-1",
            "client_secret": "secret-1", "redirect_uri": REDIRECT, "code_verifier": VERIFIER,
            **over}  # fmt: skip
    return client.post(TOKEN[vendor], data=form, headers={"Accept": "application/json"})


@pytest.mark.parametrize("vendor", list(AUTHORIZE))
def test_a_code_is_exchanged_once(make_client, mint, vendor):
    client = make_client()
    mint(client, vendor)
    code = approve(client, vendor)["code"]

    first = exchange(client, vendor, code)
    again = exchange(client, vendor, code)

    assert first.status_code == 200 and first.json()["access_token"], first.text
    assert again.status_code in ((200,) if vendor in ("github", "slack") else (400, 401, 403))
    assert REFUSED[vendor].items() <= again.json().items()


@pytest.mark.parametrize("vendor", ["hubspot", "salesforce", "github", "slack"])
@pytest.mark.parametrize("wrong", [{"code_verifier": "w" * 50}, {"redirect_uri": REDIRECT + "x"},
                                   {"code_verifier": ""}])  # fmt: skip
def test_a_wrong_verifier_or_redirect_uri_is_refused(make_client, mint, vendor, wrong):
    client = make_client()
    mint(client, vendor)
    code = approve(client, vendor)["code"]

    resp = exchange(client, vendor, code, **wrong)

    assert resp.status_code == (200 if vendor in ("github", "slack") else 400)  # errors in a 200
    assert REFUSED[vendor].items() <= resp.json().items()


def test_salesforce_answers_with_its_instance_url_and_deny_says_why(make_client, mint):
    client = make_client()
    mint(client, "salesforce")
    body = exchange(client, "salesforce", approve(client, "salesforce")["code"]).json()
    assert body["instance_url"].endswith("/salesforce") and body["refresh_token"]

    denied = approve(client, "salesforce", "deny")
    assert denied == {"error": "access_denied", "state": "st-1",
                      "error_description": "end-user denied authorization"}  # fmt: skip


def test_shopify_signs_its_callback_with_the_app_secret(make_client, mint):
    client = make_client()
    mint(client, "shopify")
    query = approve(client, "shopify")
    given = query.pop("hmac")
    message = "&".join(f"{k}={v}" for k, v in sorted(query.items()))
    assert given == hmac.new(b"secret-1", message.encode(), hashlib.sha256).hexdigest()
    assert query["shop"] == "toolqueue-sandbox.myshopify.com" and query["state"] == "st-1"
    assert approve(client, "shopify", "deny") == {"error": "access_denied", "state": "st-1"}


def test_an_unknown_client_gets_an_error_page_not_a_redirect(make_client):
    client = make_client()
    page = client.get(AUTHORIZE["hubspot"], params={"client_id": "nobody",
                                                    "redirect_uri": REDIRECT})  # fmt: skip
    assert page.status_code == 400 and "Unknown client_id" in page.text


def test_jira_lists_the_sites_a_token_reaches(make_client, mint):
    client = make_client()
    mint(client, "jira")
    token = exchange(client, "jira", approve(client, "jira")["code"]).json()["access_token"]

    sites = client.get("/jira/oauth/token/accessible-resources",
                       headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    assert sites.status_code == 200 and sites.json()[0]["id"]
    assert client.get("/jira/oauth/token/accessible-resources").status_code == 401
