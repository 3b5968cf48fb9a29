"""The Clearbit company lookup (a declarative spec) against the sandbox as Clearbit: the tool
alone over the real wire (`VendorHttp`), then as jobs through the API and a worker.

Clearbit keys never expire, so accounts are `bearer` accounts holding a static key."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

import connectors
from connectors.errors import RateLimited, VendorError
from connectors.http import VendorHttp
from sandbox.clearbit import company

TOOL = "clearbit.companies.find"
FIND = "/clearbit/v2/companies/find"


def clearbit_key() -> str:
    return f"sk_{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def registry() -> connectors.Registry:
    return connectors.load()


@pytest.fixture
def lookup(fresh_sandbox: Any, registry: connectors.Registry) -> Any:
    """`lookup(domain)`: one page of the tool, fetched from the sandbox with a fresh key."""
    key = clearbit_key()
    accept = {"vendor": "clearbit", "token": key}
    resp = requests.post(f"{fresh_sandbox.url}/_sandbox/static-token", json=accept, timeout=5)
    assert resp.status_code == 200, resp.text
    tool, vendor = registry.tools[TOOL], registry.vendors["clearbit"]
    http = VendorHttp(vendor, f"{fresh_sandbox.url}/clearbit", lambda refresh: key)

    def go(domain: str) -> connectors.Page:
        return tool.fetch(http, tool.args(domain=domain), None)

    go.http = http
    return go


def test_a_known_domain_is_one_record_in_clearbits_shape(fresh_sandbox, lookup, api_log):
    fresh_sandbox.config(rate_budgets={"clearbit": 50}, rate_window_ms=60_000)
    page = lookup("Acme.Example")
    assert page.records == [company("acme.example")]
    assert page.next_cursor is None and page.wait_s is None
    assert [e["query"] for e in api_log("clearbit", FIND)] == ["domain=acme.example"]  # lowered
    rate = lookup.http.last_rate  # X-RateLimit-*, read by the existing dialects
    assert (rate.limit, rate.remaining, rate.limited) == (50, 49, False)
    assert 0 < rate.reset_after <= 60


def test_an_unknown_domain_is_a_page_with_no_records(lookup, api_log):
    for domain in ("cyberdyne.example", "soylent.example", "nobody.example"):
        page = lookup(domain)
        assert page.records == [] and page.next_cursor is None and page.wait_s is None
    assert [e["status"] for e in api_log("clearbit", FIND)] == [404, 404, 404]


def test_a_domain_clearbit_refuses_is_a_vendor_error_422(lookup, api_log):
    with pytest.raises(VendorError) as refused:
        lookup("acme.123")  # a hostname to us, an invalid top-level domain to Clearbit
    assert refused.value.status == 422
    assert refused.value.code == "params_invalid"
    assert refused.value.message == "Invalid domain: acme.123"
    assert [e["status"] for e in api_log("clearbit", FIND)] == [422]


def test_a_429_is_rate_limited_for_the_seconds_clearbit_names(fresh_sandbox, lookup, api_log):
    fresh_sandbox.config(rate_budgets={"clearbit": 1}, rate_window_ms=30_000)
    assert fresh_sandbox.spend("clearbit", "v2/companies/find?domain=acme.example", 1) == [200]
    with pytest.raises(RateLimited) as limited:
        lookup("acme.example")
    # X-RateLimit-Reset is delta seconds (≤ the window), read as such, never as an epoch
    assert limited.value.retry_after == 30.0 and limited.value.status == 429
    assert lookup.http.last_rate.remaining == 0 and lookup.http.last_rate.limited
    assert [e["status"] for e in api_log("clearbit", FIND)] == [200, 429]


@pytest.mark.parametrize(
    "domain,reason",
    [("", "empty"), ("https://acme.example", "not a URL"), ("jane@acme.example", "email"),
     ("acme.example/about", "without a path"), ("localhost", "not a domain name")],
)  # fmt: skip
def test_an_argument_that_is_no_domain_is_refused_with_the_reason(registry, domain, reason):
    tool = registry.tools[TOOL]
    with pytest.raises(ValueError, match=reason):
        tool.args(domain=domain)


def test_the_input_schema_says_what_a_domain_is(registry):
    schema = registry.tools[TOOL].args.model_json_schema()
    assert schema["required"] == ["domain"] and schema["additionalProperties"] is False
    assert schema["properties"]["domain"]["format"] == "hostname"


# ---- as jobs: POST /v1/accounts, POST /v1/jobs, a worker ------------------------------------


def test_a_clearbit_account_is_created_like_stripes(api, fresh_sandbox, bearer_account):
    acc = bearer_account("clearbit", clearbit_key())
    view = api.get(f"/v1/accounts/{acc}").json()
    assert view["vendor"] == "clearbit" and view["base_url"] == f"{fresh_sandbox.url}/clearbit"
    assert "clearbit" in {v for t in api.get("/v1/tools").json()["tools"] for v in t["vendors"]}


def test_found_and_unknown_lookups_as_jobs(api, fresh_sandbox, run, api_log, bearer_account):
    acc = bearer_account("clearbit", clearbit_key())
    found = run(acc, TOOL, {"domain": "globex.example"}, fields=["id", "name", "metrics"])
    assert found["status"] == "succeeded", found
    (record,) = api.result(found["job_id"])["records"]
    expected = company("globex.example")
    assert record == {k: expected[k] for k in ("id", "name", "metrics")}

    unknown = run(acc, TOOL, {"domain": "cyberdyne.example"})
    assert unknown["status"] == "succeeded", unknown
    assert api.result(unknown["job_id"])["records"] == []
    assert [e["status"] for e in api_log("clearbit", FIND)] == [200, 404]  # each asked once


def test_a_refused_domain_fails_the_job_with_clearbits_reason(api, fresh_sandbox, run, api_log,
                                                              bearer_account):  # fmt: skip
    acc = bearer_account("clearbit", clearbit_key())
    done = run(acc, TOOL, {"domain": "acme.123"})
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "params_invalid"
    assert done["error"]["message"] == "Invalid domain: acme.123"
    assert [e["status"] for e in api_log("clearbit", FIND)] == [422]  # no retry


def test_a_url_as_the_domain_is_refused_at_enqueue(api, fresh_sandbox, bearer_account, api_log):
    acc = bearer_account("clearbit", clearbit_key())
    resp = api.post("/v1/jobs", {"tool": TOOL, "account_id": acc,
                                 "args": {"domain": "https://acme.example/"}})  # fmt: skip
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == "invalid_args" and "not a URL" in resp.text
    assert api_log("clearbit") == []


def test_a_429_waits_for_the_reset_then_finds(api, fresh_sandbox, run, api_log, bearer_account):
    fresh_sandbox.config(rate_budgets={"clearbit": 2}, rate_window_ms=1000)
    acc = bearer_account("clearbit", clearbit_key())
    fresh_sandbox.spend("clearbit", "v2/companies/find?domain=hooli.example", 2)  # another app
    done = run(acc, TOOL, {"domain": "hooli.example"})
    assert done["status"] == "succeeded", done
    waits = [h for h in done["history"] if h["status"] == "waiting_rate_limit"]
    assert waits, done["history"]
    assert api.result(done["job_id"])["records"] == [company("hooli.example")]
    statuses = [e["status"] for e in api_log("clearbit", FIND)]
    assert statuses[:3] == [200, 200, 429] and statuses[-1] == 200
