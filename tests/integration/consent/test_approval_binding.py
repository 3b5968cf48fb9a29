"""An approval applies to exactly the job that was previewed, once, by someone allowed to
give it: links are single use and tamper-evident, bindings must match, the agent's own key
cannot approve, and an unanswered approval expires."""

from __future__ import annotations

import time
from typing import Any

import requests
from consentkit import (
    audit_entries,
    consent_tenant,
    effects,
    held_update,
    hubspot_account,
    key,
    seeded_contacts,
)


def _link(receiver: Any, job_id: str) -> str:
    def found() -> str | None:
        for event in receiver.events():
            a = event["data"].get("approval") or {}
            if event["type"] == "job.approval_required" and a.get("job_id") == job_id:
                return str(a["approval_link"]) if "approval_link" in a else None
        return None

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if (link := found()) is not None:
            return link
        time.sleep(0.1)
    raise AssertionError(f"no job.approval_required with a link for {job_id}")


def test_a_link_approves_once_and_a_tampered_one_nothing(
    api: Any, sandbox: Any, receiver: Any
) -> None:
    owner = consent_tenant(api, "links")
    account = hubspot_account(owner, sandbox, events_url=receiver.url)
    (cid,) = seeded_contacts(owner, account, ["links@example.com"])
    job_id = held_update(owner, account, cid)
    link = _link(receiver, job_id)

    tampered = link[:-3] + ("aaa" if not link.endswith("aaa") else "bbb")
    assert requests.get(tampered, timeout=5).status_code == 404
    resp = requests.post(tampered, data={"decision": "approve"}, timeout=5)
    assert resp.status_code == 404
    assert owner.get(f"/v1/jobs/{job_id}").json()["status"] == "awaiting_approval"

    page = requests.get(link, timeout=5)
    assert page.status_code == 200 and "hubspot.contacts.update" in page.text
    assert page.headers["x-frame-options"] == "DENY"  # no framed Approve button to trick a click
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "csecret" not in page.text and "access_token" not in page.text
    assert owner.get(f"/v1/jobs/{job_id}").json()["status"] == "awaiting_approval"  # GET: no-op
    assert requests.post(link, data={"decision": "approve"}, timeout=5).status_code == 200
    again = requests.post(link, data={"decision": "approve"}, timeout=5)
    assert again.status_code == 404  # single use
    done = owner.wait(job_id)
    assert done["status"] == "succeeded" and done["approval"]["decided_by"] == "link"
    assert effects(sandbox, "hubspot")["per_object"][cid].get("update", 0) == 1


def test_the_link_does_not_reach_the_agents_callback(api: Any, sandbox: Any, receiver: Any) -> None:
    owner = consent_tenant(api, "callback")
    account = hubspot_account(owner, sandbox)
    (cid,) = seeded_contacts(owner, account, ["cb@example.com"])
    job_id = held_update(owner, account, cid, callback_url=receiver.url)
    receiver.wait(1)
    (event,) = [e for e in receiver.events() if e["type"] == "job.approval_required"]
    approval = event["data"]["approval"]
    assert approval["job_id"] == job_id and approval["preview"]["records"] == 1
    assert "approval_link" not in approval  # the agent set this URL: no means to approve


def test_a_binding_that_differs_applies_nothing(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "binding")
    account = hubspot_account(owner, sandbox)
    (cid,) = seeded_contacts(owner, account, ["bind@example.com"])
    agent = key(owner, scopes=["read", "write"])
    person = key(owner, scopes=["approve"])
    job_id = held_update(agent, account, cid, idempotency_key="k-1")
    wrong = person.post(f"/v1/jobs/{job_id}/approve", {"binding": "0" * 64})
    assert wrong.status_code == 409 and wrong.json()["error"] == "approval_mismatch"
    # the same idempotency key with other arguments names no job and approves nothing
    other = agent.post("/v1/jobs", {"tool": "hubspot.contacts.update", "account_id": account,
                                    "args": {"id": cid, "properties": {"firstname": "Eve"}},
                                    "idempotency_key": "k-1"})  # fmt: skip
    assert other.status_code == 409 and other.json()["error"] == "idempotency_key_reused"
    assert agent.get(f"/v1/jobs/{job_id}").json()["status"] == "awaiting_approval"
    bound = agent.get(f"/v1/jobs/{job_id}").json()["approval"]["binding"]
    assert person.post(f"/v1/jobs/{job_id}/approve", {"binding": bound}).status_code == 200
    assert agent.wait(job_id)["status"] == "succeeded"
    updates = [e for e in effects(sandbox, "hubspot")["effects"]
               if e["object_id"] == cid and e["kind"] == "update"]  # fmt: skip
    assert [u["fields"] for u in updates] == [{"firstname": "Grace"}], updates


def test_the_agents_own_key_cannot_approve_unless_policy_says(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "self")
    account = hubspot_account(owner, sandbox)
    (cid,) = seeded_contacts(owner, account, ["self@example.com"])
    job_id = held_update(owner, account, cid)  # the owner key holds every scope
    refused = owner.post(f"/v1/jobs/{job_id}/approve", {})
    assert refused.status_code == 403 and refused.json()["error"] == "self_approval_refused"
    resp = owner.s.put(f"{owner.url}/v1/policy", json={"self_approve": True}, timeout=5)
    assert resp.status_code == 200, resp.text
    assert owner.post(f"/v1/jobs/{job_id}/approve", {}).status_code == 200
    assert owner.wait(job_id)["status"] == "succeeded"


def test_a_rejected_job_is_cancelled_and_sends_nothing(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "reject")
    account = hubspot_account(owner, sandbox)
    (cid,) = seeded_contacts(owner, account, ["rej@example.com"])
    agent = key(owner, scopes=["read", "write"])
    person = key(owner, scopes=["approve"])
    before = effects(sandbox, "hubspot")["per_object"][cid]
    job_id = held_update(agent, account, cid)
    resp = person.post(f"/v1/jobs/{job_id}/reject", {"reason": "wrong contact"})
    assert resp.status_code == 200, resp.text
    done = agent.wait(job_id)
    assert done["status"] == "cancelled" and done["error"]["code"] == "approval_rejected"
    assert "wrong contact" in done["error"]["message"]
    late = person.post(f"/v1/jobs/{job_id}/approve", {})
    assert late.status_code == 409 and late.json()["error"] == "job_not_awaiting_approval"
    time.sleep(0.5)
    assert effects(sandbox, "hubspot")["per_object"][cid] == before


def test_an_unanswered_approval_expires(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "expiry")
    account = hubspot_account(owner, sandbox)
    (cid,) = seeded_contacts(owner, account, ["exp@example.com"])
    resp = owner.s.put(f"{owner.url}/v1/policy", json={"approval_timeout_s": 2}, timeout=5)
    assert resp.status_code == 200, resp.text
    job_id = held_update(owner, account, cid)
    done = owner.wait(job_id, timeout=30)
    assert done["status"] == "cancelled" and done["error"]["code"] == "approval_expired", done
    person = key(owner, scopes=["approve"])
    late = person.post(f"/v1/jobs/{job_id}/approve", {})
    assert late.status_code == 409
    kinds = [e["kind"] for e in audit_entries(owner) if e.get("job_id") == job_id]
    assert kinds == ["approval_requested", "approval_expired"]
