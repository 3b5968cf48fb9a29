"""An MCP client signs in to /mcp with OAuth, the person's step in headless Chromium: the
official SDK client's auth flow (discovery from the 401, dynamic registration, PKCE) sends
the browser to toolqueue's authorize endpoint; on the sign-in page the person pastes an API
key of their tenant and presses Approve; the browser lands on the client's loopback redirect
URI (RFC 8252) with the code; the client exchanges it and lists and calls tools."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
from browserkit import Tab, launch
from mcp.shared.auth import AuthorizationCodeResult
from mcpoauthkit import Memory, body, provider, signed_in
from playwright.sync_api import sync_playwright
from support import HOME


class ChromiumPerson:
    """The SDK's redirect and callback handlers: Chromium opens the authorize URL, the person
    signs in, and the code is read off the page the client's redirect URI served."""

    def __init__(self, api_key: str, landing: Any, shot: str) -> None:
        self.api_key, self.landing, self.shot = api_key, landing, shot
        self.url = ""
        self.seen = ""
        self.signin_url = ""

    async def redirect(self, url: str) -> None:
        self.url = url

    async def callback(self) -> AuthorizationCodeResult:
        query = await anyio.to_thread.run_sync(self.sign_in)  # Playwright's sync API: no loop
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"))

    def sign_in(self) -> dict[str, str]:
        with sync_playwright() as p:
            browser = launch(p)
            tab = Tab.open(browser)
            try:
                tab.goto(self.url)
                self.signin_url = tab.page.url
                assert tab.page.locator("#client").inner_text() == "test agent <b>"
                tab.page.fill("#api_key", self.api_key)
                tab.shot(self.shot)
                tab.page.click("#approve")
                tab.page.wait_for_url(self.landing.url + "*")
                tab.keep()
                self.seen = tab.seen()
                return dict(parse_qsl(urlsplit(tab.page.url).query))
            finally:
                browser.close()


def test_sign_in_in_chromium_then_list_and_call_tools(system_chromium, api, api_url,
                                                       fresh_sandbox, landing):  # fmt: skip
    account = api.account(fresh_sandbox)
    person, storage = ChromiumPerson(api.tenant["api_key"], landing, "mcp-signin-page"), Memory()
    results: dict[str, Any] = {}

    async def main() -> None:
        auth = provider(api_url, landing.url, storage, person.redirect, person.callback)
        async with signed_in(api_url, auth) as client:
            results["tools"] = {t.name for t in (await client.list_tools()).tools}
            call = {"account_id": account, "fields": ["id"], "max_pages": 1}
            handle = body(await client.call_tool("hubspot_contacts_list", call))
            results["done"] = body(await client.call_tool("job_wait", {"job_id": handle["job_id"]}))

    anyio.run(main)
    assert {"hubspot_contacts_list", "job_status", "job_approve"} <= results["tools"]
    assert results["done"]["status"] == "succeeded" and results["done"]["record_count"] == 100
    assert person.signin_url.startswith(api_url + "/oauth/signin")
    tokens = storage.tokens
    assert tokens is not None and tokens.access_token.startswith("tqa_") and tokens.refresh_token
    arrived = [h for h in landing.hits if "code=" in h]
    assert arrived, landing.hits  # the browser really reached the client's redirect URI
    code = dict(parse_qsl(urlsplit(arrived[-1]).query))["code"]
    log = (HOME / "logs" / "api.log").read_text(errors="replace")
    for secret in (api.tenant["api_key"], tokens.access_token, tokens.refresh_token, code):
        assert secret not in log
    for secret in (api.tenant["api_key"], tokens.access_token, tokens.refresh_token):
        assert secret not in person.seen  # the key typed into the page is not in its HTML


def test_a_token_signed_in_for_another_tenant_sees_nothing_of_this_one(
    system_chromium, api, api_url, fresh_sandbox, landing
):
    from app.store.tenants import create_tenant

    other = type(api)(api_url, create_tenant("other"))
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, max_pages=1)
    theirs, storage = ChromiumPerson(other.tenant["api_key"], landing, "mcp-signin-other"), Memory()
    results: dict[str, Any] = {}

    async def main() -> None:
        auth = provider(api_url, landing.url, storage, theirs.redirect, theirs.callback)
        async with signed_in(api_url, auth) as client:
            results["status"] = await client.call_tool("job_status", {"job_id": job["job_id"]})
            call = {"account_id": account, "max_pages": 1}
            results["started"] = await client.call_tool("hubspot_contacts_list", call)

    anyio.run(main)
    assert results["status"].is_error and body(results["status"])["error"] == "job_not_found"
    assert results["started"].is_error and "not_found" in body(results["started"])["error"]
    assert api.wait(job["job_id"])["status"] == "succeeded"
    assert [j["job_id"] for j in other.get("/v1/jobs").json()["jobs"]] == []
