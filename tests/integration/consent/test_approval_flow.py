"""Approvals end to end on real workers and the sandbox: preview, rest, approve or reject,
and what the vendor saw (nothing before the approval)."""

from __future__ import annotations

from typing import Any

from consentkit import awaiting, consent_tenant, effects, key, seeded_contacts


def test_an_update_waits_for_another_key_then_writes_once(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api)
    account = owner.account(sandbox, "hubspot")
    (cid,) = seeded_contacts(owner, account, ["grace@example.com"])
    agent = key(owner, scopes=["read", "write"], name="agent")
    approver = key(owner, scopes=["approve"], name="person")
    before = effects(sandbox, "hubspot")["per_object"].get(cid)

    job = agent.call("hubspot.contacts.update", account_id=account,
                     args={"id": cid, "properties": {"firstname": "Grace"}})  # fmt: skip
    rested = awaiting(agent, job["job_id"])
    assert rested["status"] == "awaiting_approval", rested
    assert rested["preview"]["records"] == 1
    assert effects(sandbox, "hubspot")["per_object"].get(cid) == before  # nothing sent
    preview = agent.get(f"/v1/jobs/{job['job_id']}/preview").json()
    (row,) = preview["records"]
    assert (row["action"], row["proposed"]) == ("update", {"firstname": "Grace"})
    assert row["current"] == {"firstname": "Ada"}  # what seeded_contacts wrote

    own = agent.post(f"/v1/jobs/{job['job_id']}/approve", {})
    assert own.status_code == 403 and own.json()["error"] == "scope_missing"
    resp = approver.post(f"/v1/jobs/{job['job_id']}/approve",
                         {"binding": rested["approval"]["binding"]})  # fmt: skip
    assert resp.status_code == 200, resp.text
    done = agent.wait(job["job_id"])
    assert done["status"] == "succeeded", done
    assert done["approval"]["state"] == "approved"
    assert done["approval"]["decided_by"] == approver.tenant["key_id"]
    (result,) = agent.records(job["job_id"])
    assert result["status"] == "updated"
    assert effects(sandbox, "hubspot")["per_object"][cid].get("update", 0) == 1


def test_a_dry_run_writes_nothing(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "dry")
    account = owner.account(sandbox, "hubspot")
    (cid,) = seeded_contacts(owner, account, ["dry@example.com"])
    before = effects(sandbox, "hubspot")
    job = owner.call("hubspot.contacts.archive", account_id=account, args={"id": cid},
                     dry_run=True)  # fmt: skip
    done = owner.wait(job["job_id"])
    assert done["status"] == "succeeded" and done["dry_run"] is True, done
    assert "writes" not in done
    assert effects(sandbox, "hubspot") == before
    body = owner.result(job["job_id"])
    assert body["dry_run"] is True and body["records"][0]["index"] == 0
