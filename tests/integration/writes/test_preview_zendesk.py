"""Dry runs of Zendesk's ticket writes (declared in the spec) on the real stack: no write
reaches Zendesk, an update shows the ticket's fields as the sandbox holds them beside the
proposed ones, a comment or update of a missing ticket is Zendesk's `RecordNotFound`."""

from __future__ import annotations

from typing import Any

from ledger import connect
from previewing import dry_run, read, without, write


def held(sandbox: Any, ticket_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    ticket = read(sandbox, "zendesk", f"/api/v2/tickets/{ticket_id}")["ticket"]
    return {k: ticket.get(k) for k in fields}


def test_every_zendesk_write_previews_without_writing(api: Any, fresh_sandbox: Any) -> None:
    account = connect(api, fresh_sandbox, "zendesk")
    new = {"subject": "Printer on fire", "body": "It smokes.", "priority": "high",
           "tags": ["hardware"]}  # fmt: skip
    made = write(api, account, "zendesk.tickets.create", new)

    def run(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return dry_run(api, fresh_sandbox, "zendesk", account, f"zendesk.tickets.{tool}", args)

    assert run("create", new) == {"index": 0, "action": "create", "id": None, "proposed": new}
    for ticket_id in (int(made), 3):  # a created ticket, a seeded one
        args = {"id": ticket_id, "body": "On it", "public": False}
        assert run("comment", args) == {"index": 0, "action": "create", "id": None,
                                        "proposed": args}  # fmt: skip
    rec = run("comment", {"id": 999_999, "body": "Hi"})
    assert rec["action"] == "reject" and rec["error"]["code"] == "RecordNotFound", rec

    cases = [  # (ticket, fields given, action)
        (int(made), {"status": "solved", "tags": ["hardware", "fire"]}, "update"),
        (int(made), {"subject": "Printer on fire", "priority": "high"}, "unchanged"),
        (3, {"status": "pending", "priority": "urgent", "subject": "Renamed"}, "update"),
    ]
    for ticket_id, fields, action in cases:
        args = {"id": ticket_id, **fields}
        rec = run("update", args)
        assert rec["action"] == action and rec["id"] == str(ticket_id), (fields, rec)
        assert rec["current"] == held(fresh_sandbox, str(ticket_id), fields), rec
        assert rec["proposed"] == without(args, "id")
    rec = run("update", {"id": 999_999, "status": "open"})
    assert rec["action"] == "reject" and rec["id"] == "999999", rec
    assert rec["error"]["code"] == "RecordNotFound"
    assert held(fresh_sandbox, made, {"status": 1}) == {"status": "new"}
