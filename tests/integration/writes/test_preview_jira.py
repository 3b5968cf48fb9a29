"""Dry runs of Jira's write tools on the real stack: no write reaches Jira, a transition shows
the issue's status as the sandbox holds it beside its target, a comment or transition of a
missing issue (or a transition not offered) is the refusal Jira would answer."""

from __future__ import annotations

from typing import Any

from ledger import connect
from previewing import dry_run, read, write

CREATE = {"project_key": "ENG", "summary": "Printer on fire", "issue_type": "Task"}


def status(sandbox: Any, key: str) -> str:
    return str(read(sandbox, "jira", f"/rest/api/3/issue/{key}")["fields"]["status"]["name"])


def test_every_jira_write_previews_without_writing(api: Any, fresh_sandbox: Any) -> None:
    account = connect(api, fresh_sandbox, "jira")
    key = write(api, account, "jira.issues.create", CREATE)  # stands in "To Do"
    moved = write(api, account, "jira.issues.create", {**CREATE, "summary": "Moved"})
    write(api, account, "jira.issues.transition", {"issue_key": moved, "transition": "21"})
    assert (status(fresh_sandbox, key), status(fresh_sandbox, moved)) == ("To Do", "In Progress")

    def run(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return dry_run(api, fresh_sandbox, "jira", account, f"jira.issues.{tool}", args)

    rec = run("create", CREATE)
    assert rec == {"index": 0, "action": "create", "id": None, "proposed": CREATE}
    for issue_key in (key, "ENG-3"):  # a created issue, a seeded one
        args = {"issue_key": issue_key, "body": "Looks fine"}
        assert run("comment", args) == {"index": 0, "action": "create", "id": None,
                                        "proposed": args}  # fmt: skip
    rec = run("comment", {"issue_key": "ENG-999", "body": "Hi"})
    assert rec["action"] == "reject" and rec["error"]["code"] == "http_404", rec

    cases = [  # (issue, transition, action, current status, target status)
        (key, "In Progress", "update", "To Do", "In Progress"),
        (key, "21", "update", "To Do", "In Progress"),
        (key, "To Do", "unchanged", "To Do", "To Do"),
        (moved, "Done", "update", "In Progress", "Done"),
        (moved, "11", "update", "In Progress", "To Do"),
    ]
    for issue_key, transition, action, current, target in cases:
        rec = run("transition", {"issue_key": issue_key, "transition": transition})
        assert rec["action"] == action and rec["id"] == issue_key, (transition, rec)
        assert rec["current"] == {"status": status(fresh_sandbox, issue_key)} == {"status": current}
        assert rec["proposed"] == {"status": target}
    rec = run("transition", {"issue_key": key, "transition": "Done"})  # To Do offers only 21
    assert rec["action"] == "reject" and rec["error"]["code"] == "transition_not_available"
    rec = run("transition", {"issue_key": "ENG-999", "transition": "Done"})
    assert rec["action"] == "reject" and rec["error"]["code"] == "http_404"
    # nothing moved: the issues stand where the seeding left them
    assert (status(fresh_sandbox, key), status(fresh_sandbox, moved)) == ("To Do", "In Progress")
