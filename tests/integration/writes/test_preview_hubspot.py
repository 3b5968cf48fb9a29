"""Dry runs of HubSpot's write tools on the real stack: no effect at HubSpot, and each
record's preview says what the sandbox holds (written and seeded contacts) next to what the
write would set. The unified `crm.contacts.upsert` previews as the HubSpot tool it runs as."""

from __future__ import annotations

from typing import Any

from crm_previews import dry_run, write

from sandbox.hubspot import contact

UPSERT = "hubspot.contacts.upsert"
UPDATE = "hubspot.contacts.update"
ARCHIVE = "hubspot.contacts.archive"


def seed(api: Any, account: str) -> dict[str, str]:
    """Two written contacts: their ids by email."""
    recs = [
        {"id": "ada@example.com", "properties": {"firstname": "Ada", "city": "Paris"}},
        {"id": "bob@example.com", "properties": {"firstname": "Bob", "lastname": "Byte"}},
    ]
    results = write(api, UPSERT, account, {"records": recs})
    return {r["id"]: res["id"] for r, res in zip(recs, results, strict=True)}


def test_upsert_previews_found_contacts_as_diffs_and_the_rest_as_creates(
    api: Any, fresh_sandbox: Any
) -> None:
    account = api.account(fresh_sandbox)
    ids = seed(api, account)
    seeded = contact(3)["properties"]
    args = {
        "records": [
            {"id": "ada@example.com", "properties": {"firstname": "Ada", "city": "Rome"}},
            {"id": "bob@example.com", "properties": {"lastname": "Byte"}},
            {"id": "new@example.com", "properties": {"firstname": "Nu"}},
            {"id": seeded["email"], "properties": {"lastname": "Renamed"}},
        ]
    }
    rows = dry_run(api, fresh_sandbox, "hubspot", UPSERT, account, args)
    assert rows[0] == {
        "index": 0, "action": "update", "id": ids["ada@example.com"],
        "current": {"firstname": "Ada", "city": "Paris"},
        "proposed": {"firstname": "Ada", "city": "Rome"}, "changed": ["city"],
    }  # fmt: skip
    assert (rows[1]["action"], rows[1]["id"], rows[1]["changed"]) == (
        "unchanged", ids["bob@example.com"], []
    )  # fmt: skip
    assert rows[2] == {
        "index": 2, "action": "create", "id": None,
        "proposed": {"firstname": "Nu", "email": "new@example.com"},
    }  # fmt: skip
    assert rows[3]["action"] == "update" and rows[3]["id"] == "3"
    assert rows[3]["current"] == {"lastname": seeded["lastname"]}
    assert rows[3]["proposed"] == {"lastname": "Renamed"}
    reads = [e for e in fresh_sandbox.requests() if e["path"].endswith("/batch/read")]
    assert len(reads) == 1  # one batch read for the operation, not one per record


def test_update_previews_current_values_or_the_404(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    ids = seed(api, account)
    ada = ids["ada@example.com"]
    (row,) = dry_run(api, fresh_sandbox, "hubspot", UPDATE, account,
                     {"id": ada, "properties": {"city": "Oslo", "firstname": "Ada"}})  # fmt: skip
    assert row == {
        "index": 0, "action": "update", "id": ada,
        "current": {"city": "Paris", "firstname": "Ada"},
        "proposed": {"city": "Oslo", "firstname": "Ada"}, "changed": ["city"],
    }  # fmt: skip
    phone = {"phone": contact(5)["properties"]["phone"]}  # a seeded contact's own value
    (same,) = dry_run(api, fresh_sandbox, "hubspot", UPDATE, account,
                      {"id": "5", "properties": phone})  # fmt: skip
    assert same["action"] == "unchanged" and same["current"] == same["proposed"]
    (gone,) = dry_run(api, fresh_sandbox, "hubspot", UPDATE, account,
                      {"id": "99999999", "properties": {"city": "Oslo"}})  # fmt: skip
    assert gone["action"] == "reject" and gone["id"] == "99999999"
    assert gone["error"]["code"] == "OBJECT_NOT_FOUND"


def test_archive_previews_the_contact_or_a_no_op(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    ids = seed(api, account)
    bob = ids["bob@example.com"]
    (row,) = dry_run(api, fresh_sandbox, "hubspot", ARCHIVE, account, {"id": bob})
    assert row == {
        "index": 0, "action": "delete", "id": bob,
        "current": {"email": "bob@example.com", "firstname": "Bob", "lastname": "Byte"},
    }  # fmt: skip
    write(api, ARCHIVE, account, {"id": bob})
    (again,) = dry_run(api, fresh_sandbox, "hubspot", ARCHIVE, account, {"id": bob})
    assert again == {"index": 0, "action": "unchanged", "id": bob}  # HubSpot's 204 no-op


def test_unified_crm_upsert_previews_as_the_hubspot_tool(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    ids = seed(api, account)
    unified = {"records": [{"email": "ada@example.com", "first_name": "Ada", "last_name": "L"},
                           {"email": "new@example.com", "first_name": "Nu"}]}  # fmt: skip
    rows = dry_run(api, fresh_sandbox, "hubspot", "crm.contacts.upsert", account, unified)
    native = {
        "records": [
            {"id": "ada@example.com", "properties": {"firstname": "Ada", "lastname": "L"}},
            {"id": "new@example.com", "properties": {"firstname": "Nu"}},
        ]
    }
    assert rows == dry_run(api, fresh_sandbox, "hubspot", UPSERT, account, native)
    assert [(r["action"], r["id"]) for r in rows] == [
        ("update", ids["ada@example.com"]), ("create", None)
    ]  # fmt: skip
