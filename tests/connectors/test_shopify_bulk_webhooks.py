"""shopify.bulk_query driven by Shopify's `bulk_operations/finish` webhook: the sandbox shop
posts it (signed) to toolqueue's inbound route, which resumes the waiting job at once; the
poll is only the fallback. Real stack: sandbox, API, workers, Redis."""

from __future__ import annotations

import time

import requests
from support import wait_until
from test_shopify_bulk import CUSTOMERS, control, customer_gid, operations

TOOL = "shopify.bulk_query"
SECRET = "shpss_bulk_" + "s" * 24


def hooked_account(api, sandbox, *, fallback_s: float, subscribe_secret: str = SECRET) -> str:
    """A Shopify account with a vendor-webhook secret, and the sandbox shop's subscription
    pointing at its inbound URL (as the app's webhookSubscriptionCreate would)."""
    account = api.account(sandbox, "shopify")
    resp = api.s.put(f"{api.url}/v1/accounts/{account}/vendor-webhook",
                     json={"secret": SECRET, "fallback_s": fallback_s}, timeout=10)  # fmt: skip
    assert resp.status_code == 200, resp.text
    url = api.url + resp.json()["vendor_webhook"]["url"]
    requests.post(f"{sandbox.url}/shopify/_sandbox/webhooks",
                  json={"callback_url": url, "secret": subscribe_secret},
                  timeout=5).raise_for_status()  # fmt: skip
    return account


def deliveries(sandbox) -> list[dict]:
    return requests.get(f"{sandbox.url}/shopify/_sandbox/webhooks", timeout=5).json()[
        "attempts"
    ]


def statuses(sandbox) -> list:
    return [d.get("status") for d in deliveries(sandbox)]


def reasons(done: dict) -> list[str]:
    return [h["reason"] for h in done["history"]]


def test_finish_webhook_resumes_the_job_long_before_its_fallback_poll(api, fresh_sandbox):
    fresh_sandbox.config(volumes={"shopify.customers": 300})
    control(fresh_sandbox, duration_s=1.5)
    account = hooked_account(api, fresh_sandbox, fallback_s=60)
    started = time.monotonic()
    job = api.call(TOOL, account_id=account, args={"query": CUSTOMERS})
    done = api.wait(job["job_id"], timeout=30)
    took = time.monotonic() - started
    assert done["status"] == "succeeded", (done.get("error"), reasons(done)[-4:])
    assert took < 20, took  # the fallback poll would have come after 60 s
    assert any("waiting for the vendor's webhook (polling fallback in 60.0s)" in r
               for r in reasons(done))  # fmt: skip
    assert any("vendor webhook export.completed: resuming" in r for r in reasons(done))
    assert statuses(fresh_sandbox) == [200]
    assert [r["id"] for r in api.result(job["job_id"])["records"]] == [
        customer_gid(i) for i in range(1, 301)]  # fmt: skip
    # the shop saw the mutation, one look after the webhook, the file: no polling in between
    [op] = operations(fresh_sandbox)
    assert op["reads"] == 1 and op["downloads"] == 1
    events = api.get(f"/v1/accounts/{account}/vendor-events").json()["events"]
    assert [(e["type"], e["ref"]) for e in events] == [("export.completed", op["id"])]


def test_duplicate_finish_webhook_resumes_once(api, fresh_sandbox):
    fresh_sandbox.config(volumes={"shopify.customers": 50})
    control(fresh_sandbox, duration_s=1.0, webhook_copies=2)
    account = hooked_account(api, fresh_sandbox, fallback_s=60)
    job = api.call(TOOL, account_id=account, args={"query": CUSTOMERS})
    done = api.wait(job["job_id"], timeout=30)
    assert done["status"] == "succeeded", reasons(done)[-4:]
    wait_until(lambda: len(deliveries(fresh_sandbox)) == 2, 10)
    assert statuses(fresh_sandbox) == [200, 200]  # both acknowledged, so Shopify stops
    assert sum("resuming" in r for r in reasons(done)) == 1
    [op] = operations(fresh_sandbox)
    assert op["reads"] == 1 and op["downloads"] == 1  # processed once
    assert len(api.result(job["job_id"])["records"]) == 50
    assert len(api.get(f"/v1/accounts/{account}/vendor-events").json()["events"]) == 1


def test_webhook_that_never_comes_is_covered_by_the_fallback_poll(api, fresh_sandbox):
    fresh_sandbox.config(volumes={"shopify.customers": 20})
    control(fresh_sandbox, duration_s=0.5, no_webhook=True)
    account = hooked_account(api, fresh_sandbox, fallback_s=3)
    started = time.monotonic()
    job = api.call(TOOL, account_id=account, args={"query": CUSTOMERS})
    done = api.wait(job["job_id"], timeout=30)
    assert done["status"] == "succeeded", reasons(done)[-4:]
    assert time.monotonic() - started >= 3  # it waited for the webhook as long as configured
    assert deliveries(fresh_sandbox) == []
    assert not any("resuming" in r for r in reasons(done))
    [op] = operations(fresh_sandbox)
    assert op["reads"] == 1  # one fallback look found it COMPLETED


def test_forged_webhook_is_refused_and_the_job_falls_back_to_polling(api, fresh_sandbox):
    fresh_sandbox.config(volumes={"shopify.customers": 20})
    control(fresh_sandbox, duration_s=0.5)
    account = hooked_account(api, fresh_sandbox, fallback_s=4,
                             subscribe_secret="shpss_not_the_registered_one")  # fmt: skip
    started = time.monotonic()
    job = api.call(TOOL, account_id=account, args={"query": CUSTOMERS})
    done = api.wait(job["job_id"], timeout=30)
    assert done["status"] == "succeeded", reasons(done)[-4:]
    assert statuses(fresh_sandbox) == [401]  # refused, and it changed nothing
    assert time.monotonic() - started >= 4
    assert not any("resuming" in r for r in reasons(done))
    assert api.get(f"/v1/accounts/{account}/vendor-events").json()["events"] == []


def test_failure_webhook_resumes_the_job_into_failed_with_shopifys_reason(api, fresh_sandbox):
    control(fresh_sandbox, duration_s=1.0, fail_next=True)
    account = hooked_account(api, fresh_sandbox, fallback_s=60)
    job = api.call(TOOL, account_id=account, args={"query": CUSTOMERS})
    done = api.wait(job["job_id"], timeout=30)
    assert done["status"] == "failed", reasons(done)[-4:]
    assert done["error"]["code"] == "bulk_operation_failed"
    assert "INTERNAL_SERVER_ERROR" in done["error"]["message"]
    assert any("vendor webhook export.failed: resuming" in r for r in reasons(done))
