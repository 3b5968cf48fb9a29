"""GitHub writes on the real stack: create, comment, update — each happy, refused by GitHub,
and with its answer lost after GitHub committed it (found by its body marker: one effect);
the content-creation secondary limit waits instead of making a write uncertain."""

from __future__ import annotations

from typing import Any

import requests
from ledger import effects

REPO = {"owner": "acme", "repo": "widgets"}
CREATE = {**REPO, "title": "Printer on fire", "body": "It smokes.", "labels": ["bug"]}




def github(api: Any, sandbox: Any) -> str:
    sandbox.config(volumes={"github.issues": 30, "github.pulls": 20})
    return api.account(sandbox, "github")


def run(api: Any, account: str, tool: str, args: dict[str, Any]) -> tuple[dict, list[dict]]:
    job = api.call(tool, account_id=account, args=args)
    done = api.wait(job["job_id"])
    return done, api.records(job["job_id"])


def calls(sandbox: Any, method: str, suffix: str) -> list[dict[str, Any]]:
    return [e for e in sandbox.requests("github")
            if e["method"] == method and e["path"].endswith(suffix)]  # fmt: skip


def shown(sandbox: Any, path: str) -> Any:
    token = sandbox.mint("github")["access_token"]
    resp = requests.get(f"{sandbox.url}/github/repos/acme/widgets{path}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=5)  # fmt: skip
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_create_ends_the_body_with_the_marker(api: Any, fresh_sandbox: Any) -> None:
    done, (rec,) = run(api, github(api, fresh_sandbox), "github.issues.create", CREATE)
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert rec == {"index": 0, "status": "created", "id": "51"}
    issue = shown(fresh_sandbox, "/issues/51")
    assert issue["body"] == f"It smokes.\n\n<!-- toolqueue:op={done['job_id']}.0 -->"
    assert [x["name"] for x in issue["labels"]] == ["bug"]


def test_create_refused_by_github_is_rejected_with_its_reason(api: Any, fresh_sandbox: Any) -> None:
    bad = {**CREATE, "owner": "missing"}
    done, (rec,) = run(api, github(api, fresh_sandbox), "github.issues.create", bad)
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected", done
    assert rec["error"] == {"code": "http_404", "message": "Not Found", "status": 404}
    assert effects(fresh_sandbox, "github")["effects"] == []


def test_a_lost_create_is_found_by_its_marker(api: Any, fresh_sandbox: Any) -> None:
    account = github(api, fresh_sandbox)
    fresh_sandbox.config(drop_after_commit_next=1)
    done, (rec,) = run(api, account, "github.issues.create", CREATE)
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert rec == {"index": 0, "status": "created", "id": "51"}
    assert api.result(done["job_id"])["writes"]["reconciled"] == 1
    assert effects(fresh_sandbox, "github")["per_object"] == {
        "acme/widgets#51": {"create": 1, "update": 0, "noop": 0}
    }
    assert len(calls(fresh_sandbox, "POST", "/repos/acme/widgets/issues")) == 1
    (listing,) = calls(fresh_sandbox, "GET", "/repos/acme/widgets/issues")
    assert "sort=created" in listing["query"] and "direction=desc" in listing["query"]


def test_comment_happy_refused_and_lost(api: Any, fresh_sandbox: Any) -> None:
    account = github(api, fresh_sandbox)
    args = {**REPO, "issue_number": 4, "body": "Seen it too."}
    done, (rec,) = run(api, account, "github.issues.comment", args)
    assert done["status"] == "succeeded" and rec["status"] == "created"
    (comment,) = shown(fresh_sandbox, "/issues/4/comments")
    assert str(comment["id"]) == rec["id"] and comment["body"].startswith("Seen it too.\n\n<!--")
    done, (gone,) = run(api, account, "github.issues.comment", {**args, "issue_number": 999})
    assert done["status"] == "failed" and gone["error"]["status"] == 404
    fresh_sandbox.config(drop_after_commit_next=1)
    done, (lost,) = run(api, account, "github.issues.comment", {**args, "issue_number": 2})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert api.result(done["job_id"])["writes"]["reconciled"] == 1
    on_two = {k: v for k, v in effects(fresh_sandbox, "github")["per_object"].items()
              if k.startswith("acme/widgets#2/")}  # fmt: skip
    assert on_two == {f"acme/widgets#2/comments/{lost['id']}": {"create": 1, "update": 0,
                                                                "noop": 0}}  # fmt: skip
    assert len(calls(fresh_sandbox, "POST", "/issues/2/comments")) == 1
    assert len(calls(fresh_sandbox, "GET", "/issues/2/comments")) == 1


def test_update_happy_refused_and_lost(api: Any, fresh_sandbox: Any) -> None:
    account = github(api, fresh_sandbox)
    args = {**REPO, "issue_number": 7, "state": "closed", "labels": []}
    done, (rec,) = run(api, account, "github.issues.update", args)
    assert done["status"] == "succeeded" and rec == {"index": 0, "status": "updated", "id": "7"}
    assert shown(fresh_sandbox, "/issues/7")["state"] == "closed"
    done, (gone,) = run(api, account, "github.issues.update", {**args, "issue_number": 999})
    assert done["status"] == "failed" and gone["error"]["message"] == "Not Found"
    fresh_sandbox.config(drop_after_commit_next=1)
    done, (lost,) = run(api, account, "github.issues.update", {**args, "title": "Renamed"})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert lost == {"index": 0, "status": "updated", "id": "7"}
    assert shown(fresh_sandbox, "/issues/7")["title"] == "Renamed"
    # absolute values: the uncertain update is simply sent again (no lookup, no create)
    assert effects(fresh_sandbox, "github")["per_object"]["acme/widgets#7"]["create"] == 0
    assert len(calls(fresh_sandbox, "PATCH", "/issues/7")) == 3


def test_the_secondary_content_limit_waits_and_never_duplicates(
    api: Any, fresh_sandbox: Any
) -> None:
    account = github(api, fresh_sandbox)
    fresh_sandbox.config(github_content_per_minute=1)
    done, _ = run(api, account, "github.issues.create", CREATE)
    assert done["status"] == "succeeded"
    job = api.call("github.issues.create", account_id=account, args=CREATE)
    parked = api.wait(job["job_id"], timeout=20, states=("waiting_rate_limit",))
    assert parked["status"] == "waiting_rate_limit", parked
    refused = calls(fresh_sandbox, "POST", "/repos/acme/widgets/issues")
    assert [e["status"] for e in refused] == [201, 403]
    assert parked["history"][-1]["reason"].startswith("vendor rate limit: retry in")
    api.post(f"/v1/jobs/{job['job_id']}/cancel")
    assert len(effects(fresh_sandbox, "github")["effects"]) == 1
    assert calls(fresh_sandbox, "GET", "/repos/acme/widgets/issues") == []  # never uncertain
