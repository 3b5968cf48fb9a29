"""Jira writes on the real stack: create, comment, transition — each happy, refused by Jira,
and with its answer lost after Jira committed it (found by its marker: one effect)."""

from __future__ import annotations

from typing import Any

import requests
from ledger import effects

CREATE = {"project_key": "ENG", "summary": "Printer on fire", "issue_type": "Task",
          "description": "It smokes.\n\nSince Monday."}  # fmt: skip




def jira(api: Any, sandbox: Any) -> str:
    return api.account(sandbox, "jira", token_url=f"{sandbox.url}/jira/oauth/token")


def run(api: Any, account: str, tool: str, args: dict[str, Any]) -> tuple[dict, list[dict]]:
    job = api.call(tool, account_id=account, args=args)
    done = api.wait(job["job_id"])
    return done, api.records(job["job_id"])


def calls(sandbox: Any, method: str, suffix: str) -> list[dict[str, Any]]:
    return [e for e in sandbox.requests("jira")
            if e["method"] == method and e["path"].endswith(suffix)]  # fmt: skip


def issue(sandbox: Any, key: str) -> dict[str, Any]:
    token = sandbox.mint("jira")["access_token"]
    resp = requests.get(f"{sandbox.url}/jira/rest/api/3/issue/{key}", params={
        "properties": "*all"}, headers={"Authorization": f"Bearer {token}"}, timeout=5)  # fmt: skip
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_create_sends_adf_and_the_marker_property(api: Any, fresh_sandbox: Any) -> None:
    done, results = run(api, jira(api, fresh_sandbox), "jira.issues.create", CREATE)
    assert done["status"] == "succeeded", (done["error"], done["history"])
    ((rec,),) = [results]
    assert rec["status"] == "created" and rec["id"].startswith("ENG-")
    shown = issue(fresh_sandbox, rec["id"])
    assert shown["fields"]["summary"] == "Printer on fire"
    paragraphs = shown["fields"]["description"]["content"]
    assert [p["content"][0]["text"] for p in paragraphs] == ["It smokes.", "Since Monday."]
    assert shown["properties"]["toolqueue"] == {"op": f"{done['job_id']}.0"}


def test_create_refused_by_jira_is_rejected_with_its_reason(api: Any, fresh_sandbox: Any) -> None:
    bad = {**CREATE, "issue_type": "Epic"}
    done, (rec,) = run(api, jira(api, fresh_sandbox), "jira.issues.create", bad)
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected", done
    assert rec["status"] == "rejected" and rec["error"]["status"] == 400
    assert rec["error"]["message"] == "The issue type selected is invalid."
    assert effects(fresh_sandbox, "jira")["effects"] == []


def test_a_lost_create_is_found_by_its_property(api: Any, fresh_sandbox: Any) -> None:
    account = jira(api, fresh_sandbox)
    fresh_sandbox.config(drop_after_commit_next=1)
    done, (rec,) = run(api, account, "jira.issues.create", CREATE)
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert api.result(done["job_id"])["writes"]["reconciled"] == 1
    per_object = effects(fresh_sandbox, "jira")["per_object"]
    assert per_object == {rec["id"]: {"create": 1, "update": 0, "noop": 0}}
    assert len(calls(fresh_sandbox, "POST", "/rest/api/3/issue")) == 1
    (search,) = calls(fresh_sandbox, "GET", "/search/jql")
    assert "issue.property" in requests.utils.unquote(search["query"])


