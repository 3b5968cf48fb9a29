"""Jira writes over real HTTP: create, comment, transition, faults, and the marker lookups."""

from __future__ import annotations

import pytest
import requests

API = "/jira/rest/api/3"
ADF = {"type": "doc", "version": 1,
       "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Hi"}]}]}  # fmt: skip
MARK = [{"key": "toolqueue", "value": {"op": "job-1:0"}}]
NEW = {"fields": {"project": {"key": "ENG"}, "summary": "Printer on fire",
                  "issuetype": {"name": "Task"}, "description": ADF, "labels": ["ops"]},
       "properties": MARK}  # fmt: skip
CUT = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


@pytest.fixture
def jira(live_sandbox):
    live_sandbox.config(volumes={"jira.issues": 40})
    body = {"vendor": "jira", "client_id": "cid", "client_secret": "cs"}
    token = requests.post(f"{live_sandbox.url}/_sandbox/tokens", json=body).json()
    live_sandbox.h = {"Authorization": f"Bearer {token['access_token']}"}
    return live_sandbox


def post(live, path: str, doc) -> requests.Response:
    return requests.post(f"{live.url}{API}{path}", json=doc, headers=live.h, timeout=5)


def get(live, path: str, **params) -> requests.Response:
    return requests.get(f"{live.url}{API}{path}", params=params, headers=live.h, timeout=5)


def marked(live, op: str) -> list[dict]:
    jql = f'project = ENG AND issue.property[toolqueue].op = "{op}"'
    resp = get(live, "/search/jql", jql=jql, fields="summary,status")
    assert resp.status_code == 200, resp.text
    return resp.json()["issues"]


def test_a_created_issue_continues_the_key_sequence_and_shows_everywhere(jira):
    resp = post(jira, "/issue", NEW)
    assert resp.status_code == 201, resp.text
    assert "X-RateLimit-Remaining" in resp.headers
    made = resp.json()
    assert set(made) == {"id", "key", "self"} and made["key"] == "ENG-21"  # 20 seeded ENG
    shown = get(jira, f"/issue/{made['key']}", properties="*all").json()
    assert shown["fields"]["summary"] == "Printer on fire"
    assert shown["fields"]["status"]["name"] == "To Do"
    assert shown["fields"]["description"] == ADF and shown["fields"]["labels"] == ["ops"]
    assert shown["properties"] == {"toolqueue": {"op": "job-1:0"}}
    prop = get(jira, f"/issue/{made['id']}/properties/toolqueue").json()
    assert prop == {"key": "toolqueue", "value": {"op": "job-1:0"}}
    found = marked(jira, "job-1:0")
    assert [(i["key"], i["fields"]["summary"]) for i in found] == [(made["key"], "Printer on fire")]
    assert marked(jira, "job-9:9") == []
    effects = jira.effects("jira")
    assert [(e["kind"], e["object_id"]) for e in effects] == [("create", made["key"])]


def test_create_validation_errors_are_jira_shaped(jira):
    bad = {"fields": {"project": {"key": "NOPE"}, "summary": " ", "issuetype": {"name": "Epic"},
                      "description": "plain text"}}  # fmt: skip
    resp = post(jira, "/issue", bad)
    assert resp.status_code == 400
    assert resp.json() == {
        "errorMessages": [],
        "errors": {
            "project": "valid project is required",
            "summary": "You must specify a summary of the issue.",
            "issuetype": "The issue type selected is invalid.",
            "description": "Operation value must be an Atlassian Document "
            "(see the Atlassian Document Format)",
        },
    }
    assert post(jira, "/issue", {"nofields": 1}).status_code == 400
    assert jira.effects("jira") == []


