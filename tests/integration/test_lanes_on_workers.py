"""Lanes on real workers: a long job moves to the bulk lane; the bulk lane is shared fairly
between tenants (ordering, not timing); interactive work, webhooks and parked wake-ups keep
their own capacity while bulk work saturates its lane."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from support import wait_until

from app.kernel import keys

OTHER_LANES = ("interactive", "webhooks", "housekeeping")


@pytest.fixture
def one_bulk_worker(workers: Any) -> Iterator[Any]:
    """One bulk worker running one step at a time, and a separate worker for the rest."""
    workers.stop_all()
    try:
        workers.start(concurrency=2, queues=OTHER_LANES)
        yield workers.start(concurrency=1, queues=("bulk",))
    finally:
        workers.stop_all()
        workers.start()


def _export(api: Any, account: str, limit: int = 100) -> str:
    return str(api.call(account_id=account, args={"limit": limit}, fields=["id"],
                        delivery="blocks")["job_id"])  # fmt: skip


def test_a_long_job_moves_to_bulk_and_a_short_one_stays(api: Any, fresh_sandbox: Any,
                                                       r: Any) -> None:  # fmt: skip
    account = api.account(fresh_sandbox)
    short = api.call(account_id=account, args={"limit": 10}, max_pages=1)["job_id"]
    long = api.call(account_id=account, args={"limit": 20})["job_id"]  # 50 pages
    assert api.wait(short)["status"] == "succeeded"
    assert api.wait(long)["status"] == "succeeded"
    assert r.hget(keys.job(short), "lane") == "interactive"
    assert r.hget(keys.job(long), "lane") == "bulk"
    export = _export(api, account)
    assert r.hget(keys.job(export), "lane") == "bulk"  # exports start bulk
    assert api.wait(export)["status"] == "succeeded"


def test_two_tenants_share_the_bulk_lane(api: Any, fresh_sandbox: Any, workers: Any) -> None:
    """A queues 6 exports (4 steps each), then B queues 2, before the one bulk worker starts
    (so timing cannot decide): in arrival order B's would end last; shared fairly, both of
    B's end before any of A's."""
    from app.store.tenants import create_tenant

    other = type(api)(api.url, create_tenant("fair-b"))
    a_account, b_account = api.account(fresh_sandbox), other.account(fresh_sandbox)
    workers.stop_all()
    try:
        workers.start(concurrency=2, queues=OTHER_LANES)
        a_jobs = [_export(api, a_account) for _ in range(6)]
        b_jobs = [_export(other, b_account) for _ in range(2)]
        workers.start(concurrency=1, queues=("bulk",))
        a_done = [api.wait(j, 120) for j in a_jobs]
        b_done = [other.wait(j, 120) for j in b_jobs]
    finally:
        workers.stop_all()
        workers.start()
    assert {j["status"] for j in a_done + b_done} == {"succeeded"}
    a_ends, b_ends = [j["finished_at"] for j in a_done], [j["finished_at"] for j in b_done]
    assert max(b_ends) < min(a_ends), (a_ends, b_ends)


def test_interactive_work_and_webhooks_run_while_bulk_is_saturated(
    api: Any, fresh_sandbox: Any, one_bulk_worker: Any, receiver: Any, r: Any
) -> None:
    fresh_sandbox.config(latency_ms=100)  # each export step: 3 pages, ~0.3 s
    account = api.account(fresh_sandbox)
    exports = [_export(api, account, limit=20) for _ in range(8)]  # 50 pages each
    wait_until(lambda: r.zcard(keys.BULK_READY) >= 4, 20)  # steps wait their turn
    started = time.monotonic()
    job = api.call(account_id=account, args={"limit": 5}, max_pages=1,
                   callback_url=receiver.url)  # fmt: skip
    done = api.wait(job["job_id"], 30)
    took = time.monotonic() - started
    assert done["status"] == "succeeded"
    receiver.wait(1, 10)
    assert took < 5, took  # ahead of ~130 bulk steps waiting for one worker
    assert any(api.get(f"/v1/jobs/{e}").json()["status"] != "succeeded" for e in exports)
    for e in exports:
        api.post(f"/v1/jobs/{e}/cancel")
    fresh_sandbox.config(latency_ms=0)


def _stripe_account(api: Any, sandbox: Any) -> str:
    token = sandbox.mint("stripe")["access_token"]
    creds = {"type": "bearer", "token": token}
    resp = api.post("/v1/accounts", {"vendor": "stripe", "name": "s", "credentials": creds,
                                     "base_url": f"{sandbox.url}/stripe"})  # fmt: skip
    assert resp.status_code == 201, resp.text
    return str(resp.json()["account_id"])


def test_a_parked_job_wakes_on_time_while_bulk_is_saturated(
    api: Any, fresh_sandbox: Any, one_bulk_worker: Any, r: Any
) -> None:
    """Stripe exports keep the one bulk worker busy; a HubSpot call refused by its 3 per 3 s
    budget waits out the window and runs again within ~1 s of its `retry_at`: beat's sweep
    and the interactive lane are not behind the exports."""
    fresh_sandbox.config(volumes={"stripe.customers": 3000}, latency_ms=30,
                         rate_budgets={"hubspot": 3}, rate_window_ms=3000)  # fmt: skip
    stripe = _stripe_account(api, fresh_sandbox)
    exports = [str(api.call("stripe.customers.list", account_id=stripe, args={"limit": 10},
                            delivery="blocks")["job_id"]) for _ in range(6)]  # fmt: skip
    wait_until(lambda: r.zcard(keys.BULK_READY) >= 3, 20)
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 10}, max_pages=5)["job_id"]
    held = wait_until(lambda: (j := api.get(f"/v1/jobs/{job}").json())["retry_at"] and j, 20)
    retry_at = _epoch(held["retry_at"])
    done = api.wait(job, 30)
    assert done["status"] == "succeeded" and done["progress"]["pages"] == 5
    pages = [c for c in fresh_sandbox.requests("hubspot") if c["path"].endswith("/contacts")]
    after = [c["t"] for c in pages if c["t"] >= retry_at - 0.05]
    assert after and after[0] - retry_at <= 1.5, (after[:1], retry_at)
    assert r.zcard(keys.BULK_READY) >= 1  # the exports were still waiting their turns
    for e in exports:
        api.post(f"/v1/jobs/{e}/cancel")
    fresh_sandbox.config(latency_ms=0)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()
