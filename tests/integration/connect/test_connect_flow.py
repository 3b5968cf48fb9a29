"""Connect over HTTP as a browser would: the connect page, the sandbox vendor's consent page,
Approve / Deny, the callback, the redirect to return_url; then a job on the new account.

Real API, sandbox, Redis and workers on loopback. Every page and Location header seen is
searched for the client secret and the tokens.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

import pytest
from connectkit import JOBS, RETURN_URL, Browser, elements, oauth_app, sealed_tokens, session

VENDORS = ("hubspot", "salesforce", "shopify", "github", "slack", "jira", "zendesk")


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_full_connect_creates_an_account_that_runs_a_job(api, fresh_sandbox, r, workers,
                                                           vendor):  # fmt: skip
    app = oauth_app(api, fresh_sandbox, vendor)
    made = session(api, vendor)
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["connect_url"].startswith(api.url + "/connect/") and link["expires_at"]

    browser = Browser()
    page = browser.request("GET", link["connect_url"])
    assert '<html lang="en">' in page.text and "<h1" in page.text
    shown = elements(page.text)
    assert shown.by_id["tenant"] and shown.by_id["continue"]["tag"] == "a"
    assert "crm.read" in page.text and "test" in page.text  # the scopes, the tenant's name
    consent_url = shown.by_id["continue"]["href"]
    query = dict(parse_qsl(urlsplit(consent_url).query))
    assert query["client_id"] == app["client_id"] and query["state"]
    if vendor in ("shopify", "slack"):  # no PKCE (see docs/connect.md); scopes comma-separated
        assert "code_challenge" not in query and query["scope"] == "crm.read,oauth"
    elif vendor == "jira":  # 3LO: audience and prompt, no PKCE documented
        assert query["audience"] == "api.atlassian.com" and query["prompt"] == "consent"
        assert "code_challenge" not in query and query["scope"] == "crm.read oauth"
    else:
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert query["scope"] == "crm.read oauth"

    status = f"/v1/connect/sessions/{link['session_id']}"
    assert api.get(status).json()["status"] == "pending"
    back = browser.connect(link["connect_url"])
    assert back["status"] == "connected", back
    account = back["account_id"]
    assert api.get(status).json() | {"expires_at": None} == {
        "session_id": link["session_id"], "vendor": vendor, "status": "connected",
        "account_id": account, "error": None, "expires_at": None}  # fmt: skip
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["vendor"] == vendor and view["status"] == "active"
    assert view["base_url"] == f"{fresh_sandbox.url}/{vendor}"  # Salesforce: its instance_url
    if vendor == "jira":  # the site was looked up with the new token
        looked = [e for e in fresh_sandbox.requests("jira") if "accessible-resources" in e["path"]]
        assert [e["status"] for e in looked] == [200]

    tool, args = JOBS[vendor]
    job = api.call(tool, account_id=account, args=args, fields=["id"])
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", done
    assert api.records(job["job_id"])

    secrets_ = [app["client_secret"], *sealed_tokens(r, account).values()]
    answers = [api.get(f"/v1/accounts/{account}").text,
               api.get(f"/v1/oauth-apps/{vendor}").text, made.text]  # fmt: skip
    seen = browser.seen() + "\n".join(answers) + workers.logs()
    assert not [s for s in secrets_ if s in seen]
    assert api.get(f"/v1/oauth-apps/{vendor}").json()["client_secret_set"] is True


@pytest.mark.parametrize("vendor", VENDORS)
def test_deny_at_the_vendor_returns_access_denied(api, fresh_sandbox, vendor):
    oauth_app(api, fresh_sandbox, vendor)
    made = session(api, vendor).json()

    back = Browser().connect(made["connect_url"], decision="deny")

    assert back["error"] == "access_denied" and back["error_description"]
    assert "account_id" not in back
    view = api.get(f"/v1/connect/sessions/{made['session_id']}").json()
    assert (view["status"], view["error"], view["account_id"]) == ("failed", "access_denied", None)


def test_an_expired_session_is_refused_on_the_page_and_at_the_callback(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "hubspot")
    late = session(api, "hubspot", expires_in=1).json()["connect_url"]
    browser = Browser()
    action, fields = browser.open_consent(late)
    time.sleep(1.5)

    back = dict(parse_qsl(urlsplit(browser.follow(browser.decide(action, fields, "approve")))
                          .query))  # fmt: skip
    assert back["error"] == "expired_session", back
    page = browser.request("GET", late)
    assert page.status_code == 410
    assert elements(page.text).by_id["error-code"] and "expired_session" in page.text
    never = session(api, "hubspot", expires_in=1).json()
    never_opened = never["connect_url"]
    time.sleep(1.5)
    assert api.get(f"/v1/connect/sessions/{never['session_id']}").json()["status"] == "expired"
    page = browser.request("GET", never_opened)
    assert page.status_code == 410 and "expired_session" in page.text
    assert "continue" not in elements(page.text).by_id


def test_a_replayed_state_is_refused(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "hubspot")
    link = session(api, "hubspot").json()["connect_url"]
    browser = Browser()
    action, fields = browser.open_consent(link)
    to_callback = browser.decide(action, fields, "approve")
    callback = to_callback.headers["location"]
    first = dict(parse_qsl(urlsplit(browser.follow(to_callback)).query))
    assert first["status"] == "connected"

    again = browser.request("GET", callback)

    assert again.status_code == 303
    replay = dict(parse_qsl(urlsplit(again.headers["location"]).query))
    assert replay["error"] == "state_mismatch" and "account_id" not in replay
    unknown = browser.request("GET", callback.split("?")[0] + "?code=x&state=forged")
    assert unknown.status_code == 400 and "state_mismatch" in unknown.text


def test_a_code_swapped_between_two_sessions_fails_pkce(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "hubspot")
    one, two = Browser(), Browser()
    cb_one = one.decide(*one.open_consent(session(api, "hubspot").json()["connect_url"]),
                        "approve").headers["location"]  # fmt: skip
    cb_two = two.decide(*two.open_consent(session(api, "hubspot").json()["connect_url"]),
                        "approve").headers["location"]  # fmt: skip
    code_one = dict(parse_qsl(urlsplit(cb_one).query))["code"]
    state_two = dict(parse_qsl(urlsplit(cb_two).query))["state"]
    granted_before = len(granted(fresh_sandbox))

    swapped = two.request("GET", cb_one.split("?")[0], params={"code": code_one,
                                                               "state": state_two})  # fmt: skip

    back = dict(parse_qsl(urlsplit(swapped.headers["location"]).query))
    assert back["error"] == "code_rejected" and "account_id" not in back
    refused = [e for e in fresh_sandbox.requests("hubspot") if e["kind"] == "token"]
    assert refused and refused[-1]["status"] == 400  # the vendor's PKCE check said no
    assert len(granted(fresh_sandbox)) == granted_before


def granted(sandbox):
    """Token calls the sandbox answered 200 (a code grant that did would make an account)."""
    return [e for e in sandbox.requests("hubspot") if e["kind"] == "token" and e["status"] == 200]


def test_a_tampered_shopify_hmac_is_refused_and_the_genuine_callback_then_works(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "shopify")
    browser = Browser()
    action, fields = browser.open_consent(session(api, "shopify").json()["connect_url"])
    to_callback = browser.decide(action, fields, "approve")
    genuine = to_callback.headers["location"]
    query = dict(parse_qsl(urlsplit(genuine).query))
    assert {"code", "hmac", "shop", "state", "timestamp", "host"} <= set(query)
    flipped = query["hmac"][:-1] + ("0" if query["hmac"][-1] != "0" else "1")

    tampered = browser.request("GET", genuine.split("?")[0], params={**query, "hmac": flipped})
    back = dict(parse_qsl(urlsplit(tampered.headers["location"]).query))
    assert back["error"] == "invalid_hmac"
    other_shop = browser.request("GET", genuine.split("?")[0],
                                 params={**query, "shop": "evil.myshopify.com"})  # fmt: skip
    assert "error=invalid_hmac" in other_shop.headers["location"]

    ok = dict(parse_qsl(urlsplit(browser.follow(to_callback)).query))
    assert ok["status"] == "connected"


def test_sessions_and_apps_are_checked_and_scoped(api, fresh_sandbox, api_url):
    from app.store.tenants import create_tenant

    assert session(api, "hubspot").json()["error"] == "oauth_app_not_found"
    oauth_app(api, fresh_sandbox, "hubspot")
    bad = session(api, "hubspot", return_url="http://10.1.2.3/x")
    assert bad.status_code == 422 and bad.json()["error"] == "return_url_not_allowed"
    assert session(api, "shopify").status_code == 404  # no app
    other = type(api)(api_url, create_tenant("other"))
    assert other.get("/v1/oauth-apps/hubspot").status_code == 404
    mine = session(api, "hubspot").json()["session_id"]
    assert other.get(f"/v1/connect/sessions/{mine}").json()["error"] == "session_not_found"
    assert session(other, "hubspot", account_id="acc_x").status_code == 404
    assert api.s.delete(f"{api.url}/v1/oauth-apps/hubspot", timeout=5).status_code == 204
    assert api.get("/v1/oauth-apps/hubspot").status_code == 404
    assert RETURN_URL.startswith("http://127.0.0.1")


def test_oauth_apps_need_the_admin_scope_and_never_show_the_secret(api, fresh_sandbox):
    app = oauth_app(api, fresh_sandbox, "salesforce", login_host="test.salesforce.com")
    made = api.post("/v1/keys", {"name": "reader", "scopes": ["read"]})
    assert made.status_code == 201, made.text
    reader = type(api)(api.url, {**api.tenant, "api_key": made.json()["api_key"]})

    assert reader.get("/v1/oauth-apps/salesforce").json()["error"] == "scope_missing"
    put = reader.s.put(f"{api.url}/v1/oauth-apps/salesforce", timeout=5,
                       json={"client_id": "x", "client_secret": "y"})  # fmt: skip
    assert put.status_code == 403
    shown = api.get("/v1/oauth-apps/salesforce")
    assert shown.json()["login_host"] == "test.salesforce.com"
    assert shown.json()["client_id"] == app["client_id"]
    assert app["client_secret"] not in shown.text and shown.json()["client_secret_set"] is True
    unknown = api.s.put(f"{api.url}/v1/oauth-apps/nosuch", timeout=5,
                        json={"client_id": "x", "client_secret": "y"})  # fmt: skip
    assert unknown.status_code == 404 and unknown.json()["error"] == "vendor_not_supported"


def test_a_scope_cannot_smuggle_another_and_a_deleted_app_ends_the_flow_cleanly(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "hubspot")
    smuggled = session(api, "hubspot", scopes=["crm.read oauth.admin"])
    assert smuggled.status_code == 422
    browser = Browser()
    action, fields = browser.open_consent(session(api, "hubspot").json()["connect_url"])
    to_callback = browser.decide(action, fields, "approve")
    assert api.s.delete(f"{api.url}/v1/oauth-apps/hubspot", timeout=5).status_code == 204

    back = dict(parse_qsl(urlsplit(browser.follow(to_callback)).query))

    assert back["error"] == "oauth_app_not_found" and "account_id" not in back
