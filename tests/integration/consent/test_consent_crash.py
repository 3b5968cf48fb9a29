"""A bad day for an approval: the worker previewing it is SIGKILLed, Redis restarts while it
awaits a person, and the approved write still happens exactly once with nothing sent before
the approval (tests/integration/killpoint_worker.py)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from consentkit import consent_tenant, effects, hubspot_account, key
from support import answers_ping, live, refresh_broker_connections, wait_until

RECORDS = 150  # two batch operations


def test_a_killed_preview_and_a_redis_restart_lose_and_repeat_nothing(
    api: Any, fresh_sandbox: Any, workers: Any, redis_server: Any
) -> None:
    owner = consent_tenant(api, "crash")
    account = hubspot_account(owner, fresh_sandbox)
    person = key(owner, scopes=["approve"])
    records = [{"id": f"crash-{i}@example.com", "properties": {"firstname": "K"}}
               for i in range(RECORDS)]  # fmt: skip
    workers.stop_all()
    try:
        victim = workers.start(kill_at=("after_record", 0))  # after the first preview batch
        job_id = owner.call("hubspot.contacts.upsert", account_id=account,
                            args={"records": records})["job_id"]  # fmt: skip
        wait_until(lambda: victim.proc.poll() is not None, 30)
        assert "killpoint: dying after_record operation 0" in victim.log()
        workers.start(concurrency=1)
        held = owner.wait(job_id, 60, states=("awaiting_approval", "failed", "cancelled"))
        assert held["status"] == "awaiting_approval", held
        assert held["preview"]["create"] == RECORDS and held["preview"]["done_ops"] == 2
        assert effects(fresh_sandbox, "hubspot")["count"] == 0  # nothing sent

        running = live(workers)
        redis_server.stop()  # SIGTERM: Redis fsyncs its AOF and exits
        time.sleep(0.5)
        redis_server.start()
        refresh_broker_connections()
        with contextlib.suppress(AssertionError):
            wait_until(lambda: all(p.proc.poll() is not None or answers_ping(p)
                                   for p in running), 20, 0.2)  # fmt: skip
        if any(p.proc.poll() is not None or not answers_ping(p) for p in running):
            workers.stop_all()
            workers.start(concurrency=1)

        after = owner.get(f"/v1/jobs/{job_id}").json()
        assert after["status"] == "awaiting_approval"
        assert after["approval"]["binding"] == held["approval"]["binding"]
        rows = owner.get(f"/v1/jobs/{job_id}/preview").json()["records"]
        assert [r["index"] for r in rows] == list(range(RECORDS))  # none twice, none missing
        resp = person.post(f"/v1/jobs/{job_id}/approve", {"binding": held["approval"]["binding"]})
        assert resp.status_code == 200, resp.text
        done = owner.wait(job_id, 90)
        assert done["status"] == "succeeded", done
        per_object = effects(fresh_sandbox, "hubspot")["per_object"]
        assert len(per_object) == RECORDS
        assert all(c["create"] == 1 and c["update"] == 0 for c in per_object.values())
        assert [r["status"] for r in owner.records(job_id)] == ["created"] * RECORDS
    finally:
        workers.stop_all()
        workers.start()
