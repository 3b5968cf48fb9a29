"""Dry runs of Salesforce's write tools on the real stack: no effect at Salesforce (and no
ingest job for a Bulk-sized upsert), each record's preview holding what the sandbox's record
holds (looked up by External ID, or read by id) next to what the write would set."""

from __future__ import annotations

from typing import Any

from crm_previews import dry_run, write

EXT = "Ext_Id__c"
UPSERT = "salesforce.records.upsert"
UPDATE = "salesforce.records.update"
DELETE = "salesforce.records.delete"
UNKNOWN = "003RO9999999999AAA"  # well-formed, never written


def seed(api: Any, account: str) -> dict[str, str]:
    """Three written contacts (the last one deleted again): their ids by external id."""
    recs = [
        {EXT: "ada", "LastName": "Lovelace", "Email": "ada@example.com", "Phone": "1"},
        {EXT: "o'hara", "LastName": "O'Hara"},
        {EXT: "gone", "LastName": "Gone"},
    ]
    args = {"sobject": "Contact", "external_id_field": EXT, "records": recs}
    results = write(api, UPSERT, account, args)
    ids = {r[EXT]: res["id"] for r, res in zip(recs, results, strict=True)}
    write(api, DELETE, account, {"sobject": "Contact", "id": ids["gone"]})
    return ids


def upsert_args(**extra: Any) -> dict[str, Any]:
    recs = [
        {EXT: "ada", "LastName": "Lovelace", "Email": "countess@example.com"},
        {EXT: "o'hara", "LastName": "O'Hara"},
        {EXT: "gone", "LastName": "Back"},  # a deleted record is not found: created anew
        {EXT: "new", "LastName": "New", "Phone": None},
    ]
    return {"sobject": "Contact", "external_id_field": EXT, "records": recs, **extra}


def test_upsert_previews_by_external_id_on_both_paths(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox, "salesforce")
    ids = seed(api, account)
    for extra in ({}, {"bulk_threshold": 1}):  # sObject Collections, then Bulk API ingest
        rows = dry_run(api, fresh_sandbox, "salesforce", UPSERT, account, upsert_args(**extra))
        assert rows[0] == {
            "index": 0, "action": "update", "id": ids["ada"],
            "current": {EXT: "ada", "LastName": "Lovelace", "Email": "ada@example.com"},
            "proposed": {EXT: "ada", "LastName": "Lovelace", "Email": "countess@example.com"},
            "changed": ["Email"],
        }  # fmt: skip
        assert (rows[1]["action"], rows[1]["id"]) == ("unchanged", ids["o'hara"])
        assert [(r["action"], r["id"]) for r in rows[2:]] == [("create", None)] * 2
        assert rows[3]["proposed"] == {EXT: "new", "LastName": "New", "Phone": None}
    log = fresh_sandbox.requests("salesforce")
    assert not [e for e in log if "/jobs/ingest" in e["path"]]  # no ingest job, not even open
    lookups = [e for e in log if e["method"] == "GET" and e["path"].endswith("/query")]
    assert len(lookups) == 2  # one query per operation


def test_update_previews_the_record_or_its_404(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox, "salesforce")
    ids = seed(api, account)
    args = {
        "sobject": "Contact",
        "id": ids["ada"],
        "fields": {"Phone": "2", "LastName": "Lovelace"},
    }
    (row,) = dry_run(api, fresh_sandbox, "salesforce", UPDATE, account, args)
    assert row == {
        "index": 0, "action": "update", "id": ids["ada"],
        "current": {"Phone": "1", "LastName": "Lovelace"},
        "proposed": {"Phone": "2", "LastName": "Lovelace"}, "changed": ["Phone"],
    }  # fmt: skip
    for rid, code in ((ids["gone"], "ENTITY_IS_DELETED"), (UNKNOWN, "NOT_FOUND")):
        (refused,) = dry_run(api, fresh_sandbox, "salesforce", UPDATE, account,
                             {**args, "id": rid})  # fmt: skip
        assert (refused["action"], refused["id"], refused["error"]["code"]) == ("reject", rid, code)
    (bad,) = dry_run(api, fresh_sandbox, "salesforce", UPDATE, account,
                     {**args, "fields": {"Nope": 1}})  # fmt: skip
    assert bad["action"] == "reject" and bad["error"]["code"] == "INVALID_FIELD"


def test_delete_previews_which_record_or_its_404(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox, "salesforce")
    ids = seed(api, account)
    (row,) = dry_run(api, fresh_sandbox, "salesforce", DELETE, account,
                     {"sobject": "Contact", "id": ids["ada"]})  # fmt: skip
    assert row == {
        "index": 0, "action": "delete", "id": ids["ada"],
        "current": {"LastName": "Lovelace", "Email": "ada@example.com"},
    }  # fmt: skip
    (gone,) = dry_run(api, fresh_sandbox, "salesforce", DELETE, account,
                      {"sobject": "Contact", "id": ids["gone"]})  # fmt: skip
    assert gone["action"] == "reject" and gone["error"]["code"] == "ENTITY_IS_DELETED"
