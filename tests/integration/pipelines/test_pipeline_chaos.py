"""A bad day for a pipeline: worker processes SIGKILLed at random moments (each replaced),
Redis restarted once mid-run, and the sandbox losing 10 % of Salesforce's answers after it
committed the write. Every block still passes every stage once: each record the sink may
write is created exactly once (none twice, none missing) and the rejected list is exactly
the records that should be rejected, each once. TOOLQUEUE_CHAOS_SEED replays the schedule."""

from __future__ import annotations

import os
import random
import time
from typing import Any

from pipelinekit import (
    company_ids,
    kill_one_and_replace,
    rejected,
    restart_redis,
    sf_effects,
    start,
    tricky,
    view,
    wait,
)

from app.kernel import keys

N = 3000
KILLS = 5


def ids(company: str) -> set[str]:
    return company_ids(company, N)


def test_sigkills_and_a_redis_restart_lose_and_repeat_nothing(
    api: Any, fresh_sandbox: Any, workers: Any, redis_server: Any, r: Any
) -> None:
    seed = int(os.environ.get("TOOLQUEUE_CHAOS_SEED") or time.time())
    rng = random.Random(seed)
    print(f"pipeline chaos seed {seed}")
    fresh_sandbox.config(hubspot_contacts=N, rate_budgets={"hubspot": 6},
                         salesforce_locked_fields=["Phone"], write_latency_ms=100)  # fmt: skip
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    fresh_sandbox.config(drop_after_commit_rate=0.1)
    workers.stop_all()
    try:
        for _ in range(3):
            workers.start(concurrency=1)
        pid = start(api, tricky(src, dst, map_failures=False))
        for n in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.5))
            kill_one_and_replace(workers, rng)
            if n == KILLS // 2:
                restart_redis(redis_server, workers)
        done = wait(api, pid, 240)
        assert done["status"] == "partly_done", done
        bad = rejected(api, pid)
        got = [(e["stage"], e["error"]["code"], e["record"]["id"]) for e in bad]
        assert len(got) == len(set(got)), "a record rejected twice"
        expected = {(4, "invalid_record", i) for i in ids("Hooli")}
        expected |= {(4, "INVALID_FIELD_FOR_INSERT_UPDATE", i) for i in ids("Globex")}
        assert set(got) == expected
        writable = {str(i) for i in range(1, N + 1)} - ids("Hooli") - ids("Globex") - ids("Initech")
        ledger = sf_effects(fresh_sandbox)
        per_object = ledger["per_object"]
        assert len(per_object) == len(writable)
        assert all(c["create"] == 1 for c in per_object.values()), "a record created twice"
        written = {
            e["fields"]["External_Id__c"] for e in ledger["effects"] if e["kind"] == "create"
        }
        assert written == writable
        sink = done["stages"][4]
        assert (sink["out"], sink["rejected"]) == (len(writable), len(expected))
        assert done["stages"][2]["dropped"] == len(ids("Initech"))
        assert r.hget(keys.PENDING, keys.pipeline_work(pid)) is None
        print(
            f"pipeline chaos: {KILLS} kills, 1 Redis restart, {len(writable)} written once, "
            f"{len(expected)} rejected once; {view(api, pid)['reason']}"
        )
    finally:
        fresh_sandbox.config(drop_after_commit_rate=0.0, write_latency_ms=0, hubspot_contacts=1000,
                             rate_budgets={}, salesforce_locked_fields=[])  # fmt: skip
        workers.stop_all()
        workers.procs.clear()
        workers.start()
