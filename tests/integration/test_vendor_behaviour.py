"""The worker against a vendor that limits, expires tokens and fails: waits, refreshes, retries."""

from __future__ import annotations

import threading

import requests


def test_expired_token_is_refreshed_once_under_concurrency(api, fresh_sandbox, r):
    from app.store.tokens import get_access_token

    account = api.account(fresh_sandbox, expires_in=1)  # inside the refresh buffer already
    stats = requests.get(f"{fresh_sandbox.url}/_sandbox/stats", timeout=5).json()
    before = stats["refresh_calls"].get("hubspot", 0)
    got: list[str] = []
    errors: list[BaseException] = []

    def call() -> None:
        try:
            got.append(get_access_token(account))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    stats = requests.get(f"{fresh_sandbox.url}/_sandbox/stats", timeout=5).json()
    assert stats["refresh_calls"]["hubspot"] - before == 1
    assert len(set(got)) == 1
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["refresh_count"] == 1 and view["last_refresh_outcome"] == "ok"
    assert got[0] not in api.get(f"/v1/accounts/{account}").text

    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    assert api.wait(job["job_id"])["status"] == "succeeded"
    assert all(e["status"] != 401 for e in fresh_sandbox.requests())


def test_rejected_refresh_token_parks_job_in_needs_reauth(api, fresh_sandbox):
    account = api.account(fresh_sandbox, expires_in=1)
    requests.post(f"{fresh_sandbox.url}/_sandbox/revoke", json={"vendor": "hubspot"},
                  timeout=5).raise_for_status()
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    done = api.wait(job["job_id"], states=("needs_reauth", "failed", "succeeded"))
    assert done["status"] == "needs_reauth", done
    assert done["error"]["code"] == "needs_reauth"
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "needs_reauth" and view["last_refresh_outcome"] == "rejected"


def test_transient_errors_retry_with_backoff(api, fresh_sandbox):
    fresh_sandbox.config(error_rate=0.3)
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    done = api.wait(job["job_id"], timeout=120)
    assert done["status"] == "succeeded", done
    ids = [r["id"] for r in api.result(job["job_id"])["records"]]
    assert ids == [str(i) for i in range(1, 1001)]
    assert any(e["status"] >= 500 for e in fresh_sandbox.requests())


def test_retry_budget_is_bounded(api, fresh_sandbox):
    fresh_sandbox.config(error_rate=1.0)
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100})
    done = api.wait(job["job_id"], timeout=240)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "retry_budget_exhausted"
    assert "last upstream status 5" in done["error"]["message"]
    assert len(fresh_sandbox.requests()) == 7  # first try + 6 retries, then it stops


def test_retry_wait_budget_is_per_job(api, fresh_sandbox, workers, r):
    """Attempts cap consecutive failures; the total backoff caps a job's whole life. A job
    that already spent all of it fails on its next transient error, naming it."""
    from app.kernel import keys

    fresh_sandbox.config(error_rate=1.0)
    account = api.account(fresh_sandbox)
    workers.stop_all()  # so the job's spent wait is on record before its first step
    try:
        job = api.call(account_id=account, args={"limit": 100})
        r.hset(keys.job(job["job_id"]), "retry_waited_s", 900.0)  # all of it
    finally:
        workers.start()
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "retry_budget_exhausted"
    assert "retries would wait over 900s in all" in done["error"]["message"]
    assert "last upstream status 50" in done["error"]["message"]
    # the budget stopped it before any retry (a token refresh by beat may come in between)
    calls = [e for e in fresh_sandbox.requests() if "/oauth/" not in e["path"]]
    assert len(calls) == 1, calls
