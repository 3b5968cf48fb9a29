"""/v1/proxy: the synchronous pass-through, against the real API and the vendor sandbox.

The caller gets the vendor's status and body with normalized `ratelimit-*` headers; rate-limit
refusals (a 429, or a vendor's 403 equivalent) become a 429 with Retry-After and are never
retried; a 401 is refreshed and retried exactly once.
"""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

CONTACTS = "crm/v3/objects/contacts"
RATE_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


def api_calls(sandbox, vendor="hubspot"):
    return [e for e in sandbox.requests(vendor) if e.get("kind", "api") == "api"]


def raw_get(api, path: str) -> tuple[int, dict]:
    """A request whose path no client library normalizes (`..` stays `..`)."""
    parts = urlsplit(api.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": api.s.headers["Authorization"]})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def test_passes_status_body_and_normalized_limits(api, fresh_sandbox):
    fresh_sandbox.config(rate_budget=5, rate_window_ms=10000)
    account = api.account(fresh_sandbox, "hubspot")
    resp = api.get(
        f"/v1/proxy/{account}/{CONTACTS}",
        params={"limit": 3, "properties": "email"},
        headers={"X-Not-Allowed": "1", "Cookie": "a=b"},
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    doc = resp.json()
    assert len(doc["results"]) == 3 and "paging" in doc
    assert resp.headers["ratelimit-limit"] == "5"
    assert resp.headers["ratelimit-remaining"] == "4"
    assert resp.headers["ratelimit-reset"] == "10"  # an integer delta, not an epoch
    assert not any(h.lower().startswith("x-hubspot") for h in resp.headers)
    assert "set-cookie" not in resp.headers
    assert resp.headers["x-toolqueue-upstream"] == "hubspot"  # the body is the vendor's

    (seen,) = api_calls(fresh_sandbox)
    assert seen["path"] == f"/hubspot/{CONTACTS}" and seen["status"] == 200
    assert seen["query"] == "limit=3&properties=email"  # the query string, as sent


def test_query_string_reaches_the_vendor(api, fresh_sandbox):
    account = api.account(fresh_sandbox, "hubspot")
    resp = api.get(f"/v1/proxy/{account}/{CONTACTS}", params={"limit": 7})
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["results"]) == 7


def test_post_body_and_content_type_pass_through(api, fresh_sandbox):
    account = api.account(fresh_sandbox, "hubspot")
    resp = api.post(f"/v1/proxy/{account}/{CONTACTS}/search", {"limit": 4, "after": "10"})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert len(doc["results"]) == 4 and doc["paging"]["next"]["after"] == "14"
    bad = api.s.post(
        f"{api.url}/v1/proxy/{account}/{CONTACTS}/search",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR", bad.text


def test_upstream_429_is_a_429_and_never_retried(api, fresh_sandbox):
    fresh_sandbox.config(rate_budget=2, rate_window_ms=10000)
    assert fresh_sandbox.spend("hubspot", CONTACTS, 2) == [200, 200]  # another app's calls
    account = api.account(fresh_sandbox, "hubspot")
    before = len(api_calls(fresh_sandbox))

    resp = api.get(f"/v1/proxy/{account}/{CONTACTS}")
    assert resp.status_code == 429, resp.text
    assert resp.json() == {
        "error": "rate_limit_exceeded",
        "message": "Upstream API rate limit exceeded",
    }
    assert 0 < int(resp.headers["retry-after"]) <= 10
    assert resp.headers["ratelimit-limit"] == "2"
    assert resp.headers["ratelimit-remaining"] == "0"
    assert 0 <= int(resp.headers["ratelimit-reset"]) <= 10
    assert len(api_calls(fresh_sandbox)) == before + 1  # exactly one upstream request
    assert "x-toolqueue-upstream" not in resp.headers  # the body is ours


def test_proxy_shares_the_account_budget_and_refuses_before_sending(api, fresh_sandbox):
    """Two calls teach the budget the portal's 2 per 10 s; the third never leaves toolqueue."""
    fresh_sandbox.config(rate_budget=2, rate_window_ms=10000)
    account = api.account(fresh_sandbox, "hubspot")
    for _ in range(2):
        assert api.get(f"/v1/proxy/{account}/{CONTACTS}").status_code == 200
    before = len(api_calls(fresh_sandbox))

    resp = api.get(f"/v1/proxy/{account}/{CONTACTS}")
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"] == "rate_limit_exceeded"
    assert "request budget is spent" in resp.json()["message"]
    assert 0 < int(resp.headers["retry-after"]) <= 11
    assert resp.headers["ratelimit-limit"] == "2"
    assert resp.headers["ratelimit-remaining"] == "0"
    assert len(api_calls(fresh_sandbox)) == before  # nothing sent upstream
    assert [e["status"] for e in api_calls(fresh_sandbox)] == [200, 200]


def test_vendor_403_rate_refusal_is_a_429(api, fresh_sandbox):
    """Salesforce says REQUEST_LIMIT_EXCEEDED with a 403: still a rate limit to the caller."""
    fresh_sandbox.config(rate_budgets={"salesforce": 1}, rate_window_ms=10000)
    query = "services/data/v59.0/query?q=SELECT+Id+FROM+Contact"
    assert fresh_sandbox.spend("salesforce", query, 1) == [200]  # another app's call
    account = api.account(fresh_sandbox, "salesforce")
    path = f"/v1/proxy/{account}/services/data/v59.0/query"
    q = {"q": "SELECT Id FROM Contact"}
    before = len(api_calls(fresh_sandbox, "salesforce"))
    resp = api.get(path, params=q)
    assert resp.status_code == 429, resp.text
    assert resp.json()["error"] == "rate_limit_exceeded"
    assert int(resp.headers["retry-after"]) > 0
    assert resp.headers["ratelimit-limit"] == "1"
    assert len(api_calls(fresh_sandbox, "salesforce")) == before + 1


def test_github_403_with_remaining_0_is_a_429(api, fresh_sandbox):
    """GitHub's primary-limit 403 is a 429 here; the refusal closes the account's budget
    until GitHub's reset, so the next call is refused without asking GitHub again."""
    fresh_sandbox.config(rate_budgets={"github": 1}, rate_window_ms=60000)
    assert fresh_sandbox.spend("github", "repos/acme/widgets/issues", 1) == [200]
    account = api.account(
        fresh_sandbox, "github", token_url=f"{fresh_sandbox.url}/github/login/oauth/access_token"
    )
    path = f"/v1/proxy/{account}/repos/acme/widgets/issues"
    answers = [api.get(path) for _ in range(2)]
    assert [a.status_code for a in answers] == [429, 429], [a.text for a in answers]
    assert all(a.headers["ratelimit-remaining"] == "0" for a in answers)
    assert all(int(a.headers["retry-after"]) > 0 for a in answers)
    upstream = [e["status"] for e in api_calls(fresh_sandbox, "github")]
    assert upstream == [200, 403]  # the spent call, then one refusal; never retried


def test_vendor_400_passes_through(api, fresh_sandbox):
    account = api.account(fresh_sandbox, "hubspot")
    resp = api.get(f"/v1/proxy/{account}/{CONTACTS}", params={"limit": "lots"})
    assert resp.status_code == 400, resp.text
    doc = resp.json()
    assert doc["category"] == "VALIDATION_ERROR" and "lots" in doc["message"]
    assert resp.headers["x-toolqueue-upstream"] == "hubspot"
    assert "ratelimit-limit" in resp.headers


def test_401_refreshes_once_and_retries(api, fresh_sandbox):
    """A token the vendor no longer accepts (but we think is valid): refresh, retry once."""
    account = api.account(fresh_sandbox, "hubspot", access_token="revoked-token")
    resp = api.get(f"/v1/proxy/{account}/{CONTACTS}", params={"limit": 1})
    assert resp.status_code == 200, resp.text
    log = fresh_sandbox.requests("hubspot")
    kinds = [e.get("kind", "api") for e in log]
    assert kinds == ["api", "token", "api"], log
    status = api.get(f"/v1/accounts/{account}").json()
    assert status["refresh_count"] == 1 and status["last_refresh_outcome"] == "ok"
    assert "revoked-token" not in resp.text


def test_expired_token_is_refreshed_before_the_call(api, fresh_sandbox):
    account = api.account(fresh_sandbox, "hubspot", expires_in=0)
    resp = api.get(f"/v1/proxy/{account}/{CONTACTS}", params={"limit": 1})
    assert resp.status_code == 200, resp.text
    assert [e.get("kind", "api") for e in fresh_sandbox.requests("hubspot")] == ["token", "api"]


def account_with_events(api, sandbox, events_url: str, **creds) -> str:
    tokens = sandbox.mint()
    credentials = {"type": "oauth2", "access_token": tokens["access_token"],
                   "refresh_token": tokens["refresh_token"], "expires_in": 1800,
                   "client_id": "cid", "client_secret": "csecret", **creds}  # fmt: skip
    resp = api.post("/v1/accounts", {"vendor": "hubspot", "name": "x", "events_url": events_url,
                                     "base_url": f"{sandbox.url}/hubspot",
                                     "credentials": credentials})  # fmt: skip
    assert resp.status_code == 201, resp.text
    return resp.json()["account_id"]


def test_rejected_refresh_is_needs_reauth(api, fresh_sandbox, receiver):
    account = account_with_events(api, fresh_sandbox, receiver.url, access_token="revoked")
    requests.post(
        f"{fresh_sandbox.url}/_sandbox/revoke", json={"vendor": "hubspot"}, timeout=5
    ).raise_for_status()
    resp = api.get(f"/v1/proxy/{account}/{CONTACTS}")
    assert resp.status_code == 409, resp.text
    assert resp.json()["error"] == "needs_reauth"
    assert len(api_calls(fresh_sandbox)) == 1  # the 401, then no second try without a token
    # the account is marked as a job's refusal would mark it, and the tenant is told
    assert api.get(f"/v1/accounts/{account}").json()["needs_reauth_since"]
    [event] = receiver.wait(1)
    assert json.loads(event["body"])["type"] == "account.needs_reauth"


def test_revoked_access_marks_the_account_so_jobs_park_without_calling(api, fresh_sandbox,
                                                                      receiver):  # fmt: skip
    """The refresh works but the vendor refuses the fresh token too (a token TTL of 0 makes
    every refreshed token refused): revoked access. Jobs on the account then park at once."""
    account = account_with_events(api, fresh_sandbox, receiver.url, access_token="revoked")
    fresh_sandbox.config(token_ttl_s=0)
    resp = api.get(f"/v1/proxy/{account}/{CONTACTS}")
    assert resp.status_code == 409 and resp.json()["error"] == "needs_reauth", resp.text
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "needs_reauth"
    assert "freshly refreshed token" in view["needs_reauth_reason"]
    assert [json.loads(e["body"])["type"] for e in receiver.wait(1)] == ["account.needs_reauth"]
    before = len(api_calls(fresh_sandbox))
    job = api.call(account_id=account, args={"limit": 10})
    parked = api.wait(job["job_id"], states=("needs_reauth", "succeeded", "failed"))
    assert parked["status"] == "needs_reauth", parked
    assert len(api_calls(fresh_sandbox)) == before  # no request spent on a sure 401


def test_other_tenant_gets_404(api, other_api, fresh_sandbox):
    account = api.account(fresh_sandbox, "hubspot")
    resp = other_api.get(f"/v1/proxy/{account}/{CONTACTS}")
    missing = other_api.get(f"/v1/proxy/acc_0000000000000000/{CONTACTS}")
    assert resp.status_code == missing.status_code == 404
    assert resp.json() == missing.json() | {"message": resp.json()["message"]}
    assert resp.json()["error"] == "account_not_found"
    assert api_calls(fresh_sandbox) == []


@pytest.mark.parametrize(
    "path",
    [
        "../../_sandbox/config",
        "crm/%2e%2e/%2e%2e/_sandbox/config",
        "crm/%252e%252e/x",
        "crm/./x",
        "%2Fetc",
        "http:%2F%2Fevil.example%2Fx",
        "https://evil.example/x",
        "crm%5C..%5Cx",
        "a%00b",
    ],
)
def test_paths_stay_under_the_base_url(api, fresh_sandbox, path):
    account = api.account(fresh_sandbox, "hubspot")
    status, body = raw_get(api, f"/v1/proxy/{account}/{path}")
    assert status == 422, (status, body)
    assert body["error"] == "invalid_proxy_path"
    assert api_calls(fresh_sandbox) == []


def test_no_api_key_is_401(anon, api_url, api, fresh_sandbox):
    account = api.account(fresh_sandbox, "hubspot")
    resp = anon.get(f"{api_url}/v1/proxy/{account}/{CONTACTS}", timeout=10)
    assert resp.status_code == 401
    assert resp.json()["error"] == "unauthorized"
    assert api_calls(fresh_sandbox) == []


def test_unreachable_upstream_is_502(api, fresh_sandbox):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    account = api.account(
        fresh_sandbox,
        "hubspot",
        base_url=f"http://127.0.0.1:{port}/hubspot",
        token_url=f"{fresh_sandbox.url}/hubspot/oauth/v1/token",
    )
    resp = api.get(f"/v1/proxy/{account}/{CONTACTS}")
    assert resp.status_code == 502, resp.text
    assert resp.json()["error"] == "upstream_unavailable"


# ---- in process: limits the subprocess API cannot be reconfigured for ----------------------


def test_large_response_is_refused(api, fresh_sandbox, monkeypatch):
    from app.services import proxy

    account = api.account(fresh_sandbox, "hubspot")
    monkeypatch.setattr(proxy, "MAX_RESPONSE_BYTES", 2000)
    with pytest.raises(proxy.ProxyError) as err:
        proxy.forward(api.tenant["tenant_id"], account, "GET", CONTACTS, "limit=100")
    assert err.value.status == 502 and err.value.code == "upstream_response_too_large"
    small = proxy.forward(api.tenant["tenant_id"], account, "GET", CONTACTS, "limit=1")
    assert small.status == 200 and len(small.body) < 2000


def test_slow_upstream_is_504(api, fresh_sandbox, monkeypatch):
    from types import SimpleNamespace

    from app.services import proxy

    account = api.account(fresh_sandbox, "hubspot")
    fresh_sandbox.config(latency_ms=1500)
    monkeypatch.setattr(proxy, "get_settings", lambda: SimpleNamespace(http_timeout_s=0.3))
    with pytest.raises(proxy.ProxyError) as err:
        proxy.forward(api.tenant["tenant_id"], account, "GET", CONTACTS)
    assert err.value.status == 504 and err.value.code == "upstream_timeout"
