"""An account's own `rate_budget` seeds its shared budget: a vendor that documents none per
account (Salesforce states only a daily allocation, with no window) is paced ahead by the
account's, so the vendor never has to refuse."""

from __future__ import annotations

from typing import Any

import requests

RECORDS = 1200  # six sObject Collections requests of 200


def connect(api: Any, sandbox: Any, **extra: Any) -> requests.Response:
    tokens = sandbox.mint("salesforce")
    body = {"vendor": "salesforce", "name": "paced", "base_url": f"{sandbox.url}/salesforce",
            "credentials": {"type": "oauth2", "access_token": tokens["access_token"],
                            "refresh_token": tokens["refresh_token"],
                            "expires_in": tokens["expires_in"], "client_id": "cid",
                            "client_secret": "csecret"}, **extra}  # fmt: skip
    return api.post("/v1/accounts", body)


def test_an_accounts_own_budget_paces_it_so_the_vendor_refuses_nothing(
    api: Any, fresh_sandbox: Any
) -> None:
    fresh_sandbox.config(rate_budgets={"salesforce": 2})  # 2 per rolling 1 s in the tests
    try:
        resp = connect(api, fresh_sandbox, rate_budget={"limit": 2, "window_s": 1.0})
        assert resp.status_code == 201, resp.text
        assert resp.json()["rate_budget"] == {"limit": 2, "window_s": 1.0}
        records = [{"Ext_Id__c": f"paced-{i}", "LastName": "P"} for i in range(RECORDS)]
        args = {"sobject": "Contact", "external_id_field": "Ext_Id__c", "records": records}
        job = api.call("salesforce.records.upsert", account_id=resp.json()["account_id"],
                       args=args)  # fmt: skip
        done = api.wait(job["job_id"], 60)
        assert done["status"] == "succeeded", done
        calls = [e for e in fresh_sandbox.requests("salesforce") if e["method"] == "PATCH"]
        assert [e["status"] for e in calls] == [200] * (RECORDS // 200)  # none refused
        times = sorted(e["t"] for e in calls)
        assert all(b - a >= 0.95 for a, b in zip(times, times[2:], strict=False))  # 2 per 1 s
    finally:
        fresh_sandbox.config(rate_budgets={})


def test_a_bad_rate_budget_is_refused_with_the_field_named(api: Any, fresh_sandbox: Any) -> None:
    for bad in ({"limit": 0, "window_s": 1}, {"limit": 5, "window_s": 0}, {"limit": "5"},
                {"limit": 5, "window_s": 1, "burst": 9}, {"limit": 10**9, "window_s": 1}):
        resp = connect(api, fresh_sandbox, rate_budget=bad)
        assert resp.status_code == 422, (bad, resp.text)
        assert "rate_budget" in resp.text
