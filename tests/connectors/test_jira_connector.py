"""jira.issues.search and jira.projects.list (declarative spec) through the real stack.

Jira's token endpoint is absolute (auth.atlassian.com), so accounts pass the sandbox's as
`token_url` (the `oauth_account` fixture).
"""

from __future__ import annotations

import requests

SEARCH = "jira.issues.search"
PROJECTS = "jira.projects.list"


def issue_ids(numbers) -> list[str]:
    return [str(10000 + i) for i in numbers]


# ---- jira.issues.search (nextPageToken, isLast, no total) ----------------------------------


def test_search_full_traversal_until_is_last(
    api, fresh_sandbox, run_with_result, api_log, oauth_account
):
    acct = oauth_account("jira")  # 1000 issues in ENG and OPS
    args = {"jql": "project in (ENG, OPS) ORDER BY created ASC", "max_results": 100}
    fields = ["id", "key", "fields.status.name"]
    done, body = run_with_result(acct, SEARCH, args=args, fields=fields)
    assert done["status"] == "succeeded", done
    assert [r["id"] for r in body["records"]] == issue_ids(range(1, 1001))
    assert body["records"][0] == {
        "id": "10001",
        "key": "ENG-1",
        "fields": {"status": {"name": "Open"}},
    }
    assert body["truncated"] is False and body["pages_fetched"] == 10
    log = api_log("jira")
    assert [e["status"] for e in log] == [200] * 10
    assert "nextPageToken" not in log[0]["query"]
    assert all("nextPageToken=" in e["query"] for e in log[1:])
    # The default fields and the page size travel on every request.
    assert all("fields=summary%2Cstatus%2Cpriority%2Cassignee%2Ccreated%2Cupdated" in e["query"]
               for e in log)  # fmt: skip
    assert all("maxResults=100" in e["query"] for e in log)


def test_search_filtered_single_page_with_default_fields(
    api, fresh_sandbox, run_with_result, api_log, oauth_account
):
    fresh_sandbox.config(volumes={"jira.issues": 200})
    acct = oauth_account("jira")
    jql = "project = ENG AND statusCategory != Done ORDER BY created DESC"
    done, body = run_with_result(acct, SEARCH, args={"jql": jql})
    assert done["status"] == "succeeded", done
    assert [r["id"] for r in body["records"]] == issue_ids(range(1, 201, 4))  # 50: one page
    fields = body["records"][0]["fields"]
    assert set(fields) == {"summary", "status", "priority", "assignee", "created", "updated"}
    assert body["pages_fetched"] == 1 and len(api_log("jira")) == 1


def test_search_empty(api, fresh_sandbox, run_with_result, api_log, oauth_account):
    fresh_sandbox.config(volumes={"jira.issues": 0})
    acct = oauth_account("jira")
    done, body = run_with_result(acct, SEARCH, args={"jql": "project = ENG"})
    assert done["status"] == "succeeded", done
    assert body["records"] == [] and body["pages_fetched"] == 1
    assert len(api_log("jira")) == 1


def test_search_bad_jql_fails_with_jira_message(api, fresh_sandbox, api_log, oauth_account):
    acct = oauth_account("jira")
    done = api.wait(api.call(SEARCH, account_id=acct, args={"jql": 'status = "Open'})["job_id"])
    assert done["status"] == "failed", done
    # Jira's ErrorCollection has no code field: the code is the HTTP status.
    assert done["error"]["code"] == "http_400"
    assert done["error"]["message"] == (
        "Error in the JQL Query: The quoted string 'Open' has not been completed. "
        "(line 1, character 10)"
    )
    unknown = api.wait(api.call(SEARCH, account_id=acct, args={"jql": "colour = red"})["job_id"])
    assert unknown["status"] == "failed" and unknown["error"] == {
        "code": "http_400",
        "message": "Field 'colour' does not exist or you do not have permission to view it.",
    }
    assert [e["status"] for e in api_log("jira")] == [400, 400]


def test_search_429_waits_retry_after_then_completes(
    api, fresh_sandbox, run_with_result, api_log, oauth_account
):
    """Another app spent the window: the job's first request is refused and waited out; then
    `remaining: 0` (Jira names no reset on a 200) pauses the job instead of asking again."""
    fresh_sandbox.config(rate_budgets={"jira": 3}, rate_window_ms=1000)
    assert fresh_sandbox.spend("jira", "rest/api/3/project/search", 3) == [200] * 3
    acct = oauth_account("jira")
    args = {"jql": "project in (ENG, OPS)", "max_results": 100, "fields": ["summary"]}
    done, body = run_with_result(acct, SEARCH, args=args, fields=["id"])
    assert done["status"] == "succeeded", done
    assert "waiting_rate_limit" in [h["status"] for h in done["history"]]
    assert [r["id"] for r in body["records"]] == issue_ids(range(1, 1001))
    log = [e for e in api_log("jira") if e["path"].endswith("/search/jql")]
    assert log[0]["status"] == 429  # the spent window
    assert sum(e["status"] == 200 for e in log) == 10
    assert sum(e["status"] == 429 for e in log) <= 4  # waited out, then mostly paused ahead