def test_comment_happy_refused_and_lost(api: Any, fresh_sandbox: Any) -> None:
    account = jira(api, fresh_sandbox)
    done, (rec,) = run(api, account, "jira.issues.comment", {"issue_key": "ENG-3", "body": "Hi"})
    assert done["status"] == "succeeded" and rec["status"] == "created" and rec["id"]
    done, (gone,) = run(api, account, "jira.issues.comment", {"issue_key": "ENG-999",
                                                              "body": "Hi"})  # fmt: skip
    assert done["status"] == "failed" and gone["error"]["status"] == 404
    assert "does not exist" in gone["error"]["message"]
    fresh_sandbox.config(drop_after_commit_next=1)
    done, (lost,) = run(api, account, "jira.issues.comment", {"issue_key": "OPS-2", "body": "x"})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert api.result(done["job_id"])["writes"]["reconciled"] == 1
    per_object = effects(fresh_sandbox, "jira")["per_object"]
    assert {k: v["create"] for k, v in per_object.items() if k.startswith("OPS-2/")} == {
        f"OPS-2/comment/{lost['id']}": 1
    }
    assert len(calls(fresh_sandbox, "POST", "/issue/OPS-2/comment")) == 1
    listed = calls(fresh_sandbox, "GET", "/issue/OPS-2/comment")
    assert len(listed) == 1 and "expand=properties" in listed[0]["query"]


def test_transition_by_name_and_id_refused_and_lost(api: Any, fresh_sandbox: Any) -> None:
    account = jira(api, fresh_sandbox)
    _, (made,) = run(api, account, "jira.issues.create", CREATE)
    key = made["id"]
    done, (moved,) = run(api, account, "jira.issues.transition",
                         {"issue_key": key, "transition": "In Progress"})  # fmt: skip
    assert done["status"] == "succeeded" and moved == {"index": 0, "status": "updated", "id": key}
    assert issue(fresh_sandbox, key)["fields"]["status"]["name"] == "In Progress"
    done, (again,) = run(api, account, "jira.issues.transition",
                         {"issue_key": key, "transition": "in progress"})  # fmt: skip
    assert done["status"] == "succeeded" and again["status"] == "unchanged"  # as previewed
    done, (bad,) = run(api, account, "jira.issues.transition",
                       {"issue_key": key, "transition": "21"})  # fmt: skip
    assert done["status"] == "failed" and bad["error"]["code"] == "transition_not_available"
    assert "11 → To Do" in bad["error"]["message"]
    # a 503 leaves the transition uncertain: looked up (not in Done yet), then sent once more
    fresh_sandbox.config(fail_before_commit_next=1)
    done, (lost,) = run(api, account, "jira.issues.transition",
                        {"issue_key": key, "transition": "31"})  # fmt: skip
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert lost == {"index": 0, "status": "updated", "id": key}
    assert api.result(done["job_id"])["writes"]["reconciled"] == 1
    assert issue(fresh_sandbox, key)["fields"]["status"]["name"] == "Done"
    counts = effects(fresh_sandbox, "jira")["per_object"][key]
    assert counts == {"create": 1, "update": 2, "noop": 0}
    posts = [e["status"] for e in calls(fresh_sandbox, "POST", f"/issue/{key}/transitions")]
    assert posts == [204, 503, 204]
    looked = [e for e in calls(fresh_sandbox, "GET", f"/issue/{key}") if "status" in e["query"]]
    assert len(looked) == 2  # "already there?" for the repeated name, the uncertain lookup


def test_a_transition_whose_answer_is_lost_is_found_done(api: Any, fresh_sandbox: Any) -> None:
    """Jira applied the transition and its 204 was lost: the lookup finds the issue in the
    target status already, and nothing is sent again."""
    account = jira(api, fresh_sandbox)
    _, (made,) = run(api, account, "jira.issues.create", CREATE)
    key = made["id"]
    fresh_sandbox.config(drop_after_commit_next=1)
    done, (moved,) = run(api, account, "jira.issues.transition",
                         {"issue_key": key, "transition": "In Progress"})  # fmt: skip
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert moved == {"index": 0, "status": "updated", "id": key}
    assert api.result(done["job_id"])["writes"]["reconciled"] == 1
    posts = calls(fresh_sandbox, "POST", f"/issue/{key}/transitions")
    assert len(posts) == 1
    assert effects(fresh_sandbox, "jira")["per_object"][key]["update"] == 1
