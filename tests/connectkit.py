"""Shared helpers of the connect tests (tests/integration/connect): an OAuth app pointed at
the sandbox, and a browser stand-in that follows a connect link as a person would (GET the
page, follow `#continue`, submit the sandbox's consent form, follow the redirects) and keeps
every page and Location header it saw, so tests can assert no secret was ever in one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import requests

RETURN_URL = "http://127.0.0.1:9/done"  # never fetched: the browser stops at it
SHOP = "toolqueue-sandbox"  # the sandbox's one shop (sandbox/shopify/webhooks.SHOP_DOMAIN)
PATHS = {  # the sandbox's authorize and token endpoints, and the accounts' API root
    "hubspot": ("/hubspot/oauth/authorize", "/hubspot/oauth/v1/token", "/hubspot"),
    "salesforce": ("/salesforce/services/oauth2/authorize",
                   "/salesforce/services/oauth2/token", None),
    "jira": ("/jira/authorize", "/jira/oauth/token", "/jira"),
    "zendesk": ("/zendesk/oauth/authorizations/new", "/zendesk/oauth/tokens", "/zendesk"),
    "slack": ("/slack/oauth/v2/authorize", "/slack/api/oauth.v2.access", "/slack"),
    "github": ("/github/login/oauth/authorize", "/github/login/oauth/access_token", "/github"),
    "shopify": ("/shopify/admin/oauth/authorize", "/shopify/admin/oauth/access_token",
                "/shopify"),
    "stripe": ("/stripe/oauth/authorize", "/stripe/oauth/token", "/stripe"),
}  # fmt: skip
JOBS = {  # a small read per vendor, to show the new account works
    "hubspot": ("hubspot.contacts.list", {"limit": 100}),
    "salesforce": ("salesforce.query", {"soql": "SELECT Id FROM Contact LIMIT 50"}),
    "shopify": ("shopify.customers.list", {}),
    "github": ("github.issues.list", {"owner": "octo", "repo": "hello"}),
    "slack": ("slack.users.list", {}),
    "jira": ("jira.issues.search", {"jql": "project = ENG"}),
    "zendesk": ("zendesk.tickets.list", {}),
    "stripe": ("stripe.customers.list", {"limit": 100}),
}


def oauth_app(api: Any, sandbox: Any, vendor: str, **over: Any) -> dict[str, str]:
    """Register a client at the sandbox and as the tenant's OAuth app; returns its id and
    secret (the secret the tests look for everywhere afterwards)."""
    client_id, secret = f"app-{secrets.token_hex(4)}", f"sec-{secrets.token_hex(16)}"
    sandbox.mint(vendor, client_id=client_id, client_secret=secret)
    authorize, token, base = PATHS[vendor]
    body = {"client_id": client_id, "client_secret": secret, "scopes": ["crm.read", "oauth"],
            "authorize_url": sandbox.url + authorize, "token_url": sandbox.url + token,
            **({"base_url": sandbox.url + base} if base else {}),
            **({"resources_url": f"{sandbox.url}/jira/oauth/token/accessible-resources"}
               if vendor == "jira" else {}), **over}  # fmt: skip
    resp = api.s.put(f"{api.url}/v1/oauth-apps/{vendor}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    return {"client_id": client_id, "client_secret": secret}


def session(api: Any, vendor: str, **body: Any) -> requests.Response:
    req = {
        "vendor": vendor,
        "end_user": {"id": "user-1", "email": "ada@example.com"},
        "return_url": RETURN_URL,
        **({"shop": SHOP} if vendor == "shopify" else {}),
        **({"subdomain": "acme"} if vendor == "zendesk" else {}),
        **body,
    }
    return api.post("/v1/connect/sessions", req)


class _Elements(HTMLParser):
    """Element attributes by id, and the first form's action and fields."""

    def __init__(self) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, str]] = {}
        self.form: dict[str, str] = {}
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.by_id[a["id"]] = {"tag": tag, **a}
        if tag == "form" and not self.form:
            self.form = a
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def elements(html: str) -> _Elements:
    parsed = _Elements()
    parsed.feed(html)
    return parsed


@dataclass
class Browser:
    """Cookie-keeping, redirect-following-by-hand HTTP client that remembers what it saw."""

    s: requests.Session = field(default_factory=requests.Session)
    pages: list[str] = field(default_factory=list)
    locations: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        resp = self.s.request(method, url, allow_redirects=False, timeout=15, **kw)
        self.urls.append(url)
        self.pages.append(resp.text)
        if "location" in resp.headers:
            self.locations.append(resp.headers["location"])
        return resp

    def follow(self, resp: requests.Response) -> str:
        """Follow redirects until one points at the return_url (returned, not fetched) or a
        page answers; then that page's URL."""
        while resp.status_code in (301, 302, 303, 307):
            target = urljoin(resp.url, resp.headers["location"])
            if target.startswith(RETURN_URL):
                return target
            resp = self.request("GET", target)
        return resp.url

    def open_consent(self, connect_url: str) -> tuple[str, dict[str, str]]:
        """The connect page's Continue link, then the vendor's consent form: its action URL
        and fields."""
        page = self.request("GET", connect_url)
        assert page.status_code == 200, page.text
        link = elements(page.text).by_id["continue"]["href"]
        consent = self.request("GET", link)
        assert consent.status_code == 200, consent.text
        form = elements(consent.text)
        return urljoin(link, form.form["action"]), form.fields

    def decide(self, action: str, fields: dict[str, str], decision: str) -> requests.Response:
        """Press Approve or Deny: the vendor's redirect to toolqueue's callback (not followed)."""
        return self.request("POST", action, data={**fields, "decision": decision})

    def connect(self, connect_url: str, decision: str = "approve") -> dict[str, str]:
        """The whole flow; the return_url's query parameters."""
        action, fields = self.open_consent(connect_url)
        landed = self.follow(self.decide(action, fields, decision))
        assert landed.startswith(RETURN_URL), landed
        return dict(parse_qsl(urlsplit(landed).query))

    def seen(self) -> str:
        """Every page, Location header and URL this browser saw, as one text."""
        return "\n".join(self.pages + self.locations + self.urls)


def sealed_tokens(r: Any, account_id: str) -> dict[str, str]:
    """The account's stored access and refresh token (unsealed here, to look for them)."""
    from app.kernel import keys
    from app.kernel.crypto import unseal

    secret = unseal(r.hget(keys.token(account_id), "sealed"))
    return {k: secret[k] for k in ("access_token", "refresh_token") if secret.get(k)}


def verified(api: Any, rec: Any, kind: str) -> list[dict[str, Any]]:
    """The events of type `kind` at `rec`, each after checking its signature."""
    from standardwebhooks import Webhook

    hook = Webhook(api.tenant["webhook_secret"])
    out = [hook.verify(h["body"], h["headers"]) for h in list(rec.requests)]
    return [e for e in out if e["type"] == kind]
