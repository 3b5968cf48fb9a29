"""Dry runs of GitHub's issue writes on the real stack: no write reaches GitHub, an update
shows the issue's title/body/state/labels as the sandbox holds them beside the values given,
a missing repository or issue is the 404 GitHub would answer."""

from __future__ import annotations

from typing import Any

from ledger import connect
from previewing import dry_run, read, without, write

REPO = {"owner": "acme", "repo": "widgets"}
KEYS = ("owner", "repo", "issue_number")


def held(sandbox: Any, number: int, fields: dict[str, Any]) -> dict[str, Any]:
    """The sandbox's issue, its label names, cut to `fields`."""
    issue = read(sandbox, "github", f"/repos/acme/widgets/issues/{number}")
    issue["labels"] = [x["name"] for x in issue["labels"]]
    return {k: issue[k] for k in fields}


def test_every_github_write_previews_without_writing(api: Any, fresh_sandbox: Any) -> None:
    account = connect(api, fresh_sandbox, "github")
    new = {**REPO, "title": "Printer on fire", "body": "It smokes.", "labels": ["bug"]}
    number = int(write(api, account, "github.issues.create", new))

    def run(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return dry_run(api, fresh_sandbox, "github", account, f"github.issues.{tool}", args)

    assert run("create", new) == {"index": 0, "action": "create", "id": None, "proposed": new}
    rec = run("create", {**new, "owner": "missing"})
    assert rec["action"] == "reject" and rec["error"]["code"] == "http_404", rec
    for n in (number, 3):  # a created issue, a seeded one
        args = {**REPO, "issue_number": n, "body": "Same here"}
        assert run("comment", args) == {"index": 0, "action": "create", "id": None,
                                        "proposed": args}  # fmt: skip
    rec = run("comment", {**REPO, "issue_number": 9999, "body": "Hi"})
    assert rec["action"] == "reject" and rec["error"]["code"] == "http_404", rec

    cases = [  # (issue, fields given, action)
        (number, {"title": "Printer fixed", "state": "closed", "labels": ["bug", "p1"]}, "update"),
        (number, {"title": "Printer on fire", "labels": ["bug"]}, "unchanged"),
        (3, {"body": "Rewritten", "state": "open"}, "update"),
    ]
    for n, fields, action in cases:
        args = {**REPO, "issue_number": n, **fields}
        rec = run("update", args)
        assert rec["action"] == action and rec["id"] == str(n), (fields, rec)
        assert rec["current"] == held(fresh_sandbox, n, fields), rec
        assert rec["proposed"] == without(args, *KEYS)
    rec = run("update", {**REPO, "issue_number": 9999, "title": "x"})
    assert rec["action"] == "reject" and rec["error"]["code"] == "http_404", rec
    assert held(fresh_sandbox, number, {"title": 1, "state": 1}) == {
        "title": "Printer on fire", "state": "open"}  # fmt: skip
