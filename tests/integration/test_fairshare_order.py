"""The fair share's order on a real Redis, step by step (app/dispatch/fairshare.py): turns
alternate between tenants, a weight buys proportionally more turns, a concurrency limit
holds a tenant back and its step's end sends the turn it missed, an expired lease gives
the slot back, and a copy of an offer queues nothing twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.dispatch import fairshare
from app.kernel import keys
from app.store.tenants import create_tenant, set_plan

BULK = (keys.BULK_READY, keys.BULK_OWNER, keys.BULK_VTIME, keys.BULK_LEASES, keys.BULK_RUNNING)


@pytest.fixture
def lane(r: Any, workers: Any) -> Iterator[Any]:
    """An empty bulk lane no worker takes from (this test plays the workers' turns)."""
    workers.stop_all()
    r.delete(*BULK)
    try:
        yield r
    finally:
        r.delete(*BULK)
        workers.start()


def _jobs(r: Any, tenant: str, n: int, tag: str) -> list[str]:
    ids = [f"fair-{tag}-{i}-{time.time_ns()}" for i in range(n)]
    for job_id in ids:
        r.hset(keys.job(job_id), mapping={"tenant_id": tenant})
        r.expire(keys.job(job_id), 60)
    return ids


def _tenant(name: str) -> str:
    return create_tenant(name)["tenant_id"]


def _turns(n: int) -> list[str]:
    out = []
    for _ in range(n):
        taken = fairshare.take()
        assert taken is not None
        out.append(taken[0])
        fairshare.done(*taken)
    return out


def test_turns_alternate_and_weights_buy_turns(lane: Any) -> None:
    a, b, c = _tenant("fa"), _tenant("fb"), _tenant("fc")
    set_plan(c, bulk_weight=2)
    a_jobs, b_jobs = _jobs(lane, a, 6, "a"), _jobs(lane, b, 2, "b")
    for job in a_jobs + b_jobs:  # A's six arrive first
        assert fairshare.offer(job, 0)
    assert not fairshare.offer(a_jobs[0], 0)  # a copy queues nothing twice
    order = _turns(8)
    assert set(b_jobs) <= set(order[:4]), order  # B is not behind A's backlog
    c_jobs, a_more = _jobs(lane, c, 6, "c"), _jobs(lane, a, 6, "a2")
    for job in c_jobs + a_more:
        fairshare.offer(job, 0)
    order = _turns(6)
    owners = ["c" if j in c_jobs else "a" for j in order]
    assert owners.count("c") == 4, owners  # weight 2: twice A's turns while both wait


def test_a_limit_holds_a_tenant_back_and_its_end_sends_the_missed_turn(lane: Any) -> None:
    a, b = _tenant("la"), _tenant("lb")
    set_plan(a, bulk_concurrency=1)
    a_jobs, b_jobs = _jobs(lane, a, 2, "la"), _jobs(lane, b, 1, "lb")
    for job in a_jobs + b_jobs:
        fairshare.offer(job, 0)
    first = fairshare.take()
    assert first is not None and first[0] == a_jobs[0]
    second = fairshare.take()  # A is at its limit: B's step, though A's next is older
    assert second is not None and second[0] == b_jobs[0]
    assert fairshare.take() is None  # only A's waits, and A is at its limit
    assert not fairshare.done(*second)  # B's end: A still at its limit
    assert fairshare.done(*first)  # A's end frees its slot: send the turn it missed
    third = fairshare.take()
    assert third is not None and third[0] == a_jobs[1]


def test_an_expired_lease_gives_the_slot_back(lane: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _tenant("ea")
    set_plan(a, bulk_concurrency=1)
    jobs = _jobs(lane, a, 2, "ea")
    for job in jobs:
        fairshare.offer(job, 0)
    assert fairshare.take() is not None  # its worker dies: no done()
    assert fairshare.take() is None
    later = time.time() + 3600
    monkeypatch.setattr(fairshare.time, "time", lambda: later)
    taken = fairshare.take()
    assert taken is not None and taken[0] == jobs[1]
