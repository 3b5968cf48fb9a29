"""A pipeline whose sink the policy holds (the default: upserts overwrite, `destructive:
approve`) is approved once, by a person, not per block: its source and stages run, the sink's
blocks queue with a preview of what it would write, nothing is sent before the approval, and
every sink job then carries it (the audit log says who approved which pipeline). A rejection
cancels the pipeline with nothing written."""

from __future__ import annotations

import time
from typing import Any

from consentkit import audit_entries, consent_tenant, key
from pipelinekit import definition, sf_effects, stage, start, view, wait
from support import wait_until


def held(api: Any, fresh_sandbox: Any) -> tuple[Any, str]:
    owner = consent_tenant(api, "pipeline-consent")
    src = owner.account(fresh_sandbox, "hubspot")
    dst = owner.account(fresh_sandbox, "salesforce")
    pid = start(owner, definition(src, dst))
    wait_until(lambda: view(owner, pid)["stages"][0]["state"] == "done", 60, 0.2)
    return owner, pid


def test_a_held_pipeline_reads_then_writes_only_after_one_approval(
    api: Any, fresh_sandbox: Any
) -> None:
    owner, pid = held(api, fresh_sandbox)

    def queued() -> dict[str, Any] | None:
        v = view(owner, pid)
        return v if stage(v, "sink")["queued_blocks"] else None

    waiting = wait_until(queued, 30, 0.2)
    assert waiting["status"] == "running"
    assert waiting["approval"]["state"] == "required"
    assert "destructive: approve" in waiting["approval"]["reason"]
    assert stage(waiting, "sink")["state"] == "awaiting_approval"
    time.sleep(1)
    assert sf_effects(fresh_sandbox)["count"] == 0  # nothing written before the approval
    preview = owner.get(f"/v1/pipelines/{pid}/preview", params={"limit": 5}).json()
    assert len(preview["records"]) == 5 and preview["queued_records"] == 1000
    assert set(preview["records"][0]) == {"Email", "External_Id__c", "LastName"}

    binding = waiting["approval"]["binding"]
    own = owner.post(f"/v1/pipelines/{pid}/approve", {"binding": binding})
    assert own.status_code == 403 and own.json()["error"] in (
        "scope_missing",
        "self_approval_refused",
    )
    person = key(owner, scopes=["approve"])
    wrong = person.post(f"/v1/pipelines/{pid}/approve", {"binding": "0" * 64})
    assert wrong.status_code == 409 and wrong.json()["error"] == "approval_mismatch"
    ok = person.post(f"/v1/pipelines/{pid}/approve", {"binding": binding, "reason": "looks right"})
    assert ok.status_code == 200, ok.text
    done = wait(owner, pid)
    assert done["status"] == "succeeded", done
    assert done["approval"]["state"] == "approved"
    assert done["approval"]["decided_by"] == person.tenant["key_id"]
    per_object = sf_effects(fresh_sandbox)["per_object"]
    assert len(per_object) == 1000 and all(c["create"] == 1 for c in per_object.values())
    sink_job = owner.get(f"/v1/jobs/{stage(done, 'sink')['job_id']}").json()
    assert sink_job["approval"]["state"] == "approved"
    entries = audit_entries(owner)
    approved = [e for e in entries if e["kind"] == "pipeline_approved"]
    assert [e["pipeline_id"] for e in approved] == [pid]
    writes = [
        e for e in entries if e["kind"] == "write" and e["tool"] == "salesforce.records.upsert"
    ]
    assert writes and {e["approved_by"] for e in writes} == {person.tenant["key_id"]}
    again = person.post(f"/v1/pipelines/{pid}/approve", {"binding": binding})
    assert again.status_code == 409


def test_a_rejected_pipeline_is_cancelled_with_nothing_written(
    api: Any, fresh_sandbox: Any
) -> None:
    owner, pid = held(api, fresh_sandbox)
    person = key(owner, scopes=["approve"])
    resp = person.post(f"/v1/pipelines/{pid}/reject", {"reason": "wrong sobject"})
    assert resp.status_code == 200, resp.text
    done = wait(owner, pid)
    assert done["status"] == "cancelled" and done["error"]["code"] == "approval_rejected"
    assert done["approval"]["state"] == "rejected"
    time.sleep(1)
    assert sf_effects(fresh_sandbox)["count"] == 0
    assert any(e["kind"] == "pipeline_rejected" for e in audit_entries(owner))


def test_an_allowed_sink_needs_no_approval(api: Any, fresh_sandbox: Any) -> None:
    """The suite's tenant allows destructive writes: no approval, the pipeline just runs."""
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    resp = api.post("/v1/pipelines", definition(src, dst))
    assert resp.status_code == 202 and "approval" not in resp.json()
    done = wait(api, resp.json()["pipeline_id"])
    assert done["status"] == "succeeded" and "approval" not in done
