"""The audit log: every step of an approval, every write operation and policy change, page
by page, immutable, and the tenant's own."""

from __future__ import annotations

from typing import Any

from consentkit import (
    audit_entries,
    consent_tenant,
    held_update,
    hubspot_account,
    key,
    seeded_contacts,
)


def test_every_step_is_logged_for_the_tenant_alone(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "audit")
    account = hubspot_account(owner, sandbox)
    (cid,) = seeded_contacts(owner, account, ["audit@example.com"])
    agent = key(owner, scopes=["read", "write"])
    person = key(owner, scopes=["approve"])
    job_id = held_update(agent, account, cid)
    bound = agent.get(f"/v1/jobs/{job_id}").json()["approval"]["binding"]
    assert person.post(f"/v1/jobs/{job_id}/approve", {"binding": bound}).status_code == 200
    assert agent.wait(job_id)["status"] == "succeeded"

    entries = audit_entries(owner)
    mine = [e for e in entries if e.get("job_id") == job_id]
    assert [e["kind"] for e in mine] == ["approval_requested", "approval_approved", "write"]
    requested, approved, write = mine
    assert requested["key_id"] == agent.tenant["key_id"] and requested["records"] == 1
    assert approved["key_id"] == person.tenant["key_id"]
    assert approved["binding"] == bound and approved["requested_by"] == agent.tenant["key_id"]
    assert write["outcome"] == {"updated": 1} and write["ids"] == [cid]
    assert write["approved_by"] == person.tenant["key_id"]
    assert write["preview_digest"] == requested["preview_digest"] == approved["preview_digest"]
    assert len({e["args_digest"] for e in mine}) == 1
    policy_changes = [e for e in entries if e["kind"] == "policy_changed"]
    assert [p["after"] for p in policy_changes] == [{"destructive": "allow"}, {}]  # seeding
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))

    other = consent_tenant(api, "audit-other")
    assert other.get("/v1/audit").json()["entries"] == []
    assert agent.get("/v1/audit").status_code == 403  # neither admin nor approve
    assert person.get("/v1/audit").status_code == 200
    bad = owner.get("/v1/audit", params={"after": "../x"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_cursor"
