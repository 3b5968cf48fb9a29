"""Re-authorization without failed jobs: a refused refresh token or revoked access parks the
account's jobs at their checkpoint, tells the tenant (signed account events), and new
credentials resume them; parked jobs nobody re-authorizes expire into `reauth_timeout`.

Real sandbox, workers, Redis and HTTP on loopback. Tokens die mid-job because the sandbox's
access token lives for a second or two while toolqueue was told an hour (`expires_in`), so
the vendor's 401 is the first toolqueue hears of it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from standardwebhooks import Webhook
from support import job_gauge_and_records, wait_until

from app.kernel import keys

CONTACTS = "/hubspot/crm/v3/objects/contacts"


@pytest.fixture
def events(receiver: Any) -> Iterator[Any]:
    """A second receiver: the account's `events_url`."""
    rec = type(receiver)()
    yield rec
    rec.server.shutdown()


def revoke(sandbox: Any, vendor: str = "hubspot") -> None:
    """Every refresh token of the vendor dies; access tokens live on until they expire."""
    requests.post(
        f"{sandbox.url}/_sandbox/revoke", json={"vendor": vendor}, timeout=5
    ).raise_for_status()


def oauth(minted: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {"type": "oauth2", "access_token": minted["access_token"],
            "refresh_token": minted["refresh_token"], "expires_in": minted["expires_in"],
            "client_id": "cid", "client_secret": "csecret", **over}


def connect(api: Any, sandbox: Any, creds: dict[str, Any], **extra: Any) -> str:
    resp = api.post("/v1/accounts", {"vendor": "hubspot", "name": "reauth",
                                     "base_url": sandbox.hubspot(), "credentials": creds,
                                     **extra})
    assert resp.status_code == 201, resp.text
    return resp.json()["account_id"]


def signed(api: Any, hook: dict[str, Any]) -> dict[str, Any]:
    """The event, after checking its Standard Webhooks signature with the tenant's secret."""
    return Webhook(api.tenant["webhook_secret"]).verify(hook["body"], hook["headers"])


def of_type(api: Any, rec: Any, kind: str, n: int = 1, timeout: float = 30) -> list[dict]:
    """Wait for `n` verified events of type `kind` at `rec`; return them with their headers."""
    def found() -> list[dict] | None:
        hooks = [h for h in list(rec.requests) if signed(api, h)["type"] == kind]
        return hooks if len(hooks) >= n else None

    return [{**signed(api, h), "headers": h["headers"]} for h in wait_until(found, timeout)]


def parked(api: Any, job_id: str) -> dict[str, Any]:
    return api.wait(job_id, states=("needs_reauth", "failed", "succeeded", "cancelled"))


def ids(api: Any, job_id: str) -> list[str]:
    return [rec["id"] for rec in api.result(job_id)["records"]]


def pages(sandbox: Any, limit: int) -> list[dict[str, Any]]:
    """The contacts-page requests of the job that asked for `limit` per page."""
    return [e for e in sandbox.requests() if e["kind"] == "api" and e["path"] == CONTACTS
            and parse_qs(e["query"]).get("limit") == [str(limit)]]


def test_revoked_refresh_token_parks_jobs_and_new_credentials_resume_them(
    api, fresh_sandbox, receiver, events, r
):
    fresh_sandbox.config(latency_ms=200)
    minted = fresh_sandbox.mint(expires_in=2)  # the vendor's access token dies in 2 s
    account = connect(api, fresh_sandbox, oauth(minted, expires_in=3600), events_url=events.url)
    revoke(fresh_sandbox)  # ... and its refresh token is already dead
    first = api.call(account_id=account, args={"limit": 50}, fields=["id"],
                     callback_url=receiver.url)["job_id"]

    job = parked(api, first)
    assert job["status"] == "needs_reauth", job
    assert job["error"]["code"] == "needs_reauth"
    assert 0 < job["progress"]["pages"] < 20  # parked mid-job, at its checkpoint
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "needs_reauth" and view["last_refresh_outcome"] == "rejected"
    assert view["needs_reauth_since"] and "rejected" in view["needs_reauth_reason"]
    assert r.zrange(keys.account_parked(account), 0, -1) == [first]

    # The tenant hears of it at the job's callback_url (`job.needs_reauth`) and at the
    # account's events_url (`account.needs_reauth`): signed events carrying the account view
    # and the parked job ids.
    [at_job] = of_type(api, receiver, "job.needs_reauth")
    [at_account] = of_type(api, events, "account.needs_reauth")
    assert at_job["data"]["job_id"] == first and "job_id" not in at_account["data"]
    assert at_job["headers"]["webhook-id"] != at_account["headers"]["webhook-id"]
    for event in (at_job, at_account):
        assert event["data"]["account_id"] == account
        assert event["data"]["status"] == "needs_reauth"
        assert event["data"]["parked_jobs"] == [first]
    kinds = {signed(api, h)["type"] for h in list(receiver.requests)}
    assert "account.needs_reauth" not in kinds  # the job's URL gets job events
    texts = [h["body"].decode() for h in receiver.requests + events.requests]
    assert not any(minted[k] in t for t in texts for k in ("access_token", "refresh_token"))

    # A job queued while the account waits parks too, without touching the vendor.
    second = api.call(account_id=account, args={"limit": 100}, fields=["id"],
                      callback_url=receiver.url)["job_id"]
    job2 = parked(api, second)
    assert job2["status"] == "needs_reauth", job2
    assert job2["progress"]["pages"] == 0 and not pages(fresh_sandbox, 100)
    hooks = of_type(api, receiver, "job.needs_reauth", n=2)
    assert hooks[1]["data"]["parked_jobs"] == [first, second]
    assert hooks[1]["data"]["job_id"] == second
    time.sleep(1)  # the account's events_url heard of the transition once, not per job
    assert len(of_type(api, events, "account.needs_reauth")) == 1
    parked_gauge, records = job_gauge_and_records(r)  # parking moved the jobs-by-state gauge
    assert parked_gauge == records and parked_gauge["needs_reauth"] >= 2

    # New credentials: the account is active again, both jobs resume from their checkpoints.
    fresh = fresh_sandbox.mint()
    resp = api.post(f"/v1/accounts/{account}/credentials", oauth(fresh))
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "active" and resp.json()["needs_reauth_since"] is None
    assert fresh["access_token"] not in resp.text and fresh["refresh_token"] not in resp.text
    assert "csecret" not in resp.text
    for job_id in (first, second):
        done = api.wait(job_id)
        assert done["status"] == "succeeded", done
        assert ids(api, job_id) == [str(i) for i in range(1, 1001)]  # each exactly once
        statuses = [h["status"] for h in done["history"]]
        assert statuses.index("needs_reauth") < statuses.index("queued", 1)
        assert "failed" not in statuses
    assert r.zcard(keys.account_parked(account)) == 0
    resumed_gauge, records = job_gauge_and_records(r)  # ... and resuming moved them out
    assert resumed_gauge == records

    [react] = of_type(api, receiver, "account.reactivated")  # one callback_url: sent once
    [react_acc] = of_type(api, events, "account.reactivated")
    assert react["data"]["status"] == react_acc["data"]["status"] == "active"
    assert react["data"]["parked_jobs"] == [first, second]
    assert {e["data"]["job_id"] for e in of_type(api, receiver, "job.succeeded", n=2)} == {
        first, second}

    # The vendor saw one refused request (the page the dead token asked for, fetched again
    # after re-authorization) and no page twice otherwise; one refused refresh.
    log = pages(fresh_sandbox, 50)
    assert [e["status"] for e in log].count(401) == 1
    fetched = [e["query"] for e in log if e["status"] == 200]
    assert len(fetched) == len(set(fetched)) == 20
    refused = next(e["query"] for e in log if e["status"] == 401)
    assert refused in fetched
    tokens = [e["status"] for e in fresh_sandbox.requests() if e["kind"] == "token"]
    assert tokens == [400]


def test_revoked_access_marks_the_account_and_parks_the_job(api, fresh_sandbox, receiver):
    """The refresh works, but the vendor refuses the fresh token too (the sandbox cannot revoke
    an app's access on its own; a token TTL of 0 makes every refreshed token refused the same
    way): the connector's second 401 marks the account, which the token store did not."""
    account = api.account(fresh_sandbox, access_token="revoked-token")  # the vendor 401s it
    fresh_sandbox.config(token_ttl_s=0)
    job_id = api.call(account_id=account, args={"limit": 100}, fields=["id"],
                      callback_url=receiver.url)["job_id"]
    job = parked(api, job_id)
    assert job["status"] == "needs_reauth", job
    assert "freshly refreshed token" in job["error"]["message"]
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "needs_reauth" and view["last_refresh_outcome"] == "ok"
    assert "freshly refreshed token" in view["needs_reauth_reason"]
    log = [(e["kind"], e["status"]) for e in fresh_sandbox.requests()]
    assert log == [("api", 401), ("token", 200), ("api", 401)]
    [event] = of_type(api, receiver, "job.needs_reauth")
    assert event["data"]["parked_jobs"] == [job_id] and event["data"]["job_id"] == job_id

    fresh_sandbox.config(token_ttl_s=1800)
    resp = api.post(f"/v1/accounts/{account}/credentials", oauth(fresh_sandbox.mint()))
    assert resp.status_code == 200, resp.text
    done = api.wait(job_id)
    assert done["status"] == "succeeded", done
    assert ids(api, job_id) == [str(i) for i in range(1, 1001)]
    assert len(fresh_sandbox.requests()) == 3 + 10  # nothing but the 10 pages after re-auth


def test_parked_jobs_expire_into_failed(api, fresh_sandbox, receiver, r):
    from app.work.reauth import expire

    account = api.account(fresh_sandbox, expires_in=1)  # refreshed at once, and refused
    revoke(fresh_sandbox)
    job_id = api.call(account_id=account, args={"limit": 100}, callback_url=receiver.url)[
        "job_id"]
    assert parked(api, job_id)["status"] == "needs_reauth"
    assert expire(timeout_s=3600, account_id=account) == []  # not parked long enough
    assert expire(now=time.time() + 7 * 86400 + 1, account_id=account) == [job_id]  # default

    done = api.get(f"/v1/jobs/{job_id}").json()
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "reauth_timeout"
    assert done["history"][-1]["status"] == "failed"
    [hook] = of_type(api, receiver, "job.failed")  # the job's own webhook, as for any failure
    assert hook["data"]["error"]["code"] == "reauth_timeout"
    assert r.zcard(keys.account_parked(account)) == 0
    assert r.zscore(keys.REAUTH_PARKED, job_id) is None
    assert expire(now=time.time() + 30 * 86400, account_id=account) == []
    counted, records = job_gauge_and_records(r)  # expiry moved the gauge with the record
    assert counted == records
    # new credentials later do not revive a failed job
    resp = api.post(f"/v1/accounts/{account}/credentials", oauth(fresh_sandbox.mint()))
    assert resp.status_code == 200, resp.text
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "failed"


def test_refreshes_during_a_job_appear_in_its_history(api, fresh_sandbox):
    # The first access token dies after 1 s without toolqueue knowing (a 401, then a forced
    # refresh); refreshed ones live 3 s and are renewed ahead of their expiry.
    fresh_sandbox.config(latency_ms=200, token_ttl_s=3)
    account = connect(api, fresh_sandbox, oauth(fresh_sandbox.mint(expires_in=1),
                                                expires_in=3600))
    job_id = api.call(account_id=account, args={"limit": 50}, fields=["id"])["job_id"]
    done = api.wait(job_id)
    assert done["status"] == "succeeded", done
    assert ids(api, job_id) == [str(i) for i in range(1, 1001)]
    notes = [h["reason"] for h in done["history"] if h["status"] is None]
    assert any(n.startswith("access token refreshed after the vendor refused it (refresh #1")
               for n in notes), notes
    assert any(n.startswith("access token refreshed ahead of its expiry") for n in notes), notes
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["refresh_count"] >= 2 and view["status"] == "active"
    assert sum(f"refresh #{view['refresh_count']};" in n for n in notes) == 1


def test_posting_credentials(api, fresh_sandbox, events):
    from app.store.tenants import create_tenant

    account = connect(api, fresh_sandbox, oauth(fresh_sandbox.mint()), events_url=events.url)
    assert api.get(f"/v1/accounts/{account}").json()["events_url"] == events.url
    secret = "sk-never-echo-" + "x" * 20
    bodies: list[Any] = [
        {},
        [],
        {"type": "bearer"},
        {"type": "magic", "token": secret},
        {"type": "bearer", "token": secret, "refresh_token": secret},
        {"type": "oauth2", "access_token": secret, "refresh_token": secret},  # no client
        {"type": "oauth2", "access_token": secret, "expires_in": -1},
        {"credentials": {"type": "bearer", "token": secret}},  # the object itself, unwrapped
    ]
    for body in bodies:
        resp = api.post(f"/v1/accounts/{account}/credentials", body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["error"] == "invalid_request" and resp.json()["message"]
        assert secret not in resp.text
    resp = api.post(f"/v1/accounts/{account}/credentials", data=b"{nope",
                    headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"] == "malformed_json"

    # Another tenant: the same 404 as for an account that does not exist; nothing changes.
    version = api.get(f"/v1/accounts/{account}").json()
    other = type(api)(api.url, create_tenant("other"))
    for acc in (account, "acc_ffffffffffffffff"):
        resp = other.post(f"/v1/accounts/{acc}/credentials", {"type": "bearer", "token": secret})
        assert resp.status_code == 404 and resp.json()["error"] == "account_not_found", resp.text
    assert api.get(f"/v1/accounts/{account}").json() == version

    # Stripe has no token endpoint: a refresh token there is refused with a reason.
    stripe = api.post("/v1/accounts", {"vendor": "stripe", "name": "s",
                                       "base_url": f"{fresh_sandbox.url}/stripe",
                                       "credentials": {"type": "bearer", "token": "sk_x"}})
    assert stripe.status_code == 201, stripe.text
    resp = api.post(f"/v1/accounts/{stripe.json()['account_id']}/credentials",
                    {"type": "oauth2", "access_token": secret, "refresh_token": secret,
                     "client_id": "c", "client_secret": secret})
    assert resp.status_code == 422 and resp.json()["error"] == "token_url_required", resp.text
    assert secret not in resp.text

    # An active account's credentials are simply rotated: 200, no account event.
    minted = fresh_sandbox.mint()
    resp = api.post(f"/v1/accounts/{account}/credentials", oauth(minted))
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "active" and resp.json()["refresh_count"] == 0
    assert all(minted[k] not in resp.text for k in ("access_token", "refresh_token"))
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    assert api.wait(job["job_id"])["status"] == "succeeded"
    time.sleep(0.5)
    assert not events.requests  # rotation is not a reactivation


def test_events_url_is_ssrf_checked(api, fresh_sandbox):
    creds = oauth(fresh_sandbox.mint())
    for url, code in (("ftp://example.com/x", "invalid_events_url"),
                      ("http://10.1.2.3/hook", "events_url_not_allowed")):
        resp = api.post("/v1/accounts", {"vendor": "hubspot", "name": "x", "credentials": creds,
                                         "base_url": fresh_sandbox.hubspot(), "events_url": url})
        assert resp.status_code == 422 and resp.json()["error"] == code, resp.text


def test_beat_refreshes_ahead_and_reports_a_refusal_at_once(api, fresh_sandbox, events):
    """Beat's `refresh_tokens` (run here in-process): a token inside the horizon is renewed
    before any job needs it; a refused one marks the account and tells its events_url now,
    not when a job next needs the account."""
    from tasks.housekeeping import refresh_tokens

    soon = {"expires_in": None, "expires_at": time.time() + 10}  # inside the 30 s buffer
    fine = connect(api, fresh_sandbox, oauth(fresh_sandbox.mint(), **soon))
    assert refresh_tokens() >= 1
    view = api.get(f"/v1/accounts/{fine}").json()
    assert view["refresh_count"] == 1 and view["last_refresh_outcome"] == "ok"

    doomed = connect(api, fresh_sandbox, oauth(fresh_sandbox.mint(), **soon),
                     events_url=events.url)  # fmt: skip
    revoke(fresh_sandbox)
    refresh_tokens()
    view = api.get(f"/v1/accounts/{doomed}").json()
    assert view["status"] == "needs_reauth" and view["needs_reauth_since"]
    [event] = of_type(api, events, "account.needs_reauth")
    assert event["data"]["account_id"] == doomed and event["data"]["parked_jobs"] == []
