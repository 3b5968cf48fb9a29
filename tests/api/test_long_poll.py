"""`GET /v1/jobs/{id}?wait=S`: held open until the job changes state, over Redis pub/sub."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import requests

from app.client import Client

CONTACTS = "crm/v3/objects/contacts"


def parked_job(api: Any, sandbox: Any) -> str:
    """A job resting in `waiting_rate_limit` for 20 s: another app spent the window."""
    sandbox.config(rate_budget=1, rate_window_ms=20000)
    assert sandbox.spend("hubspot", CONTACTS, 1) == [200]
    job = api.call(account_id=api.account(sandbox), args={"limit": 100})
    api.wait(job["job_id"], states=("waiting_rate_limit",), timeout=30)
    return job["job_id"]


def test_long_poll_returns_right_after_the_state_changes(api, fresh_sandbox):
    job_id = parked_job(api, fresh_sandbox)
    answer: dict[str, Any] = {}

    def poll() -> None:  # its own connection: the test cancels on the fixture's meanwhile
        resp = requests.get(f"{api.url}/v1/jobs/{job_id}", params={"wait": 30}, timeout=40,
                            headers={"Authorization": f"Bearer {api.tenant['api_key']}"})
        answer.update(resp.json(), at=time.monotonic(), wall=time.time())

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(1.0)  # the poll is being held
    assert poller.is_alive()
    cancelled_at = time.monotonic()
    assert api.post(f"/v1/jobs/{job_id}/cancel").status_code == 200
    poller.join(10)
    assert answer["status"] == "cancelled"
    assert answer["at"] - cancelled_at < 0.25  # pub/sub, not a polling interval
    # measured from the state change itself (its log entry's time, ms precision)
    changed = datetime.fromisoformat(answer["history"][-1]["at"].replace("Z", "+00:00"))
    print(f"long-poll answered {answer['wall'] - changed.timestamp():.3f}s after the change")
    assert answer["wall"] - changed.timestamp() < 0.1


def test_long_poll_times_out_with_the_unchanged_state(api, fresh_sandbox):
    job_id = parked_job(api, fresh_sandbox)
    started = time.monotonic()
    job = api.get(f"/v1/jobs/{job_id}", params={"wait": 1.5}).json()
    assert job["status"] == "waiting_rate_limit"
    assert 1.4 <= time.monotonic() - started < 3.0
    api.post(f"/v1/jobs/{job_id}/cancel")


def test_long_poll_of_an_ended_job_answers_at_once(api, fresh_sandbox):
    job = api.call(account_id=api.account(fresh_sandbox), args={"limit": 100}, max_pages=1)
    api.wait(job["job_id"])
    started = time.monotonic()
    assert api.get(f"/v1/jobs/{job['job_id']}", params={"wait": 30}).json()["status"] == (
        "succeeded"
    )
    assert time.monotonic() - started < 1.0


def test_wait_over_a_minute_is_refused(api, fresh_sandbox):
    job = api.call(account_id=api.account(fresh_sandbox), args={"limit": 100}, max_pages=1)
    resp = api.get(f"/v1/jobs/{job['job_id']}", params={"wait": 61})
    assert resp.status_code == 422, resp.text
    assert "wait" in resp.text


def test_client_wait_returns_the_state_when_its_budget_runs_out(api, fresh_sandbox):
    job_id = parked_job(api, fresh_sandbox)
    client = Client(api.url, api.tenant["api_key"])
    started = time.monotonic()
    out = client.wait(job_id, budget_s=1.0)
    assert out["done"] is False and out["status"] == "waiting_rate_limit"
    assert 0.9 <= time.monotonic() - started < 2.5
    client.cancel(job_id)
