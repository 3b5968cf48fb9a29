"""A write job whose account's refresh token dies mid-job parks in `needs_reauth` at its
checkpoint and, once the account has new credentials, resumes: every batch applied exactly
once, none lost, none repeated (the refused batch's 401 proves it was not applied, so it is
sent as new, not reconciled)."""

from __future__ import annotations

from typing import Any

import requests
from ledger import assert_created_once


def test_a_write_parks_on_a_dead_refresh_token_and_resumes_exactly_once(
    api: Any, fresh_sandbox: Any
) -> None:
    fresh_sandbox.config(write_latency_ms=300)
    minted = fresh_sandbox.mint(expires_in=2)  # the access token dies in 2 s ...
    creds = {"type": "oauth2", "access_token": minted["access_token"],
             "refresh_token": minted["refresh_token"], "expires_in": 3600,
             "client_id": "cid", "client_secret": "csecret"}  # fmt: skip
    resp = api.post("/v1/accounts", {"vendor": "hubspot", "name": "w", "credentials": creds,
                                     "base_url": fresh_sandbox.hubspot()})  # fmt: skip
    account = resp.json()["account_id"]
    requests.post(f"{fresh_sandbox.url}/_sandbox/revoke", json={"vendor": "hubspot"},
                  timeout=5).raise_for_status()  # ... and its refresh token is dead already
    records = [{"id": f"re{i}@example.com", "properties": {"firstname": "R"}} for i in range(2000)]
    job = api.call("hubspot.contacts.upsert", account_id=account, args={"records": records})
    parked = api.wait(job["job_id"], states=("needs_reauth", "succeeded", "failed"))
    assert parked["status"] == "needs_reauth", parked
    done_before = parked["writes"]["done_ops"]
    assert 0 < done_before < 20, parked["writes"]  # parked mid-job

    fresh = fresh_sandbox.mint()
    again = {**creds, "access_token": fresh["access_token"],
             "refresh_token": fresh["refresh_token"]}  # fmt: skip
    assert api.post(f"/v1/accounts/{account}/credentials", again).status_code == 200
    done = api.wait(job["job_id"], 60)
    assert done["status"] == "succeeded", (done.get("error"), done["history"])
    assert done["writes"]["done_ops"] == 20 and done["writes"]["reconciled"] == 0
    results = api.records(job["job_id"])
    assert [r["index"] for r in results] == list(range(2000))
    assert_created_once(fresh_sandbox, "hubspot", results)
    upserts = [e for e in fresh_sandbox.requests() if e["path"].endswith("/batch/upsert")]
    assert [e["status"] for e in upserts].count(401) == 1  # the refused batch, then sent anew
    assert len([e for e in upserts if e["status"] == 200]) == 20
