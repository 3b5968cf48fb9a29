"""Salesforce writes on the real stack: upsert through sObject Collections (200 per request,
partial rejections), through Bulk API 2.0 ingest above the threshold (the job waits for the
vendor without a worker), update and delete, and answers lost after Salesforce committed."""

from __future__ import annotations

from typing import Any

import requests
from ledger import effects

TOOL = "salesforce.records.upsert"
EXT = "Ext_Id__c"




def processing(sandbox: Any, ms: int) -> None:
    url = f"{sandbox.url}/salesforce/_sandbox/ingest"
    requests.post(url, json={"processing_ms": ms}, timeout=5).raise_for_status()


def contacts(n: int, tag: str) -> list[dict[str, Any]]:
    return [{EXT: f"{tag}-{i}", "LastName": f"L{i}", "FirstName": f"F{i}"} for i in range(n)]


def upsert(api: Any, account: str, recs: list[dict[str, Any]], **extra: Any) -> str:
    args = {"sobject": "Contact", "external_id_field": EXT, "records": recs, **extra}
    return str(api.call(TOOL, account_id=account, args=args)["job_id"])


def calls(sandbox: Any, method: str, tail: str) -> list[dict[str, Any]]:
    log = sandbox.requests("salesforce")
    return [e for e in log if e["method"] == method and e["path"].endswith(tail)]


def creates(sandbox: Any) -> dict[str, int]:
    return {oid: c["create"] for oid, c in effects(sandbox, "salesforce")["per_object"].items()}


def test_collections_in_requests_of_200_create_then_update(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox, "salesforce")
    recs = contacts(250, "coll")
    job = upsert(api, account, recs)
    done = api.wait(job)
    assert done["status"] == "succeeded", (done["error"], done["history"])
    results = api.records(job)
    assert [r["index"] for r in results] == list(range(250))
    assert {r["status"] for r in results} == {"created"}
    ids = [r["id"] for r in results]
    assert len(set(ids)) == 250 and all(i.startswith("003") for i in ids)
    assert len(calls(fresh_sandbox, "PATCH", f"/composite/sobjects/Contact/{EXT}")) == 2

    again = upsert(api, account, recs[:5])
    assert api.wait(again)["status"] == "succeeded"
    assert [(r["status"], r["id"]) for r in api.records(again)] == [("updated", i) for i in ids[:5]]


def test_records_salesforce_rejects_are_reported_with_the_reason(
    api: Any, fresh_sandbox: Any
) -> None:
    account = api.account(fresh_sandbox, "salesforce")
    recs = contacts(10, "part")
    recs[2]["Colour"] = "red"
    recs[6]["Shoe_Size"] = 9
    done = api.wait(job := upsert(api, account, recs))
    assert done["status"] == "completed_with_errors", done
    assert done["error"]["code"] == "some_rejected"
    assert "2 of 10 records rejected" in done["error"]["message"]
    results = {r["index"]: r for r in api.records(job)}
    assert results[2]["status"] == "rejected"
    assert results[2]["error"] == {
        "code": "INVALID_FIELD",
        "message": "No such column 'Colour' on sobject of type Contact",
        "fields": ["Colour"],
    }
    assert results[6]["error"]["code"] == "INVALID_FIELD"
    assert sum(r["status"] == "created" for r in results.values()) == 8
    assert sorted(creates(fresh_sandbox)) == sorted(r["id"] for r in results.values() if r["id"])


def test_collection_answer_lost_after_commit_is_resent_by_external_id(
    api: Any, fresh_sandbox: Any
) -> None:
    account = api.account(fresh_sandbox, "salesforce")
    fresh_sandbox.config(drop_after_commit_next=1)
    done = api.wait(job := upsert(api, account, contacts(3, "drop")))
    assert done["status"] == "succeeded", (done["error"], done["history"])
    results = api.records(job)
    assert creates(fresh_sandbox) == {r["id"]: 1 for r in results}
    assert api.result(job)["writes"]["reconciled"] == 1
    assert len(calls(fresh_sandbox, "PATCH", f"/composite/sobjects/Contact/{EXT}")) == 2


