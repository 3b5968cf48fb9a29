"""`GET /metrics`: counters kept in Redis by the workers, rendered as Prometheus text."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any

import pytest
import requests
from support import job_gauge_and_records, scrape, value, wait_until

from app.kernel import keys, metrics

CONTACTS = "crm/v3/objects/contacts"


def test_counters_move_with_a_job(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    before = scrape(api.url)
    job = api.call(account_id=account, args={"limit": 100}, max_pages=3)
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded"
    after = scrape(api.url)
    progress = done["progress"]
    assert progress["pages"] == 3
    for name, expected in (
        ("pages_fetched", progress["pages"]),
        ("records_fetched", progress["records"]),
        ("spool_bytes", progress["bytes"]),
    ):
        assert value(after, name) - value(before, name) == expected, name
    assert value(after, "job_transitions", state="succeeded") - value(
        before, "job_transitions", state="succeeded"
    ) == 1
    assert value(after, "job_transitions", state="running") > value(
        before, "job_transitions", state="running"
    )


def test_a_vendor_429_moves_the_refusal_counter(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    fresh_sandbox.config(rate_budget=2, rate_window_ms=2000)
    assert fresh_sandbox.spend("hubspot", CONTACTS, 2) == [200, 200]
    before = scrape(api.url)
    job = api.call(account_id=account, args={"limit": 100}, max_pages=1)
    api.wait(job["job_id"], states=("waiting_rate_limit", "succeeded"), timeout=30)
    after = scrape(api.url)
    assert value(after, "vendor_refusals", vendor="hubspot") - value(
        before, "vendor_refusals", vendor="hubspot"
    ) >= 1
    assert value(after, "job_transitions", state="waiting_rate_limit") > value(
        before, "job_transitions", state="waiting_rate_limit"
    )
    assert api.wait(job["job_id"], timeout=30)["status"] == "succeeded"


def gauge(samples: dict, state: str) -> float | None:
    return samples.get(("toolqueue_jobs", (("state", state),)))


def test_jobs_gauge_follows_jobs_through_their_states(api: Any, fresh_sandbox: Any, r: Any) -> None:
    """`toolqueue_jobs{state}`: unfinished jobs per state now. Each status change moves it in
    the same Lua step as the job record, so it always equals a count of the records."""
    samples = scrape(api.url)
    for state in ("queued", "running", "waiting_rate_limit", "waiting_vendor", "needs_reauth"):
        assert gauge(samples, state) is not None, state  # every state exported, even at 0
    assert gauge(samples, "succeeded") is None  # ended jobs are counted by job_transitions

    account = api.account(fresh_sandbox)
    fresh_sandbox.config(rate_budget=2, rate_window_ms=4000)
    assert fresh_sandbox.spend("hubspot", CONTACTS, 2) == [200, 200]
    held = api.call(account_id=account, args={"limit": 100}, max_pages=1)["job_id"]
    assert api.wait(held, states=("waiting_rate_limit", "succeeded"))["status"] == (
        "waiting_rate_limit")
    counted, records = job_gauge_and_records(r)
    assert counted == records
    assert counted["waiting_rate_limit"] >= 1
    assert gauge(scrape(api.url), "waiting_rate_limit") >= 1

    assert api.post(f"/v1/jobs/{held}/cancel").json()["status"] == "cancelled"
    after_cancel, records = job_gauge_and_records(r)  # the cancel moved it out, atomically
    assert after_cancel == records

    fresh_sandbox.config(rate_budget=100, rate_window_ms=1000)
    done = api.call(account_id=account, args={"limit": 100}, max_pages=2)["job_id"]
    assert api.wait(done)["status"] == "succeeded"
    counted, records = job_gauge_and_records(r)
    assert counted == records


def test_own_budget_deferrals_and_token_refreshes_are_counted(
    api: Any, fresh_sandbox: Any
) -> None:
    """Pacing by the learned window defers steps before they send (budget_deferrals); an
    access token that dies mid-job is refreshed (token_refreshes{outcome="ok"})."""
    fresh_sandbox.config(rate_budget=3, rate_window_ms=1500, token_ttl_s=2, hubspot_contacts=800)
    account = api.account(fresh_sandbox)
    before = scrape(api.url)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded" and done["progress"]["pages"] == 8
    after = scrape(api.url)
    assert value(after, "budget_deferrals") > value(before, "budget_deferrals")
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["refresh_count"] >= 1
    moved = value(after, "token_refreshes", outcome="ok") - value(
        before, "token_refreshes", outcome="ok")  # fmt: skip
    assert moved >= view["refresh_count"]


def test_metrics_reveal_no_tenant_data(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    api.wait(api.call(account_id=account, args={"limit": 100}, max_pages=1)["job_id"])
    text = requests.get(f"{api.url}/metrics", timeout=10).text
    for secret in (api.tenant["tenant_id"], api.tenant["api_key"], account):
        assert secret not in text
    assert "# TYPE toolqueue_token_refreshes_total counter" in text


def test_unknown_metric_or_labels_are_refused(r: Any) -> None:
    with pytest.raises(KeyError):
        metrics.incr("tenant_jobs", {"tenant": "ten_x"})
    with pytest.raises(ValueError):
        metrics.incr("vendor_refusals", {"vendor": "hubspot", "tenant": "ten_x"})


def test_a_tally_flushes_in_one_round_trip_and_only_when_needed(r: Any) -> None:
    tally = metrics.Tally()
    tally.flush()  # nothing counted: no round trip, no error
    before = int(r.hget(keys.METRICS, metrics.field("webhook_attempts", {"outcome": "x"})) or 0)
    tally.add("webhook_attempts", {"outcome": "x"}, 2)
    tally.add("webhook_attempts", {"outcome": "x"})
    tally.flush()
    tally.flush()  # already written: not added twice
    after = int(r.hget(keys.METRICS, metrics.field("webhook_attempts", {"outcome": "x"})))
    assert after - before == 3


def test_webhook_attempts_are_counted(api: Any, fresh_sandbox: Any, receiver: Any) -> None:
    before = scrape(api.url)
    job = api.call(account_id=api.account(fresh_sandbox), args={"limit": 100}, max_pages=1,
                   callback_url=receiver.url)  # fmt: skip
    receiver.wait(1)
    api.wait(job["job_id"])
    was = value(before, "webhook_attempts", outcome="delivered")
    # counted right after the receiver answered: give the worker that moment
    assert wait_until(
        lambda: value(scrape(api.url), "webhook_attempts", outcome="delivered") > was, 10
    )


def test_inbound_vendor_webhooks_are_counted_by_outcome(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox, "shopify")
    secret = "shpss_metrics_" + "m" * 20
    put = api.s.put(f"{api.url}/v1/accounts/{account}/vendor-webhook", json={"secret": secret},
                    timeout=10)  # fmt: skip
    assert put.status_code == 200, put.text
    body = b'{"id": 1}'
    sig = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Topic": "customers/create", "X-Shopify-Hmac-Sha256": sig,
               "X-Shopify-Event-Id": str(uuid.uuid4())}  # fmt: skip
    before = scrape(api.url)
    url = f"{api.url}/v1/vendor-webhooks/shopify/{account}"
    for h in (headers, headers, {**headers, "X-Shopify-Hmac-Sha256": "Zm9yZ2Vk"}):
        requests.post(url, data=body, headers=h, timeout=10)
    after = scrape(api.url)
    name = "vendor_webhooks"
    for outcome in ("accepted", "duplicate", "refused"):
        moved = value(after, name, vendor="shopify", outcome=outcome) - value(
            before, name, vendor="shopify", outcome=outcome)  # fmt: skip
        assert moved == 1, outcome
