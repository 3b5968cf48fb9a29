"""HubSpot writes on the real stack: batch upsert (200, 207), update, archive, and an upsert
whose answer is lost after HubSpot committed it (resent by its natural key: one effect)."""

from __future__ import annotations

from typing import Any

from ledger import effects

TOOL = "hubspot.contacts.upsert"




def records(n: int, tag: str, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"id": f"{tag}-{i}@example.com", "properties": {"firstname": f"F{i}"}}
        for i in range(start, start + n)
    ]


def test_upsert_in_batches_creates_then_updates(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    recs = records(250, "batch")
    job = api.call(TOOL, account_id=account, args={"records": recs})
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", (done["error"], done["history"])
    results = api.records(job["job_id"])
    assert [r["index"] for r in results] == list(range(250))
    assert {r["status"] for r in results} == {"created"}
    ids = [r["id"] for r in results]
    assert len(set(ids)) == 250
    calls = [e for e in fresh_sandbox.requests() if e["path"].endswith("/batch/upsert")]
    assert len(calls) == 3  # 100 + 100 + 50

    again = api.call(TOOL, account_id=account, args={"records": recs[:5]})
    assert api.wait(again["job_id"])["status"] == "succeeded"
    second = api.records(again["job_id"])
    assert [(r["status"], r["id"]) for r in second] == [("updated", i) for i in ids[:5]]
    summary = api.result(again["job_id"])["writes"]
    assert summary["updated"] == 5 and summary["created"] == 0 and summary["records"] == 5


def test_partial_rejection_completes_the_rest_and_says_so(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    recs = records(10, "partial")
    recs[3] = {"id": "not-an-email", "properties": {}}
    recs[7]["properties"] = {"no_such_property": "x"}
    job = api.call(TOOL, account_id=account, args={"records": recs})
    done = api.wait(job["job_id"])
    assert done["status"] == "completed_with_errors", done
    assert done["error"]["code"] == "some_rejected"
    assert "2 of 10 records rejected" in done["error"]["message"]
    results = {r["index"]: r for r in api.records(job["job_id"])}
    assert results[3]["status"] == "rejected" and "invalid" in results[3]["error"]["message"]
    assert results[7]["status"] == "rejected"
    assert "no_such_property" in results[7]["error"]["message"]
    assert sum(r["status"] == "created" for r in results.values()) == 8
    assert sorted(effects(fresh_sandbox, "hubspot")["per_object"]) == sorted(
        r["id"] for r in results.values() if r["id"]
    )


def test_every_record_rejected_fails_the_job(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    job = api.call(TOOL, account_id=account, args={"records": [{"id": "bad", "properties": {}}]})
    done = api.wait(job["job_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected", done


def test_answer_lost_after_commit_is_resent_by_natural_key(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    fresh_sandbox.config(drop_after_commit_next=1)
    job = api.call(TOOL, account_id=account, args={"records": records(3, "dropped")})
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", (done["error"], done["history"])
    results = api.records(job["job_id"])
    ledger = effects(fresh_sandbox, "hubspot")
    # the first attempt created the three; the resend found them: no second create
    assert {oid: c["create"] for oid, c in ledger["per_object"].items()} == {
        r["id"]: 1 for r in results
    }
    assert api.result(job["job_id"])["writes"]["reconciled"] == 1
    calls = [e for e in fresh_sandbox.requests() if e["path"].endswith("/batch/upsert")]
    assert len(calls) == 2


def test_update_and_archive(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    job = api.call("hubspot.contacts.update", account_id=account,
                   args={"id": "7", "properties": {"firstname": "Seven"}})
    assert api.wait(job["job_id"])["status"] == "succeeded"
    assert api.records(job["job_id"]) == [{"index": 0, "status": "updated", "id": "7"}]
    gone = api.call("hubspot.contacts.update", account_id=account,
                    args={"id": "99999999", "properties": {"firstname": "X"}})
    done = api.wait(gone["job_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected"
    (missing,) = api.records(gone["job_id"])
    assert missing["error"]["status"] == 404
    arch = api.call("hubspot.contacts.archive", account_id=account, args={"id": "7"})
    assert api.wait(arch["job_id"])["status"] == "succeeded"
    assert api.records(arch["job_id"]) == [{"index": 0, "status": "deleted", "id": "7"}]
    ledger = effects(fresh_sandbox, "hubspot")["effects"]
    kinds = [e["kind"] for e in ledger if e["object_id"] == "7"]
    assert kinds == ["update", "delete"]


def test_write_options_and_reused_key(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    args = {"records": records(1, "key")}
    bad = api.post("/v1/jobs", {"tool": TOOL, "account_id": account, "args": args,
                                "fields": ["id"]})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_option"
    dup = api.post("/v1/jobs", {"tool": TOOL, "account_id": account,
                                "args": {"records": [{"id": "a@b.co"}, {"id": "A@b.co"}]}})
    assert dup.status_code == 422 and dup.json()["error"] == "invalid_args"
    assert "same id" in dup.json()["message"]
    first = api.call(TOOL, account_id=account, args=args, idempotency_key="k-1")
    same = api.call(TOOL, account_id=account, args=args, idempotency_key="k-1")
    assert same["job_id"] == first["job_id"] and same["idempotent_replay"]
    other = api.post("/v1/jobs", {"tool": TOOL, "account_id": account, "idempotency_key": "k-1",
                                  "args": {"records": records(1, "other")}})
    assert other.status_code == 409, other.text
    assert other.json()["error"] == "idempotency_key_reused"
    assert other.json()["job_id"] == first["job_id"]
    assert api.get(f"/v1/jobs/{first['job_id']}").json()["delivery"] == "blocks"


def test_archive_whose_204_is_lost_is_sent_again_harmlessly(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    fresh_sandbox.config(drop_after_commit_next=1)
    job = api.call("hubspot.contacts.archive", account_id=account, args={"id": "8"})
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded" and done["writes"]["reconciled"] == 1, done
    assert api.records(job["job_id"]) == [{"index": 0, "status": "deleted", "id": "8"}]
    deletes = [e for e in effects(fresh_sandbox, "hubspot")["effects"] if e["object_id"] == "8"]
    assert [e["kind"] for e in deletes] == ["delete"]
    sent = [e for e in fresh_sandbox.requests() if e["path"].endswith("/contacts/8")]
    assert [e["method"] for e in sent] == ["DELETE", "DELETE"]
