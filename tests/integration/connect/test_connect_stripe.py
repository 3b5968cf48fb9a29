"""Stripe Connect over HTTP as a browser would (connect page, the sandbox's Stripe consent
page, Approve / Deny, the callback, return_url), then a Stripe read on the new account; and a
token endpoint that fails for a moment (the sandbox's `token_faults` knob: the next N token
calls answer 503), which must leave the connect session usable.

Real API, sandbox, Redis and workers on loopback. Every page, URL and Location header seen,
and the workers' logs, are searched for the platform's secret key and the account's token.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from connectkit import JOBS, Browser, elements, oauth_app, sealed_tokens, session, verified
from support import free_port, wait_until

from app.kernel import keys
from app.store.connect import MAX_REOPENS

STRIPE = {"scopes": ["read_only"]}  # Stripe takes one scope: read_only or read_write


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def token_calls(sandbox, vendor="stripe"):
    return [e for e in sandbox.requests(vendor) if e["kind"] == "token"]


def test_a_stripe_connect_makes_an_account_that_reads_customers(api, fresh_sandbox, r, workers):
    app = oauth_app(api, fresh_sandbox, "stripe", **STRIPE)
    made = session(api, "stripe")
    assert made.status_code == 201, made.text
    link = made.json()
    browser = Browser()
    page = browser.request("GET", link["connect_url"])
    consent = query_of(elements(page.text).by_id["continue"]["href"])
    assert consent["client_id"] == app["client_id"] and consent["state"]
    assert (consent["response_type"], consent["scope"]) == ("code", "read_only")
    assert "code_challenge" not in consent  # Stripe's authorize takes no PKCE

    back = browser.connect(link["connect_url"])

    assert back["status"] == "connected", back
    account = back["account_id"]
    view = api.get(f"/v1/accounts/{account}").json()
    assert (view["vendor"], view["status"]) == ("stripe", "active")
    assert view["base_url"] == f"{fresh_sandbox.url}/stripe"
    stored = sealed_tokens(r, account)
    assert set(stored) == {"access_token"}  # the refresh token is not kept (docs/connect.md)
    assert r.hget(keys.account(account), "vendor_account_id").startswith("acct_")
    assert [e["status"] for e in token_calls(fresh_sandbox)] == [200]
    tool, args = JOBS["stripe"]
    job = api.call(tool, account_id=account, args=args, fields=["id"])
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", done
    ids = [rec["id"] for rec in api.records(job["job_id"])]
    assert ids and all(i.startswith("cus_") for i in ids)

    secrets_ = [app["client_secret"], stored["access_token"]]
    answers = [api.get(f"/v1/accounts/{account}").text, api.get("/v1/oauth-apps/stripe").text,
               made.text, api.get(f"/v1/connect/sessions/{link['session_id']}").text,
               json.dumps(fresh_sandbox.requests("stripe"))]  # fmt: skip
    seen = browser.seen() + "\n".join(answers) + workers.logs()
    assert not [s for s in secrets_ if s in seen]


def test_a_stripe_session_asks_one_of_stripes_scopes(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "stripe", **STRIPE)

    both = session(api, "stripe", scopes=["read_only", "read_write"])
    other = session(api, "stripe", scopes=["crm.read"])

    assert both.status_code == 422 and both.json()["error"] == "scope_not_supported"
    assert other.status_code == 422 and other.json()["error"] == "scope_not_supported"
    assert session(api, "stripe", scopes=["read_write"]).status_code == 201
    default = session(api, "stripe", scopes=[])
    assert default.status_code == 201
    page = Browser().request("GET", default.json()["connect_url"])
    consent = query_of(elements(page.text).by_id["continue"]["href"])
    assert "scope" not in consent and consent["response_type"] == "code"  # Stripe's: read_only


def test_deny_at_stripe_returns_access_denied(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "stripe", **STRIPE)
    made = session(api, "stripe").json()
    browser = Browser()
    action, fields = browser.open_consent(made["connect_url"])
    to_callback = browser.decide(action, fields, "deny")
    sent = query_of(to_callback.headers["location"])
    assert sent["error"] == "access_denied" and sent["error_description"] and sent["state"]

    back = query_of(browser.follow(to_callback))

    assert back["error"] == "access_denied" and "account_id" not in back
    view = api.get(f"/v1/connect/sessions/{made['session_id']}").json()
    assert (view["status"], view["error"], view["account_id"]) == ("failed", "access_denied", None)
    assert token_calls(fresh_sandbox) == []  # nothing to exchange


def test_a_replayed_callback_and_a_spent_code_under_another_state_are_refused(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "stripe", **STRIPE)
    one, two = Browser(), Browser()
    cb_one = one.decide(*one.open_consent(session(api, "stripe").json()["connect_url"]),
                        "approve")  # fmt: skip
    replay_url = cb_one.headers["location"]
    assert query_of(one.follow(cb_one))["status"] == "connected"
    second = session(api, "stripe").json()
    cb_two = two.decide(*two.open_consent(second["connect_url"]), "approve").headers["location"]

    replayed = one.request("GET", replay_url)
    swapped = two.request("GET", cb_two.split("?")[0],
                          params={"code": query_of(replay_url)["code"],
                                  "state": query_of(cb_two)["state"]})  # fmt: skip

    assert query_of(replayed.headers["location"])["error"] == "state_mismatch"
    back = query_of(swapped.headers["location"])
    assert back["error"] == "code_rejected" and "account_id" not in back
    assert [e["status"] for e in token_calls(fresh_sandbox)] == [200, 400]  # invalid_grant
    view = api.get(f"/v1/connect/sessions/{second['session_id']}").json()
    assert (view["status"], view["error"]) == ("failed", "code_rejected")
    assert two.request("GET", second["connect_url"]).status_code == 410  # spent for good


@pytest.mark.parametrize("vendor", ["stripe", "hubspot"])
def test_a_token_endpoint_503_leaves_the_session_usable(api, fresh_sandbox, vendor):
    oauth_app(api, fresh_sandbox, vendor, **(STRIPE if vendor == "stripe" else {}))
    made = session(api, vendor).json()
    status = f"/v1/connect/sessions/{made['session_id']}"
    browser = Browser()
    first = query_of(elements(browser.request("GET", made["connect_url"]).text)
                     .by_id["continue"]["href"])  # fmt: skip
    fresh_sandbox.config(token_faults=1)
    to_callback = browser.decide(*browser.open_consent(made["connect_url"]), "approve")
    failed_callback = to_callback.headers["location"]

    back = query_of(browser.follow(to_callback))

    assert back["error"] == "vendor_unavailable" and back["error_description"], back
    assert "account_id" not in back
    assert [e["status"] for e in token_calls(fresh_sandbox, vendor)] == [503]
    assert fresh_sandbox.config()["token_faults"] == 0
    view = api.get(status).json()
    assert (view["status"], view["error"], view["account_id"]) == ("pending", None, None)
    assert view["last_error"] == "vendor_unavailable" and view["last_error_at"]
    replay = browser.request("GET", failed_callback)
    assert replay.status_code == 400 and "state_mismatch" in replay.text  # that state is dead

    again = query_of(elements(browser.request("GET", made["connect_url"]).text)
                     .by_id["continue"]["href"])  # fmt: skip
    assert again["state"] != first["state"]
    if vendor == "hubspot":  # a fresh PKCE verifier too
        assert again["code_challenge"] != first["code_challenge"]
    done = browser.connect(made["connect_url"])
    assert done["status"] == "connected", done
    view = api.get(status).json()
    assert (view["status"], view["account_id"]) == ("connected", done["account_id"])
    assert [e["status"] for e in token_calls(fresh_sandbox, vendor)] == [503, 200]
    assert browser.request("GET", made["connect_url"]).status_code == 410  # spent now


def test_an_unreachable_token_endpoint_is_transient_too(api, fresh_sandbox):
    good = f"{fresh_sandbox.url}/stripe/oauth/token"
    nobody = f"http://127.0.0.1:{free_port()}/stripe/oauth/token"  # connection refused
    app = oauth_app(api, fresh_sandbox, "stripe", token_url=nobody, **STRIPE)
    made = session(api, "stripe").json()
    browser = Browser()

    back = browser.connect(made["connect_url"])

    assert back["error"] == "vendor_unavailable", back
    assert token_calls(fresh_sandbox) == []
    fixed = {**app, **STRIPE, "authorize_url": f"{fresh_sandbox.url}/stripe/oauth/authorize",
             "token_url": good, "base_url": f"{fresh_sandbox.url}/stripe"}  # fmt: skip
    assert api.s.put(f"{api.url}/v1/oauth-apps/stripe", json=fixed, timeout=10).status_code == 200
    assert browser.connect(made["connect_url"])["status"] == "connected"


def test_a_session_whose_vendor_keeps_failing_ends_after_its_reopens(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "stripe", **STRIPE)
    made = session(api, "stripe").json()
    fresh_sandbox.config(token_faults=MAX_REOPENS + 1)
    browser = Browser()

    backs = [browser.connect(made["connect_url"]) for _ in range(MAX_REOPENS + 1)]

    assert [b["error"] for b in backs] == ["vendor_unavailable"] * (MAX_REOPENS + 1)
    view = api.get(f"/v1/connect/sessions/{made['session_id']}").json()
    assert (view["status"], view["error"]) == ("failed", "vendor_unavailable")
    page = browser.request("GET", made["connect_url"])
    assert page.status_code == 410 and "continue" not in elements(page.text).by_id


def test_a_deauthorized_stripe_account_parks_its_job_until_it_is_reconnected(
    api, fresh_sandbox, events, r
):
    app = oauth_app(api, fresh_sandbox, "stripe", **STRIPE)
    fresh_sandbox.config(volumes={"stripe.customers": 450})
    browser = Browser()
    link = session(api, "stripe", events_url=events.url).json()["connect_url"]
    account = browser.connect(link)["account_id"]
    old = sealed_tokens(r, account)["access_token"]
    revoke = requests.post(f"{fresh_sandbox.url}/_sandbox/revoke", timeout=5,
                           json={"vendor": "stripe", "access_tokens": True})  # fmt: skip
    assert revoke.json()["revoked_access"] >= 1  # the user disconnected the platform

    job = api.call("stripe.customers.list", account_id=account, args={"limit": 100},
                   fields=["id"])["job_id"]  # fmt: skip
    parked = api.wait(job, states=("needs_reauth", "failed", "succeeded"))

    assert parked["status"] == "needs_reauth", parked
    [needs] = wait_until(lambda: verified(api, events, "account.needs_reauth") or None, 30)
    reconnect = needs["data"]["reconnect_url"]
    assert reconnect and reconnect.startswith(api.url + "/connect/")
    assert browser.connect(reconnect) == {"account_id": account, "status": "reactivated"}
    done = api.wait(job)
    assert done["status"] == "succeeded", done
    ids = [rec["id"] for rec in api.records(job)]
    assert len(ids) == len(set(ids)) == 450
    new = sealed_tokens(r, account)["access_token"]
    assert new != old and set(sealed_tokens(r, account)) == {"access_token"}
    seen = browser.seen() + "".join(h["body"].decode() for h in events.requests)
    assert not [s for s in (app["client_secret"], old, new) if s in seen]