def test_above_the_threshold_bulk_ingest_maps_successful_and_failed_rows(
    api: Any, fresh_sandbox: Any
) -> None:
    processing(fresh_sandbox, 300)
    account = api.account(fresh_sandbox, "salesforce")
    recs = contacts(30, "bulk")
    del recs[4]["LastName"]  # a new Contact needs it: a failed row
    recs[9]["Phone"] = None  # `#N/A`, a null
    done = api.wait(job := upsert(api, account, recs, bulk_threshold=10))
    assert done["status"] == "completed_with_errors", (done["error"], done["history"])
    assert any(h.get("status") == "waiting_vendor" for h in done["history"]), done["history"]
    results = api.records(job)
    assert [r["index"] for r in results] == list(range(30))
    assert results[4]["status"] == "rejected"
    assert results[4]["error"]["code"] == "REQUIRED_FIELD_MISSING"
    assert results[4]["error"]["fields"] == ["LastName"]
    ok = [r for r in results if r["index"] != 4]
    assert {r["status"] for r in ok} == {"created"}
    assert creates(fresh_sandbox) == {r["id"]: 1 for r in ok}
    assert len(calls(fresh_sandbox, "POST", "/jobs/ingest")) == 1  # polled, never re-created
    assert not calls(fresh_sandbox, "PATCH", f"/composite/sobjects/Contact/{EXT}")


def test_bulk_upload_answer_lost_creates_each_record_once(api: Any, fresh_sandbox: Any) -> None:
    processing(fresh_sandbox, 200)
    account = api.account(fresh_sandbox, "salesforce")
    fresh_sandbox.config(drop_after_commit_next=1)  # the CSV upload: kept, its answer cut
    done = api.wait(job := upsert(api, account, contacts(12, "bdrop"), bulk_threshold=5))
    assert done["status"] == "succeeded", (done["error"], done["history"])
    results = api.records(job)
    assert creates(fresh_sandbox) == {r["id"]: 1 for r in results}
    assert len({r["id"] for r in results}) == 12
    assert api.result(job)["writes"]["reconciled"] == 1


def test_update_and_delete_by_id(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox, "salesforce")
    api.wait(job := upsert(api, account, contacts(1, "one")))
    (created,) = api.records(job)
    rid = created["id"]
    upd = api.call(
        "salesforce.records.update",
        account_id=account,
        args={"sobject": "Contact", "id": rid, "fields": {"FirstName": "Grace"}},
    )
    assert api.wait(upd["job_id"])["status"] == "succeeded"
    assert api.records(upd["job_id"]) == [{"index": 0, "status": "updated", "id": rid}]
    bad = api.call(
        "salesforce.records.update",
        account_id=account,
        args={"sobject": "Contact", "id": rid, "fields": {"Colour": "red"}},
    )
    done = api.wait(bad["job_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected"
    (refused,) = api.records(bad["job_id"])
    assert refused["error"]["code"] == "INVALID_FIELD" and refused["error"]["status"] == 400
    gone = api.call(
        "salesforce.records.delete", account_id=account, args={"sobject": "Contact", "id": rid}
    )
    assert api.wait(gone["job_id"])["status"] == "succeeded"
    assert api.records(gone["job_id"]) == [{"index": 0, "status": "deleted", "id": rid}]
    twice = api.call(
        "salesforce.records.delete", account_id=account, args={"sobject": "Contact", "id": rid}
    )
    assert api.wait(twice["job_id"])["status"] == "failed"  # a new job: the record was gone
    assert api.records(twice["job_id"])[0]["error"]["code"] == "ENTITY_IS_DELETED"
    ledger = effects(fresh_sandbox, "salesforce")["effects"]
    kinds = [e["kind"] for e in ledger if e["object_id"] == rid]
    assert kinds == ["create", "update", "delete"]


def test_update_and_delete_answers_lost_after_commit(api: Any, fresh_sandbox: Any) -> None:
    """One effect each: the update is resent (absolute values: a noop), the delete's lookup
    deletes again and reads Salesforce's ENTITY_IS_DELETED as done."""
    account = api.account(fresh_sandbox, "salesforce")
    api.wait(job := upsert(api, account, contacts(1, "lost")))
    rid = api.records(job)[0]["id"]
    for tool, args, kind in (
        ("salesforce.records.update", {"fields": {"FirstName": "Lost"}}, "update"),
        ("salesforce.records.delete", {}, "delete"),
    ):
        fresh_sandbox.config(drop_after_commit_next=1)
        call = api.call(tool, account_id=account, args={"sobject": "Contact", "id": rid, **args})
        done = api.wait(call["job_id"])
        assert done["status"] == "succeeded", (tool, done["error"], done["history"])
        assert api.records(call["job_id"])[0]["id"] == rid
        ledger = effects(fresh_sandbox, "salesforce")["effects"]
        kinds = [e["kind"] for e in ledger if e["object_id"] == rid]
        assert kinds.count(kind) == 1, kinds
        assert done["writes"]["reconciled"] == 1, (tool, done["writes"])
