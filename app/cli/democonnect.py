"""The demo's connect act: the tenant registers its HubSpot OAuth app, asks for a connect
link, and an end user follows it — the connect page, the vendor's consent page, Approve —
and lands on the done page with a new account, which then runs a job. The end user here is
a few HTTP requests that read the pages as a browser would (tests/browser does it in
Chromium); the client secret and the tokens are never on any page they see."""

from __future__ import annotations

import secrets
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import requests
from rich.console import Console

from app.client import Client

console = Console()
Act = tuple[str, bool, str]


class _Page(HTMLParser):
    """A page's links by id and its first form (action and fields)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: dict[str, str] = {}
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("id"):
            self.links[a["id"]] = a.get("href", "")
        if tag == "form" and not self.action:
            self.action = a.get("action", "")
        if tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value", "")


def _read(resp: requests.Response) -> _Page:
    resp.raise_for_status()
    page = _Page()
    page.feed(resp.text)
    return page


def _end_user(connect_url: str) -> tuple[str, list[str]]:
    """Open the link, Continue, Approve; the page landed on, and every page seen."""
    with requests.Session() as browser:
        connect = browser.get(connect_url, timeout=10)
        to_vendor = _read(connect).links["continue"]
        consent = browser.get(to_vendor, timeout=10)
        form = _read(consent)
        done = browser.post(urljoin(to_vendor, form.action),
                            data={**form.fields, "decision": "approve"}, timeout=10)  # fmt: skip
        return done.url, [connect.text, consent.text, done.text, to_vendor, done.url]


def act_connect(sandbox: str, client: Client) -> Act:
    console.rule("connect: an end user links their HubSpot account")
    client_id, client_secret = f"demo-app-{secrets.token_hex(3)}", secrets.token_urlsafe(24)
    app = {"vendor": "hubspot", "client_id": client_id, "client_secret": client_secret}
    requests.post(f"{sandbox}/_sandbox/tokens", json=app, timeout=5).raise_for_status()
    client.oauth_app("hubspot", client_id, client_secret, scopes=["crm.objects.contacts.read"],
                     authorize_url=f"{sandbox}/hubspot/oauth/authorize",
                     token_url=f"{sandbox}/hubspot/oauth/v1/token",
                     base_url=f"{sandbox}/hubspot")  # fmt: skip
    link = client.connect_session("hubspot", "end-user-7", email="ada@example.com")
    console.print(f"  connect link for the end user: {link['connect_url'][:60]}…")
    landed, seen = _end_user(link["connect_url"])
    session = client.connect_session_get(link["session_id"])
    account = session.get("account_id") or ""
    console.print(f"  connect page → HubSpot consent → Approve → {landed.split('?')[0]}: "
                  f"{session['status']} {account}")  # fmt: skip
    view: dict[str, Any] = {"status": "not started"}
    if account:
        job = client.call("hubspot.contacts.list", account, {"limit": 100}, fields=["id"],
                          max_pages=1)  # fmt: skip
        view = client.get(job["job_id"], wait_s=30)
        while view["status"] in ("queued", "running"):
            view = client.get(job["job_id"], wait_s=30)
    leaked = any(client_secret in text for text in seen)
    records = int((view.get("progress") or {}).get("records") or 0)
    ok = session["status"] == "connected" and view["status"] == "succeeded" and records > 0
    ok = ok and not leaked
    evidence = (f"end user approved at the vendor → account {account or '—'}; a job on it "
                f"{view['status']} ({records} contacts); the client secret "
                f"on {'a' if leaked else 'no'} page")  # fmt: skip
    console.print(f"  {evidence}")
    return "connect an account", ok, evidence
