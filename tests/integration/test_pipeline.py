"""End to end: enqueue over HTTP, a real worker pages the sandbox, a signed webhook arrives."""

from __future__ import annotations

from standardwebhooks import Webhook


def test_job_runs_to_signed_webhook(api, fresh_sandbox, receiver):
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100},
                   fields=["id", "properties.email"], callback_url=receiver.url)
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", done
    body = api.result(job["job_id"])
    assert [r["id"] for r in body["records"]] == [str(i) for i in range(1, 1001)]
    assert body["truncated"] is False and body["pages_fetched"] == 10
    hook = receiver.wait(1)[0]
    assert len(hook["body"]) <= 131072
    event = Webhook(api.tenant["webhook_secret"]).verify(hook["body"], hook["headers"])
    assert event["type"] == "job.succeeded"
    assert event["data"]["record_count"] == 1000
