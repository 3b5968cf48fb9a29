"""GitHub writes over real HTTP: issues, updates, comments, faults, the content limit, and the
body-marker lookup through the listing."""

from __future__ import annotations

import pytest
import requests

REPO = "/github/repos/acme/widgets"
MARK = "<!-- toolqueue:op=job-1:0 -->"
NEW = {"title": "Printer on fire", "body": f"It smokes.\n\n{MARK}", "labels": ["bug"]}
CUT = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


@pytest.fixture
def gh(live_sandbox):
    live_sandbox.config(volumes={"github.issues": 30, "github.pulls": 20})
    body = {"vendor": "github", "client_id": "cid", "client_secret": "cs"}
    token = requests.post(f"{live_sandbox.url}/_sandbox/tokens", json=body).json()
    live_sandbox.h = {"Authorization": f"Bearer {token['access_token']}"}
    return live_sandbox


def call(live, method: str, path: str, doc=None, **params) -> requests.Response:
    url = f"{live.url}{REPO}{path}"
    return requests.request(method, url, json=doc, params=params, headers=live.h, timeout=5)


def find_marker(live, marker: str) -> list[dict]:
    params = {"creator": "toolqueue-sandbox", "state": "all", "sort": "created",
              "direction": "desc", "per_page": 100}  # fmt: skip
    page = call(live, "GET", "/issues", **params)
    assert page.status_code == 200, page.text
    return [i for i in page.json() if marker in (i["body"] or "")]


def test_a_created_issue_is_numbered_after_the_seeded_and_listed_first(gh):
    resp = call(gh, "POST", "/issues", NEW)
    assert resp.status_code == 201, resp.text
    made = resp.json()
    assert made["number"] == 51 and made["user"]["login"] == "toolqueue-sandbox"
    assert (made["title"], made["state"], [x["name"] for x in made["labels"]]) == (
        "Printer on fire", "open", ["bug"],
    )  # fmt: skip
    assert "x-ratelimit-remaining" in resp.headers
    assert call(gh, "GET", "/issues/51").json() == made
    listing = call(gh, "GET", "/issues", state="all", sort="created", direction="desc").json()
    assert [i["number"] for i in listing[:3]] == [51, 50, 49]
    assert len(listing) == 30
    asc = call(gh, "GET", "/issues", state="all", direction="asc", page=2, per_page=50).json()
    assert [i["number"] for i in asc] == [51]
    assert [i["number"] for i in find_marker(gh, MARK)] == [51]
    assert call(gh, "GET", "/issues", creator="octocat", state="all").json()[0]["number"] == 50
    assert [(e["kind"], e["object_id"]) for e in gh.effects("github")] == [
        ("create", "acme/widgets#51")
    ]


