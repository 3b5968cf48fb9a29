"""The marker vendors' write tools alone (no wire): what `send` asks, how `find` reads the
vendor's answers, and the loader adding a spec vendor's write tools."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeHttp

import connectors
from connectors import github_writes, jira_writes, slack_writes
from connectors.errors import VendorError
from connectors.writes import ItemResult, Operation, marker


def op(args: Any, key: str = "job-1.0") -> Operation:
    return Operation(0, ((0, args),), key)


def test_plain_text_becomes_adf_paragraphs_and_hard_breaks() -> None:
    doc = jira_writes.adf("One\ntwo\n\n\nThree")
    assert doc["type"] == "doc" and doc["version"] == 1
    assert doc["content"] == [
        {"type": "paragraph", "content": [{"type": "text", "text": "One"}, {"type": "hardBreak"},
                                          {"type": "text", "text": "two"}]},
        {"type": "paragraph", "content": [{"type": "text", "text": "Three"}]},
    ]  # fmt: skip


def test_jira_create_is_found_by_a_bounded_property_query() -> None:
    args = jira_writes.CreateArgs(project_key="ENG", summary="s", issue_type="Task")
    http = FakeHttp({"issues": [{"id": "1000001", "key": "ENG-21"}]}, {"issues": []})
    assert jira_writes.create.write.find(http, op(args)) == [ItemResult(0, "created", "ENG-21")]
    jql = http.sent[0].kwargs["params"]["jql"]
    assert jql == 'project = "ENG" AND issue.property[toolqueue].op = "job-1.0"'
    assert jira_writes.create.write.find(http, op(args)) is None


def test_jira_comment_is_found_by_its_property() -> None:
    args = jira_writes.CommentArgs(issue_key="ENG-3", body="hi")
    mine = {"id": "10002", "properties": [{"key": "toolqueue", "value": {"op": "job-1.0"}}]}
    other = {"id": "10001", "properties": [{"key": "toolqueue", "value": {"op": "job-0.0"}}]}
    http = FakeHttp({"comments": [other, mine]})
    assert jira_writes.comment.write.find(http, op(args)) == [ItemResult(0, "created", "10002")]
    missing = FakeHttp(VendorError("http_404", "Issue does not exist", status=404))
    assert jira_writes.comment.write.find(missing, op(args)) is None


def _status(name: str) -> dict[str, Any]:
    return {"fields": {"status": {"name": name}}}


def _offers(*moves: tuple[str, str]) -> dict[str, Any]:
    return {"transitions": [{"id": i, "to": {"name": to}} for i, to in moves]}


@pytest.mark.parametrize(
    ("wanted", "status", "offered", "done"),
    [
        ("Done", "Done", [("11", "To Do")], True),  # by name, already there
        ("Done", "In Progress", [("11", "To Do"), ("31", "Done")], False),
        ("31", "In Progress", [("11", "To Do"), ("31", "Done")], False),  # offered: not made
        ("31", "Done", [("11", "To Do")], True),  # no longer offered: the lost one moved it
    ],
)
def test_jira_transition_is_found_by_the_issue_standing_in_its_target(
    wanted: str, status: str, offered: list[tuple[str, str]], done: bool
) -> None:
    args = jira_writes.TransitionArgs(issue_key="ENG-21", transition=wanted)
    http = FakeHttp(_status(status), _offers(*offered))
    found = jira_writes.transition.write.find(http, op(args))
    assert found == ([ItemResult(0, "updated", "ENG-21")] if done else None)


def test_jira_transition_by_name_sends_the_offered_id_or_refuses() -> None:
    args = jira_writes.TransitionArgs(issue_key="ENG-21", transition="done")
    http = FakeHttp(_offers(("11", "To Do"), ("31", "Done")), {})
    assert jira_writes.transition.write.send(http, op(args)) == [
        ItemResult(0, "updated", "ENG-21")
    ]
    assert http.sent[1].json == {"transition": {"id": "31"}}
    with pytest.raises(VendorError) as refused:  # not offered, and not where the issue is
        jira_writes.transition.write.send(FakeHttp(_offers(("11", "To Do")), _status("In Review")),
                                          op(args))  # fmt: skip
    assert refused.value.status == 400 and "11 → To Do" in refused.value.message
    there = FakeHttp(_offers(("11", "To Do")), _status("Done"))  # already there: done
    assert jira_writes.transition.write.send(there, op(args)) == [
        ItemResult(0, "unchanged", "ENG-21")
    ]
    assert [s.method for s in there.sent] == ["GET", "GET"]  # nothing posted


def test_github_create_is_found_by_its_marker_on_the_newest_pages() -> None:
    args = github_writes.CreateArgs(owner="acme", repo="widgets", title="t")
    page1 = [{"number": n, "body": None} for n in range(200, 100, -1)]
    page2 = [{"number": 60, "body": f"x\n\n{marker('job-1.0')}"}]
    http = FakeHttp(page1, page2)
    assert github_writes.create.write.find(http, op(args)) == [ItemResult(0, "created", "60")]
    assert [s.kwargs["params"]["page"] for s in http.sent] == [1, 2]
    assert http.sent[0].kwargs["params"]["direction"] == "desc"
    assert github_writes.create.write.find(FakeHttp([]), op(args)) is None


def test_github_bodies_end_with_the_marker() -> None:
    args = github_writes.CreateArgs(owner="acme", repo="widgets", title="t", body="Hello  ")
    http = FakeHttp({"number": 51})
    github_writes.create.write.send(http, op(args))
    assert http.sent[0].json == {"title": "t", "body": f"Hello\n\n{marker('job-1.0')}"}
    bare = github_writes.CommentArgs(owner="acme", repo="widgets", issue_number=2, body=" x")
    http = FakeHttp({"id": 3})
    github_writes.comment.write.send(http, op(bare))
    assert http.sent[0].json == {"body": f" x\n\n{marker('job-1.0')}"}


def test_github_update_sends_only_what_was_given() -> None:
    args = github_writes.UpdateArgs(owner="acme", repo="w", issue_number=7, state="closed",
                                    labels=[])  # fmt: skip
    http = FakeHttp({"number": 7})
    assert github_writes.update.write.send(http, op(args)) == [ItemResult(0, "updated", "7")]
    assert (http.sent[0].method, http.sent[0].path) == ("PATCH", "/repos/acme/w/issues/7")
    assert http.sent[0].json == {"state": "closed", "labels": []}


def test_slack_refusals_are_rejections_and_the_marker_is_found_on_a_later_page() -> None:
    args = slack_writes.PostArgs(channel="C01GENERAL", text="hi")
    refused = FakeHttp(VendorError("channel_not_found", "channel_not_found", status=200))
    (rec,) = slack_writes.post_message.write.send(refused, op(args))
    assert rec.status == "rejected" and rec.error == {
        "code": "channel_not_found", "message": "channel_not_found"
    }  # fmt: skip
    meta = {"event_type": "toolqueue_op", "event_payload": {"op": "job-1.0"}}
    http = FakeHttp(
        {"ok": True, "messages": [{"ts": "2.0"}], "response_metadata": {"next_cursor": "c2"}},
        {"ok": True, "messages": [{"ts": "1.5", "metadata": meta}]},
    )
    found = slack_writes.post_message.write.find(http, op(args))
    assert found == [ItemResult(0, "created", "C01GENERAL:1.5")]
    assert http.sent[1].kwargs["params"]["cursor"] == "c2"
    assert http.sent[0].kwargs["params"]["include_all_metadata"] == "true"


def test_the_loader_adds_a_spec_vendors_write_tools() -> None:
    tools = connectors.load().tools
    assert tools["jira.issues.create"] is jira_writes.create
    assert tools["github.issues.comment"] is github_writes.comment
    assert tools["slack.chat.post_message"] is slack_writes.post_message


def test_tools_for_an_unknown_vendor_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    orphan = jira_writes.create.__class__(
        name="nowhere.things.create", description="d", args=jira_writes.CreateArgs,
        read_only=False, write=jira_writes.create.write,
    )  # fmt: skip
    monkeypatch.setattr(jira_writes, "TOOLS", (*jira_writes.TOOLS, orphan))
    with pytest.raises(connectors.SpecError, match="unknown vendor 'nowhere'"):
        connectors.load()
