"""GitHub sandbox speaks GitHub: link paging, filters, x-ratelimit-*, error shapes, OAuth."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

import sandbox.github as gh

ISSUES = "/github/repos/octo/hello/issues"
PULLS = "/github/repos/octo/hello/pulls"
TOKEN = "/github/login/oauth/access_token"
RATE = (
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-used",
    "x-ratelimit-reset",
    "x-ratelimit-resource",
)


def bearer(account: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['access_token']}"}


def links(resp) -> dict[str, str]:
    header = resp.headers.get("link", "")
    return {x["rel"]: x["url"] for x in requests.utils.parse_header_links(header)} if header else {}


def rel_order(resp) -> list[str]:
    return [x["rel"] for x in requests.utils.parse_header_links(resp.headers["link"])]


def setup(make_client, mint, issues: int = 1000, pulls: int = 1000, **knobs):
    client = make_client(**knobs)
    client.post(
        "/_sandbox/config", json={"volumes": {"github.issues": issues, "github.pulls": pulls}}
    )
    return client, bearer(mint(client, "github"))


def crawl(client, h, url: str, params: dict | None = None) -> tuple[list[dict], list]:
    """Follow rel="next" as given; returns the records and every response."""
    records, responses = [], []
    resp = client.get(url, params=params, headers=h)
    while True:
        assert resp.status_code == 200, resp.text
        assert all(name in resp.headers for name in RATE)
        records += resp.json()
        responses.append(resp)
        nxt = links(resp).get("next")
        if not nxt:
            return records, responses
        resp = client.get(nxt, headers=h)


def test_link_paging_follows_absolute_urls_to_the_last_page(make_client, mint):
    client, h = setup(make_client, mint, issues=700, pulls=350)
    records, responses = crawl(client, h, ISSUES, {"state": "all", "per_page": 100})
    assert [r["number"] for r in records] == list(range(1050, 0, -1))  # newest first
    assert len(responses) == 11 and len(responses[-1].json()) == 50

    first, middle, last = links(responses[0]), links(responses[5]), links(responses[-1])
    assert set(first) == {"next", "last"}
    assert set(middle) == {"prev", "next", "first", "last"}
    assert set(last) == {"prev", "first"}  # the end signal: no rel="next"
    url = urlsplit(first["next"])
    assert url.scheme == "http" and url.netloc == "testserver"
    assert url.path.startswith("/github/repositories/") and url.path.endswith("/issues")
    assert parse_qs(url.query) == {"state": ["all"], "per_page": ["100"], "page": ["2"]}
    assert parse_qs(urlsplit(first["last"]).query)["page"] == ["11"]
    orders = {tuple(rel_order(r)) for r in responses[1:-1]}
    assert len(orders) > 1  # rels come in a varying order
    again = client.get(responses[3].url, headers=h)
    assert rel_order(again) == rel_order(responses[3])  # ...that is seeded

    # per_page is added when the caller left it out (GitHub's default is 30).
    doc = client.get(ISSUES, params={"state": "all"}, headers=h)
    assert len(doc.json()) == 30
    assert parse_qs(urlsplit(links(doc)["next"]).query)["per_page"] == ["30"]
    assert len(client.get(ISSUES, params={"per_page": 500}, headers=h).json()) == 100


def test_issue_and_pull_shapes(make_client, mint):
    client, h = setup(make_client, mint, issues=30, pulls=20)
    items, _ = crawl(client, h, ISSUES, {"state": "all", "per_page": 100})
    assert len(items) == 50
    prs = [i for i in items if "pull_request" in i]
    assert len(prs) == 20 and all(i["number"] % 2 == 0 for i in prs)
    for rec in items:
        assert {
            "id",
            "number",
            "title",
            "state",
            "html_url",
            "url",
            "user",
            "assignee",
            "labels",
            "created_at",
            "updated_at",
        } <= set(rec)
        assert isinstance(rec["user"]["login"], str)
        assert rec["assignee"] is None or isinstance(rec["assignee"]["login"], str)
        assert all(isinstance(label["name"], str) for label in rec["labels"])
        assert rec["created_at"].endswith("Z") and rec["state"] in ("open", "closed")
        kind = "pull" if "pull_request" in rec else "issues"
        assert rec["html_url"] == f"https://github.com/octo/hello/{kind}/{rec['number']}"
    assert any(r["assignee"] is None for r in items) and any(r["assignee"] for r in items)
    assert len({r["id"] for r in items}) == 50

    pulls, _ = crawl(client, h, PULLS, {"state": "all", "per_page": 100})
    assert [p["number"] for p in pulls] == [p["number"] for p in prs]
    assert all(p["head"]["ref"] and "pull_request" not in p for p in pulls)
    assert {p["id"] for p in pulls}.isdisjoint({i["id"] for i in prs})  # own ids, like GitHub
    fresh, h2 = setup(make_client, mint, issues=30, pulls=20)  # a pure function of the index
    assert fresh.get(ISSUES, headers=h2).json() == client.get(ISSUES, headers=h).json()


def test_filters_match_a_brute_force_scan(make_client, mint):
    client, h = setup(make_client, mint, issues=130, pulls=170)
    everything, _ = crawl(client, h, ISSUES, {"state": "all", "per_page": 100})
    for state in ("open", "closed"):
        got, _ = crawl(client, h, ISSUES, {"state": state, "per_page": 7})
        assert [r["number"] for r in got] == [
            r["number"] for r in everything if r["state"] == state
        ]
    got, _ = crawl(client, h, ISSUES, {"labels": "Enhancement,good first issue", "per_page": 9})
    assert got and [r["number"] for r in got] == [
        r["number"]
        for r in everything
        if r["state"] == "open"
        and {"enhancement", "good first issue"} <= {x["name"] for x in r["labels"]}
    ]
    assert client.get(ISSUES, params={"labels": "nope"}, headers=h).json() == []
    asc, _ = crawl(client, h, PULLS, {"state": "closed", "direction": "asc", "per_page": 11})
    assert [p["number"] for p in asc] == sorted(
        r["number"] for r in everything if "pull_request" in r and r["state"] == "closed"
    )


@pytest.mark.parametrize("issues,pulls", [(0, 0), (5, 0), (0, 5), (13, 40), (40, 13), (97, 97)])
def test_select_equals_naive(issues, pulls):
    for segs_of in (gh.issue_segments, gh.pull_segments):
        for segs in (segs_of(issues, pulls), gh.descending(segs_of(issues, pulls))):
            numbers = [s + j * d for s, d, c in segs for j in range(c)]
            for pred in (lambda n: True, gh.is_closed, lambda n: "bug" in gh.labels_of(n)):
                matches = [n for n in numbers if pred(n)]
                for offset in (0, 1, 11, 12, 25, len(matches)):
                    for limit in (1, 7, 100):
                        got = gh.select(segs, pred, offset, limit)
                        assert got == (matches[offset : offset + limit], len(matches))
    assert sum(gh.is_pull(n, issues, pulls) for n in range(1, issues + pulls + 1)) == pulls


def test_single_page_and_empty_have_no_link(make_client, mint):
    client, h = setup(make_client, mint, issues=40, pulls=0)
    resp = client.get(ISSUES, params={"state": "all", "per_page": 100}, headers=h)
    assert len(resp.json()) == 40 and "link" not in resp.headers
    client.post("/_sandbox/config", json={"volumes": {"github.issues": 0, "github.pulls": 0}})
    for url in (ISSUES, PULLS):
        resp = client.get(url, headers=h)
        assert resp.status_code == 200 and resp.json() == [] and "link" not in resp.headers
        assert all(name in resp.headers for name in RATE)


def test_error_shapes(make_client, mint):
    client, h = setup(make_client, mint)
    resp = client.get("/github/repos/missing/hello/issues", headers=h)
    assert resp.status_code == 404
    assert resp.json() == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/issues/issues#list-repository-issues",
        "status": "404",
    }
    assert all(name in resp.headers for name in RATE)
    assert client.get("/github/repos/missing/x/pulls", headers=h).json()["message"] == "Not Found"
    assert client.get("/github/repositories/7/issues", headers=h).status_code == 404

    resp = client.get(ISSUES, params={"state": "bogus"}, headers=h)
    assert resp.status_code == 422
    body = resp.json()
    assert body["message"] == "Validation Failed"
    assert body["errors"] == [{"resource": "Issue", "field": "state", "code": "invalid"}]
    assert body["documentation_url"].startswith("https://docs.github.com/")
    assert all(name in resp.headers for name in RATE)
    assert (
        client.get(PULLS, params={"state": "x"}, headers=h).json()["errors"][0]["resource"]
        == "PullRequest"
    )

    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eA=="}):
        resp = client.get(ISSUES, headers=headers)
        assert resp.status_code == 401
        assert resp.json() == {
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest",
            "status": "401",
        }
        assert all(name in resp.headers for name in RATE)
    token = h["Authorization"].split()[1]
    assert client.get(ISSUES, headers={"Authorization": f"token {token}"}).status_code == 200
    expired = mint(client, "github", expires_in=0)
    assert client.get(ISSUES, headers=bearer(expired)).json()["message"] == "Bad credentials"
    resp = client.get(ISSUES, headers={**h, "User-Agent": ""})
    assert resp.status_code == 403 and "User-Agent" in resp.text


def test_primary_limit_alternates_403_and_429_with_epoch_reset(make_client, mint):
    client, h = setup(make_client, mint, rate_budget=3, rate_window_ms=400)
    t0 = time.time()
    ok = [client.get(ISSUES, headers=h) for _ in range(3)]
    assert [r.headers["x-ratelimit-remaining"] for r in ok] == ["2", "1", "0"]
    assert [r.headers["x-ratelimit-used"] for r in ok] == ["1", "2", "3"]
    assert all(r.headers["x-ratelimit-resource"] == "core" for r in ok)
    refusals = [client.get(ISSUES, headers=h) for _ in range(3)]
    assert [r.status_code for r in refusals] == [403, 429, 403]
    for resp in refusals:
        assert resp.json()["message"] == "API rate limit exceeded for user ID 1."
        assert resp.json()["documentation_url"].startswith("https://docs.github.com/")
        assert resp.headers["x-ratelimit-remaining"] == "0"
        reset = int(resp.headers["x-ratelimit-reset"])  # epoch seconds
        assert t0 < reset <= t0 + 0.4 + 1.5
    time.sleep(max(0.0, int(refusals[0].headers["x-ratelimit-reset"]) - time.time()) + 0.05)
    assert client.get(ISSUES, headers=h).status_code == 200


def test_primary_limit_status_knob(make_client, mint, monkeypatch):
    monkeypatch.setattr(gh.http, "PRIMARY_LIMIT_STATUS", 429)  # the knobs live with the gate
    client, h = setup(make_client, mint, rate_budget=1, rate_window_ms=5000)
    assert client.get(ISSUES, headers=h).status_code == 200
    assert [client.get(ISSUES, headers=h).status_code for _ in range(3)] == [429, 429, 429]


def test_secondary_limit_has_retry_after(make_client, mint):
    client, h = setup(make_client, mint, rate_window_ms=1000)
    client.post("/_sandbox/config", json={"rate_budgets": {"github:secondary": 2}})
    assert [client.get(ISSUES, headers=h).status_code for _ in range(2)] == [200, 200]
    resp = client.get(ISSUES, headers=h)
    assert resp.status_code == 403
    assert resp.json()["message"].startswith("You have exceeded a secondary rate limit")
    assert resp.headers["retry-after"] == "1"
    assert int(resp.headers["x-ratelimit-remaining"]) > 0  # not the primary limit
    time.sleep(1.05)
    assert client.get(ISSUES, headers=h).status_code == 200


def test_secondary_limit_without_retry_after_knob(make_client, mint, monkeypatch):
    monkeypatch.setattr(gh.http, "SECONDARY_RETRY_AFTER_S", 0)
    client, h = setup(make_client, mint, rate_window_ms=5000)
    client.post("/_sandbox/config", json={"rate_budgets": {"github:secondary": 1}})
    assert client.get(ISSUES, headers=h).status_code == 200
    resp = client.get(ISSUES, headers=h)
    assert resp.status_code == 403 and "retry-after" not in resp.headers
    assert "secondary rate limit" in resp.json()["message"]


def refresh(client, account: dict, refresh_token: str | None = None, json: bool = True, **over):
    form = {
        "grant_type": "refresh_token",
        "client_id": account["client_id"],
        "client_secret": account["client_secret"],
        "refresh_token": refresh_token or account["refresh_token"],
        **over,
    }
    headers = {"Accept": "application/json"} if json else {}
    return client.post(TOKEN, data=form, headers=headers)


def test_refresh_rotates_and_reuse_is_a_200_error(make_client, mint):
    client = make_client(token_ttl_s=28800)
    account = mint(client, "github")
    resp = refresh(client, account)
    assert resp.status_code == 200
    doc = resp.json()
    assert set(doc) == {
        "access_token",
        "expires_in",
        "refresh_token",
        "refresh_token_expires_in",
        "token_type",
        "scope",
    }
    assert doc["access_token"].startswith("ghu_") and doc["refresh_token"].startswith("ghr_")
    assert doc["expires_in"] == 28800 and doc["refresh_token_expires_in"] == 15811200
    assert doc["token_type"] == "bearer" and doc["scope"] == ""
    assert client.get(ISSUES, headers=bearer(doc)).status_code == 200

    reused = refresh(client, account)  # the old refresh token was rotated away
    assert reused.status_code == 200
    assert reused.json()["error"] == "bad_refresh_token"
    assert reused.json()["error_description"] == "The refresh token passed is incorrect or expired."
    assert reused.json()["error_uri"].startswith("https://docs.github.com/")
    assert "access_token" not in reused.json()

    second = refresh(client, account, doc["refresh_token"], json=False)  # form-encoded answer
    assert second.status_code == 200
    assert second.headers["content-type"].startswith("application/x-www-form-urlencoded")
    form = parse_qs(second.text)
    assert form["token_type"] == ["bearer"] and form["refresh_token"][0].startswith("ghr_")
    assert form["refresh_token"][0] != doc["refresh_token"]

    bad = refresh(client, account, form["refresh_token"][0], client_secret="wrong")
    assert bad.status_code == 200 and bad.json()["error"] == "incorrect_client_credentials"
    grant = refresh(client, account, grant_type="authorization_code")
    assert grant.status_code == 200 and grant.json()["error"] == "unsupported_grant_type"
    assert client.get("/_sandbox/stats").json()["refresh_calls"]["github"] == 5
    log = client.get("/_sandbox/requests", params={"vendor": "github"}).json()
    assert [e["status"] for e in log if e["kind"] == "token"] == [200] * 5


def test_refresh_without_rotation_keeps_the_token(make_client, mint):
    client = make_client()
    client.post("/_sandbox/config", json={"rotate_refresh_tokens": {"github": False}})
    account = mint(client, "github")
    doc = refresh(client, account).json()
    assert doc["refresh_token"] == account["refresh_token"]
    assert refresh(client, account).json()["access_token"].startswith("ghu_")
