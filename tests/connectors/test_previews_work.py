"""Previews of the Jira, GitHub, Slack, Stripe and Zendesk write tools alone (no wire): what
each asks (reads only, one or two GETs) and how it reads the answers into create, update,
unchanged or reject."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeHttp

import connectors
from connectors import github_writes, jira_writes, slack_writes
from connectors.base import Tool
from connectors.errors import VendorError
from connectors.specs import SpecError, load_file
from connectors.writes import Operation, PreviewItem


def preview(tool: Tool, http: FakeHttp, args: dict[str, Any]) -> list[dict[str, Any]]:
    assert tool.write is not None
    op = Operation(0, ((0, tool.args.model_validate(args)),), "job-1.0")
    items = tool.write.preview(http, op)
    assert all(isinstance(x, PreviewItem) for x in items)
    assert all(s.method == "GET" for s in http.sent), http.sent  # reads only
    return [x.record() for x in items]


def not_found(code: str = "http_404", message: str = "Not Found") -> VendorError:
    return VendorError(code, message, status=404)


@pytest.fixture(scope="module")
def tools() -> dict[str, Tool]:
    return connectors.load().tools


# ---- Jira ---------------------------------------------------------------------------------


def test_jira_comment_reads_its_issue_and_a_missing_one_is_the_refusal() -> None:
    args = {"issue_key": "ENG-3", "body": "Hi"}
    http = FakeHttp({"id": "10003", "key": "ENG-3", "fields": {"summary": "s"}})
    assert preview(jira_writes.comment, http, args) == [
        {"index": 0, "action": "create", "id": None, "proposed": args}
    ]
    assert http.sent[0].path == "/rest/api/3/issue/ENG-3"
    gone = FakeHttp(not_found(message="Issue does not exist"))
    (rec,) = preview(jira_writes.comment, gone, {**args, "issue_key": "ENG-999"})
    assert rec["action"] == "reject" and rec["id"] == "ENG-999"
    assert rec["error"] == {"code": "http_404", "message": "Issue does not exist"}


def _status(name: str) -> dict[str, Any]:
    return {"key": "ENG-21", "fields": {"status": {"name": name}}}


def _offers(*moves: tuple[str, str]) -> dict[str, Any]:
    return {"transitions": [{"id": i, "to": {"name": to}} for i, to in moves]}


@pytest.mark.parametrize(
    ("wanted", "status", "offered", "action", "target"),
    [
        ("Done", "In Progress", [("11", "To Do"), ("31", "Done")], "update", "Done"),
        ("31", "In Progress", [("11", "To Do"), ("31", "Done")], "update", "Done"),
        ("done", "Done", [("11", "To Do")], "unchanged", "Done"),  # already there
        ("Done", "To Do", [("21", "In Progress")], "reject", None),  # not offered from here
        ("31", "To Do", [("21", "In Progress")], "reject", None),
    ],
)
def test_jira_transition_is_current_status_against_target(
    wanted: str, status: str, offered: list[tuple[str, str]], action: str, target: str | None
) -> None:
    http = FakeHttp(_status(status), _offers(*offered))
    (rec,) = preview(jira_writes.transition, http, {"issue_key": "ENG-21", "transition": wanted})
    assert [s.path for s in http.sent] == [
        "/rest/api/3/issue/ENG-21",
        "/rest/api/3/issue/ENG-21/transitions",
    ]
    assert http.sent[0].kwargs["params"] == {"fields": "status"}
    assert rec["action"] == action and rec["id"] == "ENG-21"
    if target is None:
        assert rec["error"]["code"] == "transition_not_available"
        assert "available:" in rec["error"]["message"]
    else:
        assert rec["current"] == {"status": status} and rec["proposed"] == {"status": target}


def test_jira_transition_of_a_missing_issue_is_rejected_and_other_errors_raise() -> None:
    http = FakeHttp(not_found())
    args = {"issue_key": "ENG-999", "transition": "Done"}
    (rec,) = preview(jira_writes.transition, http, args)
    assert rec["action"] == "reject" and rec["error"]["code"] == "http_404"
    with pytest.raises(VendorError):
        preview(jira_writes.transition, FakeHttp(VendorError("http_403", "no", status=403)), args)


# ---- GitHub -------------------------------------------------------------------------------

REPO = {"owner": "acme", "repo": "app"}


def _label(name: str) -> dict[str, Any]:
    return {"id": 1, "name": name, "color": "ededed"}


def test_github_update_diffs_title_body_state_and_labels_of_one_get() -> None:
    issue = {"number": 7, "title": "Old", "body": "b", "state": "open",
             "labels": [_label("bug"), _label("p1")]}  # fmt: skip
    args = {**REPO, "issue_number": 7, "title": "New", "state": "closed", "labels": ["p1", "bug"]}
    http = FakeHttp(issue)
    (rec,) = preview(github_writes.update, http, args)
    assert [s.path for s in http.sent] == ["/repos/acme/app/issues/7"]
    assert rec["action"] == "update" and rec["id"] == "7"
    # only the fields given; the same label set in another order is no change
    assert rec["current"] == {"title": "Old", "state": "open", "labels": ["p1", "bug"]}
    assert rec["proposed"] == {"title": "New", "state": "closed", "labels": ["p1", "bug"]}
    assert rec["changed"] == ["state", "title"]
    same = {**REPO, "issue_number": 7, "body": "b", "labels": ["bug"]}
    (rec,) = preview(github_writes.update, FakeHttp(issue), same)
    assert rec["action"] == "update" and rec["current"]["labels"] == ["bug", "p1"]
    (rec,) = preview(github_writes.update, FakeHttp(issue), {**same, "labels": ["p1", "bug"]})
    assert rec["action"] == "unchanged"


def test_github_update_of_a_missing_or_deleted_issue_is_rejected() -> None:
    for status in (404, 410):
        http = FakeHttp(VendorError(f"http_{status}", "Not Found", status=status))
        (rec,) = preview(github_writes.update, http, {**REPO, "issue_number": 9, "title": "x"})
        assert rec == {"index": 0, "action": "reject", "id": "9",
                       "error": {"code": f"http_{status}", "message": "Not Found"}}  # fmt: skip


def test_github_comment_and_create_read_where_they_would_add() -> None:
    args = {**REPO, "issue_number": 3, "body": "Hi"}
    http = FakeHttp({"number": 3})
    assert preview(github_writes.comment, http, args)[0]["action"] == "create"
    assert http.sent[0].path == "/repos/acme/app/issues/3"
    (rec,) = preview(github_writes.comment, FakeHttp(not_found()), args)
    assert rec["action"] == "reject" and rec["error"]["code"] == "http_404"
    new = {**REPO, "title": "T", "labels": ["bug"]}
    http = FakeHttp({"full_name": "acme/app", "has_issues": True})
    assert preview(github_writes.create, http, new) == [
        {"index": 0, "action": "create", "id": None, "proposed": new}
    ]
    assert http.sent[0].path == "/repos/acme/app"
    (rec,) = preview(github_writes.create, FakeHttp({"has_issues": False}), new)
    assert rec["action"] == "reject" and rec["error"]["code"] == "http_410"


# ---- Slack --------------------------------------------------------------------------------


def test_slack_post_reads_the_channel() -> None:
    args = {"channel": "C01GENERAL", "text": "Hello"}
    http = FakeHttp({"ok": True, "channel": {"id": "C01GENERAL", "is_archived": False}})
    assert preview(slack_writes.post_message, http, args) == [
        {"index": 0, "action": "create", "id": None, "proposed": args}
    ]
    assert http.sent[0].path == "/api/conversations.info"
    assert http.sent[0].kwargs["params"] == {"channel": "C01GENERAL"}
    gone = FakeHttp(VendorError("channel_not_found", "channel_not_found", status=200))
    (rec,) = preview(slack_writes.post_message, gone, args)
    assert rec["action"] == "reject" and rec["error"]["code"] == "channel_not_found"
    archived = FakeHttp({"ok": True, "channel": {"id": "C01GENERAL", "is_archived": True}})
    (rec,) = preview(slack_writes.post_message, archived, args)
    assert rec["action"] == "reject" and rec["error"]["code"] == "is_archived"
    unscoped = FakeHttp(VendorError("missing_scope", "missing_scope", status=200))
    assert preview(slack_writes.post_message, unscoped, args)[0]["action"] == "create"


# ---- Stripe and Zendesk (declared in their specs) ------------------------------------------


def test_stripe_update_diffs_the_customer_and_only_the_metadata_keys_given(
    tools: dict[str, Tool],
) -> None:
    customer = {"id": "cus_1", "object": "customer", "email": "a@x.io", "name": "Ann",
                "phone": None, "metadata": {"tier": "gold", "region": "eu"}}  # fmt: skip
    args = {"id": "cus_1", "name": "Ann B", "metadata": {"tier": "gold", "seats": "3"}}
    http = FakeHttp(customer)
    (rec,) = preview(tools["stripe.customers.update"], http, args)
    assert [s.path for s in http.sent] == ["/v1/customers/cus_1"]
    assert rec["action"] == "update" and rec["id"] == "cus_1"
    assert rec["current"] == {"name": "Ann", "metadata": {"tier": "gold", "seats": None}}
    assert rec["proposed"] == {"name": "Ann B", "metadata": {"tier": "gold", "seats": "3"}}
    same = {"id": "cus_1", "email": "a@x.io", "metadata": {"region": "eu"}}
    (rec,) = preview(tools["stripe.customers.update"], FakeHttp(customer), same)
    assert rec["action"] == "unchanged"
    missing = FakeHttp(not_found("resource_missing", "No such customer: 'cus_9'"))
    (rec,) = preview(tools["stripe.customers.update"], missing, {"id": "cus_9", "name": "x"})
    assert rec["action"] == "reject" and rec["id"] == "cus_9"
    assert rec["error"] == {"code": "resource_missing", "message": "No such customer: 'cus_9'"}


def test_stripe_and_zendesk_creates_need_no_request(tools: dict[str, Tool]) -> None:
    args = {"email": "a@x.io", "name": "Ann"}
    assert preview(tools["stripe.customers.create"], FakeHttp(), args) == [
        {"index": 0, "action": "create", "id": None, "proposed": args}
    ]
    ticket = {"subject": "S", "body": "B", "tags": ["a"]}
    (rec,) = preview(tools["zendesk.tickets.create"], FakeHttp(), ticket)
    assert rec["action"] == "create" and rec["proposed"] == ticket


def test_zendesk_update_diffs_the_ticket_object(tools: dict[str, Tool]) -> None:
    ticket = {"ticket": {"id": 5, "status": "open", "priority": "low", "subject": "S",
                         "tags": ["a", "b"]}}  # fmt: skip
    args = {"id": 5, "status": "solved", "tags": ["a", "b"]}
    http = FakeHttp(ticket)
    (rec,) = preview(tools["zendesk.tickets.update"], http, args)
    assert [s.path for s in http.sent] == ["/api/v2/tickets/5"]
    assert rec["action"] == "update" and rec["id"] == "5"
    assert rec["current"] == {"status": "open", "tags": ["a", "b"]}
    assert rec["proposed"] == {"status": "solved", "tags": ["a", "b"]}
    assert rec["changed"] == ["status"]
    missing = FakeHttp(not_found("RecordNotFound", "Not found"))
    (rec,) = preview(tools["zendesk.tickets.update"], missing, {"id": 99, "status": "open"})
    assert rec == {"index": 0, "action": "reject", "id": "99",
                   "error": {"code": "RecordNotFound", "message": "Not found"}}  # fmt: skip


def test_zendesk_comment_needs_its_ticket(tools: dict[str, Tool]) -> None:
    args = {"id": 5, "body": "Thanks", "public": False}
    http = FakeHttp({"ticket": {"id": 5}})
    assert preview(tools["zendesk.tickets.comment"], http, args) == [
        {"index": 0, "action": "create", "id": None, "proposed": args}
    ]
    assert http.sent[0].path == "/api/v2/tickets/5"
    (rec,) = preview(tools["zendesk.tickets.comment"], FakeHttp(not_found()), args)
    assert rec["action"] == "reject" and rec["id"] == "5"


def test_a_preview_declaration_is_checked_at_load(tmp_path: Path) -> None:
    vendor = {"name": "acme", "base_url": "https://api.acme.example"}
    write = {"name": "acme.things.update", "description": "d", "method": "PUT",
             "path": "/things/{{args.id}}", "args": {"id": {"type": "string"}},
             "body": {"x": 1}, "mechanism": "absolute",
             "result": {"id": "id", "status": "updated"}}  # fmt: skip
    bad = [
        ({"current": "/things/{{args.nope}}"}, "`args.nope` is used but not declared"),
        ({"current": "/t", "fields": "[["}, "preview.fields"),
        ({"current": "/t", "merge": ["m"]}, "`preview.merge` needs `preview.fields`"),
    ]
    for spec, says in bad:
        path = tmp_path / "acme.json"
        path.write_text(json.dumps({"vendor": vendor, "writes": [{**write, "preview": spec}]}))
        with pytest.raises(SpecError, match=says.replace("[", r"\[")):
            load_file(path)