def test_update_replaces_fields_and_closes(gh):
    n = call(gh, "POST", "/issues", NEW).json()["number"]
    resp = call(gh, "PATCH", f"/issues/{n}", {"state": "closed", "labels": [], "title": "Out"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["state"], body["labels"], body["title"]) == ("closed", [], "Out")
    assert body["closed_at"] and body["body"] == NEW["body"]
    open_ones = call(gh, "GET", "/issues", creator="toolqueue-sandbox").json()
    assert open_ones == []  # state=open by default
    seeded = call(gh, "PATCH", "/issues/7", {"title": "Renamed"})
    assert seeded.status_code == 200 and seeded.json()["title"] == "Renamed"
    seven = [i for i in call(gh, "GET", "/issues", state="all").json() if i["number"] == 7]
    assert seven[0]["title"] == "Renamed"
    assert call(gh, "PATCH", "/issues/999", {"title": "x"}).status_code == 404
    kinds = [(e["kind"], e["object_id"]) for e in gh.effects("github")]
    assert kinds == [("create", f"acme/widgets#{n}"), ("update", f"acme/widgets#{n}"),
                     ("update", "acme/widgets#7")]  # fmt: skip


def test_validation_errors_are_github_shaped(gh):
    resp = call(gh, "POST", "/issues", {"body": "no title"})
    assert resp.status_code == 422
    body = resp.json()
    assert body["message"] == "Validation Failed"
    assert body["errors"] == [{"resource": "Issue", "code": "missing_field", "field": "title"}]
    assert body["documentation_url"].startswith("https://docs.github.com/rest")
    for bad, field in (({"title": "t", "labels": "bug"}, "labels"),
                       ({"title": "t", "body": 5}, "body")):  # fmt: skip
        assert call(gh, "POST", "/issues", bad).json()["errors"][0]["field"] == field
    assert call(gh, "PATCH", "/issues/3", {"state": "gone"}).json()["errors"][0] == {
        "resource": "Issue", "code": "invalid", "field": "state"
    }  # fmt: skip
    raw = requests.post(f"{gh.url}{REPO}/issues", data="{", headers=gh.h, timeout=5)
    assert raw.status_code == 400 and raw.json()["message"] == "Problems parsing JSON"
    missing = requests.post(f"{gh.url}/github/repos/missing/x/issues", json=NEW, headers=gh.h)
    assert missing.status_code == 404
    assert gh.effects("github") == []


def test_comments_are_created_and_paged(gh):
    for k in range(3):
        resp = call(gh, "POST", "/issues/4/comments", {"body": f"c{k} {MARK}"})
        assert resp.status_code == 201, resp.text
        assert resp.json()["user"]["login"] == "toolqueue-sandbox"
    page = call(gh, "GET", "/issues/4/comments", per_page=2, page=2)
    assert [c["body"][:2] for c in page.json()] == ["c2"]
    assert 'rel="prev"' in page.headers["link"]
    assert [c["body"][:2] for c in call(gh, "GET", "/issues/4/comments").json()] == [
        "c0", "c1", "c2",
    ]  # fmt: skip
    empty = call(gh, "POST", "/issues/4/comments", {})
    assert empty.status_code == 422 and empty.json()["errors"] == [
        {"resource": "IssueComment", "code": "missing_field", "field": "body"}
    ]
    assert call(gh, "POST", "/issues/999/comments", {"body": "x"}).status_code == 404
    assert len(gh.effects("github")) == 3


def test_a_failure_before_commit_is_a_503_with_no_effect(gh):
    gh.config(fail_before_commit_next=1)
    assert call(gh, "POST", "/issues", NEW).status_code == 503
    assert gh.effects("github") == [] and find_marker(gh, MARK) == []


def test_a_create_committed_then_dropped_is_found_by_its_marker(gh):
    gh.config(drop_after_commit_next=1)
    with pytest.raises(CUT):
        call(gh, "POST", "/issues", NEW)
    found = find_marker(gh, MARK)
    assert [f"acme/widgets#{i['number']}" for i in found] == [
        e["object_id"] for e in gh.effects("github")
    ]
    per_object = requests.get(f"{gh.url}/github/_sandbox/effects").json()["per_object"]
    assert per_object == {"acme/widgets#51": {"create": 1, "update": 0, "noop": 0}}


def test_a_comment_committed_then_dropped_is_listed(gh):
    gh.config(drop_after_commit_next=1)
    with pytest.raises(CUT):
        call(gh, "POST", "/issues/2/comments", {"body": MARK})
    assert [c["body"] for c in call(gh, "GET", "/issues/2/comments").json()] == [MARK]


def test_write_latency_holds_the_write(gh):
    gh.config(write_latency_ms=300)
    resp = call(gh, "POST", "/issues", NEW)
    assert resp.status_code == 201 and resp.elapsed.total_seconds() >= 0.3


def test_the_content_creation_limit_is_a_secondary_403_with_retry_after(gh):
    cfg = gh.config()
    assert (cfg["github_content_per_minute"], cfg["github_content_per_hour"]) == (80, 500)
    gh.config(github_content_per_minute=2)
    assert call(gh, "POST", "/issues", NEW).status_code == 201
    assert call(gh, "POST", "/issues/1/comments", {"body": "x"}).status_code == 201
    assert call(gh, "PATCH", "/issues/1", {"title": "updates are not content creation"}).ok
    refused = call(gh, "POST", "/issues", NEW)
    assert refused.status_code == 403
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.json()["message"].startswith("You have exceeded a secondary rate limit")
    assert len(gh.effects("github")) == 3
    gh.config(github_content_per_minute=80, github_content_per_hour=3)
    assert call(gh, "POST", "/issues", NEW).status_code == 201  # the hour holds 2 of 3
    hourly = call(gh, "POST", "/issues", NEW)
    assert hourly.status_code == 403 and 60 < int(hourly.headers["retry-after"]) <= 3600
    assert len(gh.effects("github")) == 4


def test_writes_need_auth(gh):
    resp = requests.post(f"{gh.url}{REPO}/issues", json=NEW, timeout=5)
    assert resp.status_code == 401 and resp.json()["message"] == "Bad credentials"
    assert gh.effects("github") == []
