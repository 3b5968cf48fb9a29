"""Rate limits on the real stack: the vendor's refusal waited out to the instant it named, one
budget per account shared by worker processes, and waits longer than the broker's visibility
timeout parked in Redis (the test env's visibility timeout is 10 s).

The sandbox's HubSpot counts accepted calls in a rolling window per portal and states its
`X-HubSpot-RateLimit-Max` and `-Interval-Milliseconds`; `Sandbox.spend` plays another app on
the same portal, whose calls toolqueue only learns of from the next response.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from support import wait_until

from app.kernel import keys

CONTACTS = "crm/v3/objects/contacts"


def page_calls(sandbox: Any) -> list[dict[str, Any]]:
    calls = [e for e in sandbox.requests() if e["kind"] == "api" and e["path"].endswith(CONTACTS)]
    return sorted(calls, key=lambda e: e["t"])


def ids(api: Any, job_id: str) -> list[str]:
    first = api.result(job_id)
    out = [r["id"] for r in first["records"]]
    for block in range(1, first.get("blocks", 1)):
        out += [r["id"] for r in api.result(job_id, block)["records"]]
    return out


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def waiting(api: Any, job_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = api.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] == "waiting_rate_limit" else None

    return wait_until(check, 30, 0.02)


def max_in_window(times: list[float], window: float) -> int:
    """The most calls any rolling `window` holds (times sorted)."""
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_429_is_waited_out_with_no_request_inside_the_refused_window(api, fresh_sandbox):
    fresh_sandbox.config(rate_budget=5, rate_window_ms=3000, hubspot_contacts=1000)
    assert fresh_sandbox.spend("hubspot", CONTACTS, 5) == [200] * 5
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])

    held = waiting(api, job["job_id"])
    assert held["retry_at"] and "TEN_SECONDLY_ROLLING" in held["history"][-1]["reason"]
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "succeeded", done
    assert ids(api, job["job_id"]) == [str(i) for i in range(1, 1001)]  # each record once

    calls = page_calls(fresh_sandbox)[5:]  # the job's own
    assert [c["status"] for c in calls] == [429] + [200] * 10
    refused_at = calls[0]["t"]
    # HubSpot named its 3 s interval: nothing was sent before it passed, and the job came
    # back at the time it showed as `retry_at` (which lies after the named instant)
    assert calls[1]["t"] >= refused_at + 3.0
    assert refused_at + 3.0 <= epoch(held["retry_at"]) <= calls[1]["t"] + 0.01
    # from then on the budget paced the job at the 5 per 3 s it had learned
    assert max_in_window([c["t"] for c in calls[1:]], 3.0) <= 5


def test_four_worker_processes_share_one_account_budget(api, fresh_sandbox, workers):
    """Four single-process workers, four jobs on one account, 20 calls per 1 s rolling
    window: no window of the vendor's log exceeds 20 and the vendor never refuses."""
    fresh_sandbox.config(rate_budget=20, rate_window_ms=1000, hubspot_contacts=3000)
    account = api.account(fresh_sandbox)
    workers.stop_all()
    try:
        for _ in range(4):
            workers.start(concurrency=1)
        jobs = [
            api.call(account_id=account, args={"limit": 100}, fields=["id"], delivery="blocks")
            for _ in range(4)
        ]
        done = [api.wait(j["job_id"], timeout=90) for j in jobs]
    finally:
        workers.stop_all()
        workers.start()
    assert [d["status"] for d in done] == ["succeeded"] * 4, done
    for j in jobs:
        assert ids(api, j["job_id"]) == [str(i) for i in range(1, 3001)]
    calls = page_calls(fresh_sandbox)
    assert len(calls) == 120 and all(c["status"] == 200 for c in calls)
    assert max_in_window([c["t"] for c in calls], 1.0) <= 20
    # the budget, not luck, kept it there: the jobs did wait on it
    assert any("account budget" in h["reason"] for d in done for h in d["history"])


def test_wait_longer_than_visibility_timeout_is_parked_and_wakes_on_time(
    api, fresh_sandbox, r
):
    """A 12 s wait (visibility timeout 10 s): no Celery countdown that Redis would redeliver
    early; the job's next step is parked pending work due at its `retry_at`, and beat's sweep
    sends it then."""
    fresh_sandbox.config(rate_budget=3, rate_window_ms=12000, hubspot_contacts=300)
    assert fresh_sandbox.spend("hubspot", CONTACTS, 3) == [200] * 3
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])

    held = waiting(api, job["job_id"])
    step = keys.step_work(job["job_id"])
    wake = wait_until(lambda: r.zscore(keys.DUE, step), 5)
    assert abs(wake - epoch(held["retry_at"])) < 0.01
    seq = r.hget(keys.job(job["job_id"]), "seq")
    assert r.hget(keys.PENDING, step) == f"{seq}:p:0"  # parked: no message sent before it
    refused_at = page_calls(fresh_sandbox)[3]["t"]
    assert refused_at + 12.0 <= wake <= refused_at + 13.5  # the interval, plus bounded jitter

    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "succeeded", done
    assert ids(api, job["job_id"]) == [str(i) for i in range(1, 301)]
    calls = page_calls(fresh_sandbox)[3:]
    assert [c["status"] for c in calls] == [429, 200, 200, 200]
    assert wake <= calls[1]["t"] <= wake + 3.0  # not before its time (no early redelivery)
