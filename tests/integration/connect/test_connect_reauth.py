"""A connected account whose refresh token dies: its job parks, `account.needs_reauth` (at the
account's events_url only) carries a fresh re-connect link, and following that link through
the sandbox's consent page re-authorizes the same account; the parked job completes once."""

from __future__ import annotations

import requests
from connectkit import Browser, oauth_app, sealed_tokens, session, verified
from support import wait_until


def test_reauthorizing_a_needs_reauth_account_resumes_its_parked_job_once(
    api, fresh_sandbox, receiver, events, r
):
    app = oauth_app(api, fresh_sandbox, "hubspot")
    fresh_sandbox.config(latency_ms=150, token_ttl_s=1)  # the tokens it grants die at once
    link = session(api, "hubspot", events_url=events.url).json()["connect_url"]
    browser = Browser()
    account = browser.connect(link)["account_id"]
    [connected] = wait_until(lambda: verified(api, events, "account.connected") or None, 30)
    assert connected["data"]["account_id"] == account
    old = sealed_tokens(r, account)
    revoke = requests.post(f"{fresh_sandbox.url}/_sandbox/revoke", json={"vendor": "hubspot"},
                           timeout=5)  # fmt: skip
    assert revoke.json()["revoked"] >= 1  # ... and its refresh token is dead: refreshes fail
    job = api.call(account_id=account, args={"limit": 20}, fields=["id"],
                   callback_url=receiver.url)["job_id"]  # fmt: skip
    parked = api.wait(job, states=("needs_reauth", "failed", "succeeded"))
    assert parked["status"] == "needs_reauth", parked

    [needs] = wait_until(lambda: verified(api, events, "account.needs_reauth") or None, 30)
    reconnect = needs["data"]["reconnect_url"]
    assert reconnect and reconnect.startswith(api.url + "/connect/") and reconnect != link
    job_hooks = [h["body"].decode() for h in receiver.requests]
    assert not any(reconnect in body for body in job_hooks)  # only the tenant's events_url

    fresh_sandbox.config(latency_ms=0, token_ttl_s=1800)
    page = browser.request("GET", reconnect)
    assert "Reconnect" in page.text
    back = browser.connect(reconnect)
    assert back == {"account_id": account, "status": "reactivated"}

    done = api.wait(job)
    assert done["status"] == "succeeded", done
    ids = [rec["id"] for rec in api.records(job)]
    assert len(ids) == len(set(ids)) == 1000  # every contact once: resumed, not restarted
    history = [h["status"] for h in api.get(f"/v1/jobs/{job}").json()["history"]]
    assert history.count("succeeded") == 1
    [reactivated] = wait_until(lambda: verified(api, events, "account.reactivated") or None, 30)
    assert reactivated["data"]["parked_jobs"] == [job]
    assert api.get(f"/v1/accounts/{account}").json()["status"] == "active"

    new = sealed_tokens(r, account)
    assert new["access_token"] != old["access_token"]
    seen = browser.seen() + "".join(h["body"].decode() for h in events.requests + receiver.requests)
    assert not [s for s in [app["client_secret"], *old.values(), *new.values()] if s in seen]
