"""Jira sandbox speaks Jira Cloud: token paging without total, page beans, JQL errors,
burst 429s with Retry-After and an ISO reset, 3LO rotating refresh tokens."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from sandbox.jira import decode_token, encode_token

SEARCH = "/jira/rest/api/3/search/jql"
PROJECTS = "/jira/rest/api/3/project/search"
TOKEN = "/jira/oauth/token"


def bearer(account: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['access_token']}"}


def refresh(client, account: dict, refresh_token: str | None = None, *, as_json=False, **over):
    body = {
        "grant_type": "refresh_token",
        "client_id": account["client_id"],
        "client_secret": account["client_secret"],
        "refresh_token": refresh_token or account["refresh_token"],
        **over,
    }
    return client.post(TOKEN, json=body) if as_json else client.post(TOKEN, data=body)


def crawl(client, h, **params) -> tuple[list[dict], list[dict]]:
    """Every issue and every page body, following nextPageToken until it is absent."""
    issues, pages = [], []
    while True:
        doc = client.get(SEARCH, params=params, headers=h).json()
        pages.append(doc)
        issues += doc["issues"]
        if "nextPageToken" not in doc:
            return issues, pages
        params = {**params, "nextPageToken": doc["nextPageToken"]}


def test_token_paging_has_no_total_and_ends_with_is_last(make_client, mint):
    client = make_client()  # 1000 issues in ENG and OPS, half of them open
    h = bearer(mint(client, "jira"))
    issues, pages = crawl(client, h, jql="project in (ENG, OPS)", maxResults=100)
    assert [i["id"] for i in issues] == [str(10000 + i) for i in range(1, 1001)]
    assert len(pages) == 10
    for doc in pages[:-1]:
        assert list(doc) == ["issues", "nextPageToken", "isLast"] and doc["isLast"] is False
    assert list(pages[-1]) == ["issues", "isLast"] and pages[-1]["isLast"] is True
    assert all("total" not in doc for doc in pages)
    # Without `fields` the enhanced search returns only ids.
    assert issues[0] == {"id": "10001"}
    # Default page size is 50; more than 100 is silently capped unless only ids are asked.
    assert (
        len(client.get(SEARCH, params={"jql": "project = ENG"}, headers=h).json()["issues"]) == 50
    )
    capped = {"jql": "project = ENG", "maxResults": 500, "fields": "summary"}
    assert len(client.get(SEARCH, params=capped, headers=h).json()["issues"]) == 100
    ids = {"jql": "project = ENG", "maxResults": 500, "fields": "id"}
    assert len(client.get(SEARCH, params=ids, headers=h).json()["issues"]) == 500


def test_jql_subset_filters(make_client, mint):
    client = make_client()
    h = bearer(mint(client, "jira"))

    def ids(jql: str) -> list[int]:
        found, _ = crawl(client, h, jql=jql, maxResults=100)
        return [int(i["id"]) - 10000 for i in found]

    assert ids("project = ENG") == list(range(1, 1001, 2))
    assert ids('project = "OPS" ORDER BY created ASC') == list(range(2, 1001, 2))
    assert len(ids('status = "Open"')) == 500
    assert ids('status = "Open"') == ids("statusCategory != Done")
    assert ids("project = ENG AND statusCategory != Done") == list(range(1, 1001, 4))
    assert ids("project = OPS AND NOT (status = Open)") == list(range(4, 1001, 4))
    assert ids("project = ENG OR status = Done") == sorted(
        set(range(1, 1001, 2)) | set(range(3, 1001, 4)) | set(range(4, 1001, 4))
    )
    assert ids("assignee = currentUser() AND labels IS EMPTY AND project = OPS") == list(
        range(2, 1001, 2)
    )  # clauses on other fields are accepted and ignored
    assert ids("project = PRJ000003") == []  # a real project without issues


def test_issue_shape_and_fields(make_client, mint):
    client = make_client()
    h = bearer(mint(client, "jira"))
    fields = "summary,status,priority,assignee,created,updated,project"
    doc = client.get(
        SEARCH, params={"jql": "project = ENG", "fields": fields, "maxResults": 5}, headers=h
    ).json()
    first = doc["issues"][0]
    assert {"id", "key", "self", "fields"} <= set(first)
    assert first["key"] == "ENG-1" and first["self"].endswith("/rest/api/3/issue/10001")
    f = first["fields"]
    assert set(f) == {"summary", "status", "priority", "assignee", "created", "updated", "project"}
    assert f["status"]["name"] == "Open" and f["status"]["statusCategory"]["key"] == "new"
    assert f["priority"]["name"] in {"Highest", "High", "Medium", "Low", "Lowest"}
    assert f["project"]["key"] == "ENG"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", f["created"])
    assert doc["issues"][2]["fields"]["assignee"] is None  # issue 5: every 5th unassigned
    assert isinstance(first["fields"]["assignee"]["displayName"], str)
    excluded = client.get(
        SEARCH, params={"jql": "project = ENG", "fields": "*all,-reporter", "maxResults": 1},
        headers=h,
    ).json()["issues"][0]["fields"]  # fmt: skip
    assert "reporter" not in excluded and "labels" in excluded and "issuetype" in excluded
    repeated = client.get(
        f"{SEARCH}?jql=project%3DENG&fields=summary&fields=status&maxResults=1", headers=h
    ).json()["issues"][0]["fields"]
    assert set(repeated) == {"summary", "status"}
    posted = client.post(
        SEARCH, json={"jql": "project = OPS", "fields": ["summary"], "maxResults": 2}, headers=h
    ).json()
    assert [i["key"] for i in posted["issues"]] == ["OPS-1", "OPS-2"]


def test_jql_errors_are_jira_shaped(make_client, mint):
    client = make_client()
    h = bearer(mint(client, "jira"))
    cases = {
        'status = "Open': "Error in the JQL Query: The quoted string 'Open' has not been "
        "completed. (line 1, character 10)",
        "foo = bar": "Field 'foo' does not exist or you do not have permission to view it.",
        "project = NOPE": "The value 'NOPE' does not exist for the field 'project'.",
        "status = Bogus": "The value 'Bogus' does not exist for the field 'status'.",
        "project ENG": "Error in the JQL Query: Expecting operator but got 'ENG'.",
        "project = ENG AND": "Error in the JQL Query: Expecting a field name but got 'EOF'.",
        "(project = ENG": "Error in the JQL Query: Expecting ')' but got 'EOF'.",
        "project ~ ENG": "The operator '~' is not supported by the 'project' field.",
        "": "Unbounded JQL queries are not allowed here.",
        "ORDER BY created DESC": "Unbounded JQL queries are not allowed here.",
    }
    for jql, message in cases.items():
        resp = client.get(SEARCH, params={"jql": jql}, headers=h)
        assert resp.status_code == 400, jql
        body = resp.json()
        assert set(body) == {"errorMessages", "errors"} and body["errors"] == {}
        assert body["errorMessages"][0].startswith(message), (jql, body)
        assert "X-RateLimit-Remaining" in resp.headers
    token = encode_token(50, "project = ENG")
    assert decode_token(token, "project = ENG") == 50
    assert decode_token(token, "project = OPS") is None  # tokens are bound to their query
    bad = client.get(SEARCH, params={"jql": "project = OPS", "nextPageToken": token}, headers=h)
    assert bad.status_code == 400 and bad.json()["errorMessages"]


def test_project_page_bean(make_client, mint):
    client = make_client()
    h = bearer(mint(client, "jira"))
    client.post("/_sandbox/config", json={"volumes": {"jira.projects": 120}})
    keys, start, pages = [], 0, []
    while True:
        doc = client.get(PROJECTS, params={"startAt": start, "maxResults": 50}, headers=h).json()
        pages.append(doc)
        keys += [p["key"] for p in doc["values"]]
        if doc["isLast"]:
            break
        start = doc["startAt"] + len(doc["values"])
    assert keys[:3] == ["ENG", "OPS", "PRJ000003"] and len(keys) == 120 == len(set(keys))
    assert keys == sorted(keys)  # default order: key
    assert [(d["startAt"], d["maxResults"], d["total"], d["isLast"]) for d in pages] == [
        (0, 50, 120, False), (50, 50, 120, False), (100, 50, 120, True),
    ]  # fmt: skip
    assert "nextPage" in pages[0] and "nextPage" not in pages[-1]
    assert pages[0]["nextPage"].endswith("/rest/api/3/project/search?maxResults=50&startAt=50")
    assert {"id", "key", "name", "self", "projectTypeKey"} <= set(pages[0]["values"][0])
    desc = client.get(PROJECTS, params={"orderBy": "-key", "maxResults": 2}, headers=h).json()
    assert [p["key"] for p in desc["values"]] == ["PRJ000120", "PRJ000119"]
    bad = client.get(PROJECTS, params={"orderBy": "shoe size"}, headers=h)
    assert bad.status_code == 400 and "orderBy" in bad.json()["errorMessages"][0]
    client.post("/_sandbox/config", json={"volumes": {"jira.projects": 0}})
    empty = client.get(PROJECTS, headers=h).json()
    assert empty["values"] == [] and empty["isLast"] is True and empty["total"] == 0


def test_401_shape(make_client, mint):
    client = make_client()
    body = {"code": 401, "message": "Client must be authenticated to access this resource."}
    for headers in ({}, {"Authorization": "Bearer nope"}):
        for path in (SEARCH, PROJECTS):
            resp = client.get(path, params={"jql": "project = ENG"}, headers=headers)
            assert resp.status_code == 401 and resp.json() == body
    expired = mint(client, "jira", expires_in=0)
    assert client.get(PROJECTS, headers=bearer(expired)).json() == body


def test_rate_headers_near_limit_and_429(make_client, mint):
    client = make_client(rate_budget=5, rate_window_ms=1000)
    h = bearer(mint(client, "jira"))
    seen = [client.get(PROJECTS, params={"maxResults": 1}, headers=h).headers for _ in range(5)]
    assert [s["X-RateLimit-Remaining"] for s in seen] == ["4", "3", "2", "1", "0"]
    assert all(s["X-RateLimit-Limit"] == "5" for s in seen)
    assert [s.get("X-RateLimit-NearLimit") for s in seen] == [None, None, None, "true", "true"]
    before = time.time()
    resp = client.get(SEARCH, params={"jql": "project = ENG"}, headers=h)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "1"
    assert resp.headers["RateLimit-Reason"] == "jira-burst-based"
    reset = resp.headers["X-RateLimit-Reset"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", reset)
    when = datetime.strptime(reset, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC).timestamp()
    assert before <= when <= before + 61  # minute precision, never in the past
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert resp.headers["X-RateLimit-NearLimit"] == "true"
    time.sleep(1.05)
    assert client.get(PROJECTS, headers=h).status_code == 200


def test_refresh_rotates_and_reuse_is_403(make_client, mint):
    client = make_client(token_ttl_s=3600)
    account = mint(client, "jira")
    resp = refresh(client, account, as_json=True)  # Atlassian documents a JSON body
    assert resp.status_code == 200
    doc = resp.json()
    assert {"access_token", "expires_in", "token_type", "refresh_token", "scope"} == set(doc)
    assert doc["expires_in"] == 3600 and doc["token_type"] == "Bearer"
    assert doc["refresh_token"] != account["refresh_token"]  # rotates by default
    assert client.get(PROJECTS, headers=bearer(doc)).status_code == 200

    reused = refresh(client, account)  # form body works too
    assert reused.status_code == 403
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": "Unknown or invalid refresh token.",
    }
    second = refresh(client, account, doc["refresh_token"])
    assert second.status_code == 200 and second.json()["refresh_token"] != doc["refresh_token"]
    bad_client = refresh(client, account, second.json()["refresh_token"], client_secret="x")
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "access_denied"
    assert client.get("/_sandbox/stats").json()["refresh_calls"]["jira"] == 4
    log = client.get("/_sandbox/requests", params={"vendor": "jira"}).json()
    assert [e["status"] for e in log if e["kind"] == "token"] == [200, 403, 200, 401]
