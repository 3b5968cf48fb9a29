"""GitHub tools end to end (real API, Redis, worker; the sandbox as GitHub), plus the
connector's error classification and link guard against canned responses."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from fakes import FakeHttp, canned
from support import statuses

from sandbox.github import is_closed, is_pull

OWNER, REPO = "octo", "hello"
# tool -> the endpoint's name in the sandbox paths
TOOLS = {"github.issues.list": "issues", "github.pulls.list": "pulls"}


def on_repo(args: dict[str, Any]) -> dict[str, Any]:
    """A tool's args on the sandbox's repository."""
    return {"owner": OWNER, "repo": REPO, **args}


def volumes(sandbox: Any, issues: int, pulls: int, **config: Any) -> None:
    sandbox.config(volumes={"github.issues": issues, "github.pulls": pulls}, **config)


def expected(tool: str, issues: int, pulls: int, state: str = "all") -> list[int]:
    """The numbers the tool must return, newest first."""
    numbers = range(issues + pulls, 0, -1)
    if tool == "github.pulls.list":
        numbers = [n for n in numbers if is_pull(n, issues, pulls)]
    return [n for n in numbers if state == "all" or is_closed(n) == (state == "closed")]


def no_back_to_back_refusals(log: list[dict[str, Any]]) -> bool:
    codes = [e["status"] for e in log]
    return all(200 in pair for pair in zip(codes, codes[1:], strict=False))


@pytest.mark.parametrize("tool", list(TOOLS))
def test_full_traversal_once_in_order_and_stops_at_end_signal(
    api, fresh_sandbox, tool, run, api_log, oauth_account, record_ids
):
    volumes(fresh_sandbox, 600, 1050)  # issues endpoint: 1650 items; pulls endpoint: 1050
    acc = oauth_account("github")
    done = run(acc, tool, on_repo({"state": "all", "per_page": 100}), fields=["number"])
    assert done["status"] == "succeeded" and done["truncated"] is False, done
    want = expected(tool, 600, 1050)
    assert len(want) >= 1000 and record_ids(done, "number") == want
    pages = -(-len(want) // 100)
    log = api_log("github", f"*/{TOOLS[tool]}")
    assert [e["status"] for e in log] == [200] * pages
    # The first request is built from the args; every later one is the rel="next" URL as
    # given (GitHub addresses the repository by id there); the last page had no rel="next"
    # and nothing was asked after it.
    assert log[0]["path"] == f"/github/repos/{OWNER}/{REPO}/{TOOLS[tool]}"
    assert all(e["path"].startswith("/github/repositories/") for e in log[1:])
    assert [dict(p.split("=") for p in e["query"].split("&")).get("page") for e in log] == [
        None,
        *map(str, range(2, pages + 1)),
    ]


@pytest.mark.parametrize("tool", list(TOOLS))
def test_empty_collection_and_single_page(api, fresh_sandbox, tool, run, api_log, oauth_account):
    volumes(fresh_sandbox, 0, 0)
    acc = oauth_account("github")
    empty = run(acc, tool, on_repo({}))
    assert empty["status"] == "succeeded", empty
    assert api.result(empty["job_id"])["records"] == []
    assert len(api_log("github", f"*/{TOOLS[tool]}")) == 1

    volumes(fresh_sandbox, 40, 45)
    single = run(acc, tool, on_repo({"state": "open"}))  # 57 issues+PRs or 30 PRs: one page
    assert single["status"] == "succeeded", single
    records = api.result(single["job_id"])["records"]
    assert [r["number"] for r in records] == expected(tool, 40, 45, "open")
    assert all(r["state"] == "open" and r["user"]["login"] for r in records)
    assert len(api_log("github", f"*/{TOOLS[tool]}")) == 2  # one request for the single page


def test_labels_and_state_reach_github(api, fresh_sandbox, run, api_log, oauth_account):
    volumes(fresh_sandbox, 300, 200)
    acc = oauth_account("github")
    done = run(
        acc,
        "github.issues.list",
        on_repo({"state": "closed", "labels": ["bug"], "per_page": 7}),
        fields=["number", "state", "labels", "pull_request.url"],
    )
    assert done["status"] == "succeeded", done
    records = api.result(done["job_id"])["records"]
    assert records and all(r["state"] == "closed" for r in records)
    assert all("bug" in [x["name"] for x in r["labels"]] for r in records)
    assert any("pull_request" in r for r in records)  # the issues endpoint lists PRs too
    query = api_log("github", "*/issues")[0]["query"]
    assert "state=closed" in query and "labels=bug" in query and "per_page=7" in query


@pytest.mark.parametrize("tool", list(TOOLS))
def test_missing_repository_fails_with_githubs_message(
    api, fresh_sandbox, tool, api_log, oauth_account
):
    acc = oauth_account("github")
    job = api.call(tool, account_id=acc, args={"owner": "missing", "repo": REPO})
    done = api.wait(job["job_id"])
    assert done["status"] == "failed", done
    assert done["error"] == {**done["error"], "code": "http_404", "message": "Not Found"}
    assert [e["status"] for e in api_log("github", f"*/{TOOLS[tool]}")] == [404]  # no retry


def test_bad_args_are_refused_before_github(api, fresh_sandbox, api_log, oauth_account):
    acc = oauth_account("github")
    for args in (
        {"owner": "../x", "repo": REPO},
        {"owner": OWNER, "repo": ".."},
        {"owner": OWNER, "repo": REPO, "state": "bogus"},
        {"owner": OWNER, "repo": REPO, "per_page": 101},
    ):
        resp = api.post("/v1/jobs", {"tool": "github.issues.list", "account_id": acc, "args": args})
        assert resp.status_code in (400, 422), (args, resp.text)
    assert api_log("github", "*/issues") == []


@pytest.mark.parametrize("refusal", [403, 429])
def test_primary_limit_refusal_waits_for_the_epoch_reset_then_paces(
    api, fresh_sandbox, refusal, run, api_log, oauth_account, record_ids
):
    """Another app spent the window: the job's first request is refused (the sandbox
    alternates GitHub's 403 and 429) and waited out to `x-ratelimit-reset`; from then on
    `remaining: 0` defers the next request to the reset, so GitHub never refuses again."""
    tool = "github.issues.list"
    volumes(fresh_sandbox, 100, 250, rate_budgets={"github": 2}, rate_window_ms=2000)
    spent = fresh_sandbox.spend("github", f"repos/{OWNER}/{REPO}/issues", 2 + (refusal == 429))
    assert spent == [200, 200, 403][: len(spent)]
    acc = oauth_account("github")
    done = run(acc, tool, on_repo({"state": "all", "per_page": 50}), fields=["number"])
    assert done["status"] == "succeeded", done
    assert "waiting_rate_limit" in statuses(done)
    assert record_ids(done, "number") == expected(tool, 100, 250)  # 7 pages
    codes = [e["status"] for e in api_log("github", f"*/{TOOLS[tool]}")[len(spent) :]]
    assert codes == [refusal] + [200] * 7


@pytest.mark.parametrize("tool", list(TOOLS))
def test_secondary_limit_honours_retry_after(
    api, fresh_sandbox, tool, run, api_log, oauth_account, record_ids
):
    volumes(fresh_sandbox, 100, 100, rate_budgets={"github:secondary": 2}, rate_window_ms=1000)
    acc = oauth_account("github")
    done = run(acc, tool, on_repo({"state": "all", "per_page": 40}), fields=["number"])
    assert done["status"] == "succeeded", done
    assert "waiting_rate_limit" in statuses(done)
    assert record_ids(done, "number") == expected(tool, 100, 100)
    log = api_log("github", f"*/{TOOLS[tool]}")
    assert 403 in [e["status"] for e in log]
    assert no_back_to_back_refusals(log)


def test_expired_token_refreshes_at_github_and_reuse_needs_reauth(
    api, fresh_sandbox, run, oauth_account
):
    volumes(fresh_sandbox, 20, 0)
    acc = oauth_account("github", expires_in=1)  # inside the refresh buffer already
    done = run(acc, "github.issues.list", on_repo({}))
    assert done["status"] == "succeeded", done
    tokens = [e for e in fresh_sandbox.requests("github") if e["kind"] == "token"]
    assert [(e["path"], e["status"]) for e in tokens] == [("/github/login/oauth/access_token", 200)]
    view = api.get(f"/v1/accounts/{acc}").json()
    assert view["refresh_count"] == 1 and view["last_refresh_outcome"] == "ok"

    # A refresh token GitHub no longer knows: HTTP 200 {"error": "bad_refresh_token"}.
    stale = oauth_account("github", expires_in=1)
    requests.post(
        f"{fresh_sandbox.url}/_sandbox/revoke", json={"vendor": "github"}, timeout=5
    ).raise_for_status()
    parked = api.wait(
        api.call("github.issues.list", account_id=stale, args={"owner": OWNER, "repo": REPO})[
            "job_id"
        ],
        states=("needs_reauth", "failed", "succeeded"),
    )
    assert parked["status"] == "needs_reauth", parked
    # the sandbox is no GitHub host: its code is named, its description never shown
    assert "bad_refresh_token" in parked["error"]["message"]
    assert "incorrect or expired" not in parked["error"]["message"]


# ---- the connector alone, against canned responses ---------------------------------------


def test_classify_leaves_limits_to_the_generic_check_and_raises_the_rest():
    from connectors import ratelimit
    from connectors.errors import VendorError
    from connectors.github import classify

    limited = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1900000000"}
    classify(canned(403, {"message": "API rate limit exceeded for user ID 1."}, limited))
    classify(canned(429, {"message": "API rate limit exceeded for user ID 1."}, limited))
    classify(
        canned(
            403,
            {"message": "You have exceeded a secondary rate limit."},
            {"x-ratelimit-remaining": "4000", "retry-after": "60"},
        )
    )
    no_timing = canned(403, {"message": "You have exceeded a secondary rate limit."},
                       {"x-ratelimit-remaining": "4000", "x-ratelimit-reset": "1"})
    classify(no_timing)  # a limit, not an error: the generic check waits
    rate = ratelimit.parse(no_timing.headers, 403, no_timing.content)
    assert rate.limited and rate.wait == 60  # no retry-after: at least a minute
    classify(canned(401, {"message": "Bad credentials"}))
    classify(canned(502, {"message": "Server Error"}))
    classify(canned(200, []))
    for status, body in (
        (403, {"message": "Resource not accessible by integration"}),
        (422, {"message": "Validation Failed", "errors": []}),
        (410, {"message": "Issues are disabled for this repo"}),
    ):
        with pytest.raises(VendorError) as err:
            classify(canned(status, body, {"x-ratelimit-remaining": "4999"}))
        assert (err.value.code, err.value.message) == (f"http_{status}", body["message"])


def test_a_link_to_another_host_is_refused():
    from connectors.base import Page
    from connectors.errors import VendorError
    from connectors.github import VENDOR, _within

    base = "https://ghe.example.com/api/v3"
    assert _within(f"{base}/repositories/1/issues?page=2", base)
    assert _within("HTTPS://GHE.example.com/api/v3/x".replace("HTTPS", "https"), base)
    assert not _within("https://evil.example/api/v3/repositories/1/issues?page=2", base)
    assert not _within("https://ghe.example.com/api/v30/x", base)
    assert not _within("http://ghe.example.com/api/v3/x", base)

    def linking(link: str) -> FakeHttp:
        page = canned(200, [{"id": 1, "number": 1}], {"link": f'<{link}>; rel="next"'})
        return FakeHttp(page, base_url=base, vendor=VENDOR)

    tool = next(t for t in VENDOR.tools if t.name == "github.issues.list")
    args = tool.args(owner=OWNER, repo=REPO)
    page = tool.fetch(linking(f"{base}/repositories/9/issues?page=2"), args, None)
    assert isinstance(page, Page) and page.next_cursor.endswith("page=2")
    with pytest.raises(VendorError) as err:
        tool.fetch(linking("https://evil.example/steal?page=2"), args, None)
    assert err.value.code == "foreign_next_link"
