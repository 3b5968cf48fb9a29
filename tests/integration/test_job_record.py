"""What a job's hash holds in Redis is what `JobRecord` declares: a field written anywhere
(a Lua script, a pipeline) without being declared fails here."""

from __future__ import annotations

import time

from app.kernel import keys
from app.store.jobrecord import JobRecord

DECLARED = JobRecord.__required_keys__ | JobRecord.__optional_keys__


def test_the_fields_of_finished_jobs_are_all_declared(api, fresh_sandbox, receiver, r):
    account = api.account(fresh_sandbox)
    first = api.call(account_id=account, args={"limit": 10}, max_pages=2, fields=["id"],
                     callback_url=receiver.url, idempotency_key=f"k-{time.time_ns()}")  # fmt: skip
    done = api.wait(first["job_id"])
    assert done["status"] == "succeeded" and done.get("continuation")
    follow = api.post("/v1/jobs", {"continuation": done["continuation"]}).json()["job_id"]
    assert api.wait(follow)["status"] == "succeeded"
    receiver.wait(1)
    time.sleep(0.5)  # the webhook's last write (webhook_delivered)
    for job_id in (first["job_id"], follow):
        held = set(r.hgetall(keys.job(job_id)))
        assert held - DECLARED == set(), job_id
    assert {"callback_url", "idempotency_key", "continuation", "webhook_delivered"} <= set(
        r.hgetall(keys.job(first["job_id"]))
    )
