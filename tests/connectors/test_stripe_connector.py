"""Stripe tools (a declarative spec) end to end: real API, Redis, worker; the sandbox as Stripe.

Stripe keys never expire, so accounts are `bearer` accounts holding a static key."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from sandbox.stripe import CHARGE, CUSTOMER

# tool -> (collection, request path, id codec)
TOOLS = {
    "stripe.customers.list": ("stripe.customers", "/stripe/v1/customers", CUSTOMER),
    "stripe.charges.list": ("stripe.charges", "/stripe/v1/charges", CHARGE),
}


def stripe_key() -> str:
    return f"sk_test_{uuid.uuid4().hex}"


def query(entry: dict[str, Any]) -> dict[str, str]:
    return dict(p.split("=", 1) for p in entry["query"].split("&") if p)


@pytest.mark.parametrize("tool", list(TOOLS))
def test_full_traversal_once_in_order_and_stops_at_has_more_false(
    api, fresh_sandbox, tool, run, api_log, bearer_account, record_ids
):
    collection, path, codec = TOOLS[tool]
    fresh_sandbox.config(volumes={collection: 1050})
    acc = bearer_account("stripe", stripe_key())
    done = run(acc, tool, {}, fields=["id"])
    assert done["status"] == "succeeded" and done["truncated"] is False, done
    assert record_ids(done) == [codec.id(i) for i in range(1, 1051)]
    log = api_log("stripe", path)
    # 11 pages of 100; each asks starting_after = the previous page's last id; the 11th said
    # has_more: false and nothing was asked after it.
    assert [e["status"] for e in log] == [200] * 11
    assert [query(e).get("starting_after") for e in log] == [
        None,
        *(codec.id(100 * k) for k in range(1, 11)),
    ]
    assert all(query(e)["limit"] == "100" for e in log)


@pytest.mark.parametrize("tool", list(TOOLS))
def test_empty_collection_and_single_page(api, fresh_sandbox, tool, run, api_log, bearer_account):
    collection, path, codec = TOOLS[tool]
    fresh_sandbox.config(volumes={collection: 0})
    acc = bearer_account("stripe", stripe_key())
    empty = run(acc, tool, {})
    assert empty["status"] == "succeeded", empty
    assert api.result(empty["job_id"])["records"] == []
    assert len(api_log("stripe", path)) == 1

    fresh_sandbox.config(volumes={collection: 37})
    single = run(acc, tool, {})
    assert single["status"] == "succeeded", single
    records = api.result(single["job_id"])["records"]
    assert [r["id"] for r in records] == [codec.id(i) for i in range(1, 38)]
    assert records[0]["object"] == ("customer" if "customers" in tool else "charge")
    assert len(api_log("stripe", path)) == 2  # one request for the single page


def test_filters_and_starting_after_arg_reach_stripe(
    api, fresh_sandbox, run, api_log, bearer_account, record_ids
):
    fresh_sandbox.config(volumes={"stripe.customers": 40, "stripe.charges": 900})
    acc = bearer_account("stripe", stripe_key())
    who = CUSTOMER.id(9)
    done = run(acc, "stripe.charges.list", {"customer": who, "limit": 5}, fields=["id", "customer"]
    )
    assert done["status"] == "succeeded", done
    records = api.result(done["job_id"])["records"]
    assert [r["id"] for r in records] == [CHARGE.id(i) for i in range(9, 901, 40)]
    assert {r["customer"] for r in records} == {who}
    assert all(query(e)["customer"] == who for e in api_log("stripe", "/stripe/v1/charges"))

    later = run(acc, "stripe.customers.list", {"starting_after": CUSTOMER.id(30)})
    assert record_ids(later) == [CUSTOMER.id(i) for i in range(31, 41)]


@pytest.mark.parametrize(
    "tool,args,param,message",
    [
        (
            "stripe.customers.list",
            {"starting_after": "cus_nope"},
            "starting_after",
            "No such customer: 'cus_nope'",
        ),
        (
            "stripe.charges.list",
            {"customer": "cus_missing"},
            "customer",
            "No such customer: 'cus_missing'",
        ),
    ],
)
def test_vendor_400_fails_with_stripes_code_and_message(
    api, fresh_sandbox, tool, args, param, message, run, api_log, bearer_account
):
    acc = bearer_account("stripe", stripe_key())
    done = run(acc, tool, args)
    assert done["status"] == "failed", done
    assert done["error"] == {**done["error"], "code": "resource_missing", "message": message}
    assert [e["status"] for e in api_log("stripe", TOOLS[tool][1])] == [400]  # no retry


def test_revoked_key_needs_reauth(api, fresh_sandbox, api_log, bearer_account):
    acc = bearer_account("stripe", stripe_key())
    requests.post(f"{fresh_sandbox.url}/_sandbox/reset", timeout=5).raise_for_status()
    done = api.wait(
        api.call("stripe.customers.list", account_id=acc, args={})["job_id"],
        states=("needs_reauth", "failed", "succeeded"),
    )
    assert done["status"] == "needs_reauth", done
    assert [e["status"] for e in api_log("stripe", "/stripe/v1/customers")] == [401, 401]


@pytest.mark.parametrize("tool", list(TOOLS))
def test_429_backs_off_then_completes(
    api, fresh_sandbox, tool, run, api_log, bearer_account, record_ids
):
    collection, path, codec = TOOLS[tool]
    fresh_sandbox.config(volumes={collection: 1000}, rate_budgets={"stripe": 3}, rate_window_ms=500)
    acc = bearer_account("stripe", stripe_key())
    done = run(acc, tool, {}, fields=["id"])
    assert done["status"] == "succeeded", done
    assert "waiting_rate_limit" in [h["status"] for h in done["history"]]
    assert record_ids(done) == [codec.id(i) for i in range(1, 1001)]
    log = api_log("stripe", path)
    assert 429 in [e["status"] for e in log]
    assert [e["status"] for e in log].count(200) == 10
