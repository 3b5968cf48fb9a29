"""`GET /metrics`: counters kept in Redis by the workers, rendered as Prometheus text."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support import wait_until

from app import metrics

CONTACTS = "crm/v3/objects/contacts"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Unauthenticated, like a Prometheus scraper; parsed with prometheus_client's parser."""
    resp = requests.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((f"toolqueue_{name}_total", tuple(sorted(labels.items()))), 0.0)


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
    before = int(r.hget(metrics.KEY, metrics.field("webhook_attempts", {"outcome": "x"})) or 0)
    tally.add("webhook_attempts", {"outcome": "x"}, 2)
    tally.add("webhook_attempts", {"outcome": "x"})
    tally.flush()
    tally.flush()  # already written: not added twice
    after = int(r.hget(metrics.KEY, metrics.field("webhook_attempts", {"outcome": "x"})))
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
