"""Completion webhooks: signed, retried with the same id, refused for private targets."""

from __future__ import annotations

import json

from standardwebhooks import Webhook

from app.kernel import keys


def test_failed_deliveries_retry_with_same_webhook_id(api, fresh_sandbox, receiver, r):
    receiver.status = 503
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"],
                   callback_url=receiver.url)
    receiver.wait(2, timeout=30)
    receiver.status = 200
    hooks = receiver.wait(3, timeout=30)
    ids = {h["headers"]["webhook-id"] for h in hooks}
    assert ids == {f"msg_{job['job_id']}"}
    wh = Webhook(api.tenant["webhook_secret"])
    for h in hooks:  # every attempt is freshly signed and verifies
        assert wh.verify(h["body"], h["headers"])["type"] == "job.succeeded"
    log = [json.loads(e) for e in r.lrange(keys.job_deliveries(job["job_id"]), 0, -1)]
    assert [e["status_code"] for e in log] == [503, 503, 200]
    assert len(receiver.requests) == 3  # delivered: no further attempts


def test_cancelled_and_failed_jobs_notify(api, fresh_sandbox, receiver):
    fresh_sandbox.config(latency_ms=200)
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 10}, callback_url=receiver.url)
    assert api.post(f"/v1/jobs/{job['job_id']}/cancel").json()["status"] == "cancelled"
    event = Webhook(api.tenant["webhook_secret"]).verify(receiver.wait(1)[0]["body"],
                                                         receiver.requests[0]["headers"])
    assert event["type"] == "job.cancelled"
    assert event["data"]["status"] == "cancelled"


def test_webhook_body_is_capped_and_wraps_the_result(api, fresh_sandbox, receiver):
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100, "properties": ["notes", "email"]},
                   callback_url=receiver.url)
    hook = receiver.wait(1)[0]
    assert len(hook["body"]) <= 131072
    event = json.loads(hook["body"])
    assert set(event) == {"type", "timestamp", "data"}
    assert event["data"]["truncated"] is True
    assert event["data"] == api.result(job["job_id"])