def test_expired_token_refreshes_at_absolute_token_url_and_stores_rotation(
    api, fresh_sandbox, run_with_result, oauth_account
):
    fresh_sandbox.config(volumes={"jira.issues": 100})
    acct = oauth_account("jira", access_token="expired-3lo-token")
    done, body = run_with_result(acct, SEARCH, args={"jql": "project = OPS"}, fields=["id"])
    assert done["status"] == "succeeded", done
    assert [r["id"] for r in body["records"]] == issue_ids(range(2, 101, 2))
    log = fresh_sandbox.requests("jira")
    assert [(e["kind"], e["status"]) for e in log][:3] == [
        ("api", 401),
        ("token", 200),
        ("api", 200),
    ]
    assert log[1]["path"] == "/jira/oauth/token"
    from app.store.tokens import get_access_token

    # The rotated refresh token was stored: refreshing again works (the old one is dead).
    assert get_access_token(acct, force=True)
    view = api.get(f"/v1/accounts/{acct}").json()
    assert view["refresh_count"] == 2 and view["last_refresh_outcome"] == "ok"


def test_reused_refresh_token_403_parks_job_in_needs_reauth(api, fresh_sandbox, oauth_account):
    acct = oauth_account("jira", access_token="expired-3lo-token")
    requests.post(
        f"{fresh_sandbox.url}/_sandbox/revoke", json={"vendor": "jira"}, timeout=5
    ).raise_for_status()
    job = api.call(SEARCH, account_id=acct, args={"jql": "project = ENG"})
    done = api.wait(job["job_id"], states=("needs_reauth", "failed", "succeeded"))
    assert done["status"] == "needs_reauth", done
    token_calls = [e for e in fresh_sandbox.requests("jira") if e["kind"] == "token"]
    assert [e["status"] for e in token_calls] == [403]  # invalid_grant, Atlassian-style


# ---- jira.projects.list (startAt, total, isLast) --------------------------------------------


def test_projects_full_traversal(api, fresh_sandbox, run_with_result, api_log, oauth_account):
    acct = oauth_account("jira")  # 1000 projects
    done, body = run_with_result(acct, PROJECTS, args={"max_results": 100}, fields=["id", "key"])
    assert done["status"] == "succeeded", done
    assert [r["id"] for r in body["records"]] == [str(10000 + n) for n in range(1, 1001)]
    assert [r["key"] for r in body["records"][:3]] == ["ENG", "OPS", "PRJ000003"]
    assert body["pages_fetched"] == 10
    log = api_log("jira")
    assert [e["status"] for e in log] == [200] * 10
    assert "startAt" not in log[0]["query"]
    assert [e["query"].split("startAt=")[1] for e in log[1:]] == [
        str(n) for n in range(100, 1000, 100)
    ]  # isLast (and total) ended it: nothing asked at startAt=1000


def test_projects_single_page_and_empty(
    api, fresh_sandbox, run_with_result, api_log, oauth_account
):
    fresh_sandbox.config(volumes={"jira.projects": 30})
    acct = oauth_account("jira")
    done, body = run_with_result(acct, PROJECTS, args={"order_by": "-key"})
    assert done["status"] == "succeeded", done
    assert [r["key"] for r in body["records"]][:2] == ["PRJ000030", "PRJ000029"]
    assert len(body["records"]) == 30 and body["pages_fetched"] == 1
    assert {"id", "key", "name", "self", "projectTypeKey"} <= set(body["records"][0])
    assert len(api_log("jira")) == 1

    fresh_sandbox.config(volumes={"jira.projects": 0})
    done, body = run_with_result(acct, PROJECTS, args={})
    assert done["status"] == "succeeded", done
    assert body["records"] == [] and body["pages_fetched"] == 1
    assert len(api_log("jira")) == 2


def test_projects_bad_order_by_fails_with_jira_message(api, fresh_sandbox, oauth_account):
    acct = oauth_account("jira")
    done = api.wait(api.call(PROJECTS, account_id=acct, args={"order_by": "size"})["job_id"])
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "http_400"
    assert done["error"]["message"].startswith("Invalid orderBy value 'size'.")


def test_projects_429_waits_retry_after_then_completes(
    api, fresh_sandbox, run_with_result, api_log, oauth_account
):
    fresh_sandbox.config(rate_budgets={"jira": 3}, rate_window_ms=1000)
    assert fresh_sandbox.spend("jira", "rest/api/3/project/search", 3) == [200] * 3
    acct = oauth_account("jira")
    done, body = run_with_result(acct, PROJECTS, args={"max_results": 100}, fields=["id"])
    assert done["status"] == "succeeded", done
    assert "waiting_rate_limit" in [h["status"] for h in done["history"]]
    assert [r["id"] for r in body["records"]] == [str(10000 + n) for n in range(1, 1001)]
    log = api_log("jira")[3:]  # the job's own, after the other app's three
    assert log[0]["status"] == 429 and sum(e["status"] == 429 for e in log) <= 4
    assert sum(e["status"] == 200 for e in log) == 10
