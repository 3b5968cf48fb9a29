"""Connect in a real browser: headless Chromium opens the connect link, follows Continue to
the sandbox vendor's consent page, presses Approve or Deny, and lands on the tenant's
return_url (a page on loopback). Screenshots of the connect and consent pages are saved
under build/test-artifacts/. Real API, sandbox, Redis and workers on loopback; every URL the
browser requested and every page it showed is searched for the client secret and tokens."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from browserkit import Tab
from connectkit import JOBS, oauth_app, sealed_tokens, session, verified
from support import wait_until


def landed(tab: Tab, landing: Any) -> dict[str, str]:
    """Wait for the browser to arrive at return_url; its query parameters."""
    tab.page.wait_for_url(landing.url + "*")
    tab.keep()
    return dict(parse_qsl(urlsplit(tab.page.url).query))


def to_consent(tab: Tab, connect_url: str) -> None:
    assert tab.goto(connect_url).status == 200
    tab.click("#continue")
    assert tab.page.locator("#approve").is_visible() and tab.page.locator("#deny").is_visible()


SCOPES = {"stripe": ["read_only"]}  # Stripe asks one of its two; the others take the kit's


@pytest.mark.parametrize("vendor", ["hubspot", "salesforce", "shopify", "stripe"])
def test_a_person_connects_an_account_that_then_runs_a_job(
    api, fresh_sandbox, r, workers, tab, landing, vendor
):
    app = oauth_app(api, fresh_sandbox, vendor, **({"scopes": SCOPES[vendor]} if vendor in SCOPES
                                                    else {}))  # fmt: skip
    made = session(api, vendor, return_url=landing.url)
    assert made.status_code == 201, made.text
    link = made.json()

    assert tab.goto(link["connect_url"]).status == 200
    page = tab.page
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#tenant").inner_text() == "test"
    assert page.locator("#vendor").inner_text().lower() == vendor
    assert SCOPES.get(vendor, ["crm.read"])[0] in page.locator("#scopes").inner_text()
    connect_shot = tab.shot(f"connect-page-{vendor}")
    # what assistive technology reads: one top heading, a named link and button; and the
    # person goes on with the keyboard alone
    assert page.get_by_role("heading", level=1).count() == 1
    assert page.get_by_role("button", name="Cancel").is_visible()
    onward = page.get_by_role("link", name=f"Continue to {vendor.capitalize()}")
    onward.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(fresh_sandbox.url + "/**")
    tab.keep()
    assert page.url.startswith(fresh_sandbox.url)  # at the vendor now
    assert app["client_id"] in page.content()
    consent_shot = tab.shot(f"consent-page-{vendor}")
    page.click("#approve")

    back = landed(tab, landing)
    assert back["status"] == "connected", back
    account = back["account_id"]
    assert api.get(f"/v1/accounts/{account}").json()["status"] == "active"
    tool, args = JOBS[vendor]
    job = api.call(tool, account_id=account, args=args, fields=["id"])
    assert api.wait(job["job_id"])["status"] == "succeeded"
    assert api.records(job["job_id"])

    for shot in (connect_shot, consent_shot):  # real PNGs of a rendered page
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000, shot
    secrets_ = [app["client_secret"], *sealed_tokens(r, account).values()]
    seen = tab.seen() + workers.logs()
    assert not [s for s in secrets_ if s in seen]
    assert any(u.startswith(api.url + "/connect/callback?") for u in tab.urls)


def test_deny_lands_on_return_url_with_access_denied(api, fresh_sandbox, tab, landing):
    oauth_app(api, fresh_sandbox, "hubspot")
    made = session(api, "hubspot", return_url=landing.url).json()
    to_consent(tab, made["connect_url"])

    tab.page.click("#deny")

    back = landed(tab, landing)
    assert back["error"] == "access_denied" and "account_id" not in back
    view = api.get(f"/v1/connect/sessions/{made['session_id']}").json()
    assert (view["status"], view["error"]) == ("failed", "access_denied")


def test_an_expired_session_shows_its_error_and_refuses_the_approval(
    api, fresh_sandbox, tab, landing
):
    oauth_app(api, fresh_sandbox, "hubspot")
    late = session(api, "hubspot", return_url=landing.url, expires_in=1).json()
    to_consent(tab, late["connect_url"])
    time.sleep(1.5)
    tab.page.click("#approve")
    assert landed(tab, landing)["error"] == "expired_session"

    stale = session(api, "hubspot", return_url=landing.url, expires_in=1).json()
    time.sleep(1.5)
    answer = tab.goto(stale["connect_url"])
    assert answer.status == 410
    assert tab.page.locator("#error-code").inner_text() == "expired_session"
    assert tab.page.locator("#continue").count() == 0
    tab.shot("connect-page-expired")


def test_a_replayed_state_is_refused(api, fresh_sandbox, tab, landing):
    oauth_app(api, fresh_sandbox, "hubspot")
    made = session(api, "hubspot", return_url=landing.url).json()
    to_consent(tab, made["connect_url"])
    tab.page.click("#approve")
    assert landed(tab, landing)["status"] == "connected"
    [callback] = {u for u in tab.urls if u.startswith(api.url + "/connect/callback?")}

    tab.goto(callback)  # the same code and state again, as a back button or a replay sends

    back = landed(tab, landing)
    assert back["error"] == "state_mismatch" and "account_id" not in back


def test_a_code_swapped_between_two_sessions_is_refused(api, fresh_sandbox, chromium, landing):
    oauth_app(api, fresh_sandbox, "hubspot")
    callbacks: list[str] = []
    one, two = Tab.open(chromium), Tab.open(chromium)
    try:
        for t in (one, two):  # each approves; the vendor's redirect is held, not followed
            to_consent(t, session(api, "hubspot", return_url=landing.url).json()["connect_url"])
            t.page.route(fresh_sandbox.url + "/**", lambda route: hold_redirect(route, callbacks))
            t.page.click("#approve")
            t.page.wait_for_selector("#held")
            t.page.unroute(fresh_sandbox.url + "/**")
        code_one = dict(parse_qsl(urlsplit(callbacks[0]).query))["code"]
        state_two = dict(parse_qsl(urlsplit(callbacks[1]).query))["state"]
        base = callbacks[0].split("?")[0]

        two.goto(f"{base}?code={code_one}&state={state_two}")

        back = landed(two, landing)
        assert back["error"] == "code_rejected" and "account_id" not in back
        refused = [e for e in fresh_sandbox.requests("hubspot") if e["kind"] == "token"]
        assert refused and refused[-1]["status"] == 400  # the vendor's PKCE check said no
    finally:
        one.close()
        two.close()


def hold_redirect(route: Any, callbacks: list[str]) -> None:
    """The consent form's answer is fetched but its redirect to toolqueue is kept (a
    redirect's target is never routed, so the hold must be at the vendor's answer)."""
    answer = route.fetch(max_redirects=0)
    callbacks.append(answer.headers["location"])
    route.fulfill(status=200, content_type="text/html", body='<p id="held">held</p>')


def test_reauthorizing_a_needs_reauth_account_in_the_browser_resumes_its_job_once(
    api, fresh_sandbox, receiver, r, tab, landing
):
    app = oauth_app(api, fresh_sandbox, "hubspot")
    events = type(receiver)()
    try:
        fresh_sandbox.config(latency_ms=150, token_ttl_s=1)  # the tokens it grants die at once
        made = session(api, "hubspot", return_url=landing.url, events_url=events.url).json()
        to_consent(tab, made["connect_url"])
        tab.page.click("#approve")
        account = landed(tab, landing)["account_id"]
        old = sealed_tokens(r, account)
        revoke = requests.post(f"{fresh_sandbox.url}/_sandbox/revoke",
                               json={"vendor": "hubspot"}, timeout=5)  # fmt: skip
        assert revoke.json()["revoked"] >= 1
        job = api.call(account_id=account, args={"limit": 20}, fields=["id"])["job_id"]
        parked = api.wait(job, states=("needs_reauth", "failed", "succeeded"))
        assert parked["status"] == "needs_reauth", parked
        [needs] = wait_until(lambda: verified(api, events, "account.needs_reauth") or None, 30)
        fresh_sandbox.config(latency_ms=0, token_ttl_s=1800)
        to_consent(tab, needs["data"]["reconnect_url"])
        assert "Reconnect" in tab.pages[-2]  # the connect page says it re-authorizes
        tab.page.click("#approve")

        assert landed(tab, landing) == {"account_id": account, "status": "reactivated"}
        done = api.wait(job)
        assert done["status"] == "succeeded", done
        ids = [rec["id"] for rec in api.records(job)]
        assert len(ids) == len(set(ids)) == 1000  # every contact once: resumed, not restarted
        history = [h["status"] for h in api.get(f"/v1/jobs/{job}").json()["history"]]
        assert history.count("succeeded") == 1
        new = sealed_tokens(r, account)
        assert new["access_token"] != old["access_token"]
        assert not [s for s in [app["client_secret"], *old.values(), *new.values()]
                    if s in tab.seen()]  # fmt: skip
    finally:
        events.server.shutdown()


def test_cancel_on_the_connect_page_ends_the_session_and_lands_with_cancelled(
    api, fresh_sandbox, tab, landing
):
    oauth_app(api, fresh_sandbox, "hubspot")
    made = session(api, "hubspot", return_url=landing.url).json()
    assert tab.goto(made["connect_url"]).status == 200

    tab.click("#cancel")

    back = landed(tab, landing)
    assert back == {"error": "cancelled", "error_description": "cancelled on the page"}
    view = api.get(f"/v1/connect/sessions/{made['session_id']}").json()
    assert (view["status"], view["error"]) == ("failed", "cancelled")
    again = tab.goto(made["connect_url"])  # the link is spent: no way to the vendor from it
    assert again.status == 410 and tab.page.locator("#continue").count() == 0
    assert not [e for e in fresh_sandbox.requests("hubspot") if e["kind"] == "token"]


def test_without_a_return_url_the_browser_lands_on_toolqueues_done_page(api, fresh_sandbox, tab):
    oauth_app(api, fresh_sandbox, "hubspot")
    made = api.post("/v1/connect/sessions", {"vendor": "hubspot", "end_user": {"id": "u-9"}})
    assert made.status_code == 201, made.text
    to_consent(tab, made.json()["connect_url"])
    tab.page.click("#approve")

    tab.page.wait_for_url(api.url + "/connect/done?*")
    account = tab.page.locator("#account-id").inner_text()
    assert tab.page.locator("#title").inner_text() == "Account connected"
    assert api.get(f"/v1/accounts/{account}").json()["status"] == "active"


def test_no_page_that_asks_for_a_decision_renders_inside_another_sites_frame(
    api, fresh_sandbox, tab, landing
):
    """Clickjacking: the connect page (and, with the same headers, the MCP sign-in and the
    approval pages) refuses to be framed, so no other site can overlay its buttons."""
    oauth_app(api, fresh_sandbox, "hubspot")
    link = session(api, "hubspot", return_url=landing.url).json()["connect_url"]
    assert tab.goto(landing.url).status == 200  # another origin's page
    tab.page.set_content(f'<iframe id="f" src="{link}" width="600" height="400"></iframe>')
    tab.page.wait_for_timeout(1000)

    [framed] = [f for f in tab.page.frames if f is not tab.page.main_frame]
    assert framed.locator("#continue").count() == 0  # Chromium blocked it: nothing rendered
    assert tab.goto(link).status == 200  # the same link, opened as a page, works


def test_a_vendor_failing_for_a_moment_leaves_the_same_link_usable(
    api, fresh_sandbox, tab, landing
):
    oauth_app(api, fresh_sandbox, "hubspot")
    made = session(api, "hubspot", return_url=landing.url).json()
    fresh_sandbox.config(token_faults=1)  # the next token call answers 503
    to_consent(tab, made["connect_url"])
    tab.page.click("#approve")
    assert landed(tab, landing)["error"] == "vendor_unavailable"
    assert api.get(f"/v1/connect/sessions/{made['session_id']}").json()["status"] == "pending"

    to_consent(tab, made["connect_url"])  # the person simply opens the same link again
    tab.page.click("#approve")

    back = landed(tab, landing)
    assert back["status"] == "connected", back
    view = api.get(f"/v1/connect/sessions/{made['session_id']}").json()
    assert (view["status"], view["account_id"]) == ("connected", back["account_id"])