def test_transitions_follow_the_small_workflow(jira):
    key = post(jira, "/issue", NEW).json()["key"]
    ids = [t["id"] for t in get(jira, f"/issue/{key}/transitions").json()["transitions"]]
    assert ids == ["21"]
    wrong = post(jira, f"/issue/{key}/transitions", {"transition": {"id": "31"}})
    assert wrong.status_code == 400
    assert wrong.json()["errorMessages"] == ["Transition id '31' is not valid for this issue."]
    for tid, name in (("21", "In Progress"), ("31", "Done")):
        resp = post(jira, f"/issue/{key}/transitions", {"transition": {"id": tid}})
        assert resp.status_code == 204 and resp.content == b""
        assert get(jira, f"/issue/{key}").json()["fields"]["status"]["name"] == name
    assert post(jira, "/issue/ENG-999/transitions", {"transition": {"id": "21"}}).status_code == 404
    kinds = [(e["kind"], e["object_id"]) for e in jira.effects("jira")]
    assert kinds == [("create", key), ("update", key), ("update", key)]


def test_comments_carry_properties_and_list_newest_last(jira):
    for n in range(3):
        doc = {"body": ADF, "properties": [{"key": "toolqueue", "value": {"op": f"c-{n}"}}]}
        resp = post(jira, "/issue/ENG-3/comment", doc)  # a seeded issue takes comments
        assert resp.status_code == 201, resp.text
        assert resp.json()["body"] == ADF and "properties" not in resp.json()
    page = get(jira, "/issue/ENG-3/comment", expand="properties", startAt=1, maxResults=5).json()
    assert (page["startAt"], page["total"]) == (1, 3)
    assert [c["properties"] for c in page["comments"]] == [
        [{"key": "toolqueue", "value": {"op": f"c-{n}"}}] for n in (1, 2)
    ]
    assert "properties" not in get(jira, "/issue/ENG-3/comment").json()["comments"][0]
    assert post(jira, "/issue/ENG-3/comment", {}).json()["errors"] == {
        "comment": "Comment body can not be empty!"
    }
    assert post(jira, "/issue/ENG-3/comment", {"body": "text"}).status_code == 400
    assert post(jira, "/issue/ENG-999/comment", {"body": ADF}).status_code == 404
    assert len(jira.effects("jira")) == 3


def test_a_failure_before_commit_is_a_503_with_no_effect(jira):
    jira.config(fail_before_commit_next=1)
    resp = post(jira, "/issue", NEW)
    assert resp.status_code == 503 and resp.json()["errorMessages"] == ["Service Unavailable"]
    assert jira.effects("jira") == [] and marked(jira, "job-1:0") == []


def test_a_create_committed_then_dropped_is_found_by_its_marker(jira):
    jira.config(drop_after_commit_next=1)
    with pytest.raises(CUT):
        post(jira, "/issue", NEW)
    found = marked(jira, "job-1:0")
    assert len(found) == 1 and found[0]["key"] == jira.effects("jira")[0]["object_id"]
    per_object = requests.get(f"{jira.url}/jira/_sandbox/effects").json()["per_object"]
    assert per_object == {found[0]["key"]: {"create": 1, "update": 0, "noop": 0}}


def test_a_comment_committed_then_dropped_is_found_by_its_property(jira):
    jira.config(drop_after_commit_next=1)
    doc = {"body": ADF, "properties": [{"key": "toolqueue", "value": {"op": "c-lost"}}]}
    with pytest.raises(CUT):
        post(jira, "/issue/OPS-2/comment", doc)
    comments = get(jira, "/issue/OPS-2/comment", expand="properties").json()["comments"]
    assert [c["properties"][0]["value"]["op"] for c in comments] == ["c-lost"]


def test_write_latency_holds_the_write(jira):
    jira.config(write_latency_ms=300)
    resp = post(jira, "/issue", NEW)
    assert resp.status_code == 201 and resp.elapsed.total_seconds() >= 0.3


def test_writes_need_auth_and_take_the_burst_budget(jira):
    resp = requests.post(f"{jira.url}{API}/issue", json=NEW, timeout=5)
    assert resp.status_code == 401
    jira.config(rate_budgets={"jira": 1})
    assert post(jira, "/issue", NEW).status_code == 201
    refused = post(jira, "/issue", NEW)
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    assert len(jira.effects("jira")) == 1
