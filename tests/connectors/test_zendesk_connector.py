"""zendesk.tickets.list (declarative spec) through the real stack: API, worker, sandbox."""

from __future__ import annotations

import requests

from sandbox.zendesk import encode_cursor

TOOL = "zendesk.tickets.list"


def test_full_traversal_every_ticket_once_in_order(api, fresh_sandbox, run_with_result, api_log):
    fresh_sandbox.config(volumes={"zendesk.tickets": 1000})
    account = api.account(fresh_sandbox, "zendesk")
    done, body = run_with_result(account, TOOL, args={}, fields=["id", "status"])
    assert done["status"] == "succeeded", done
    assert [r["id"] for r in body["records"]] == list(range(1, 1001))
    assert body["truncated"] is False and body["pages_fetched"] == 10
    log = api_log("zendesk")
    assert len(log) == 10 and all(e["status"] == 200 for e in log)
    assert "page%5Bafter%5D" not in log[0]["query"]
    # The last page still carries an after_cursor; has_more=false ended the job, so
    # nothing asked for the page after it.
    last_cursor = requests.utils.quote(encode_cursor(1000), safe="")
    assert not any(last_cursor in e["query"] for e in log)
    assert all("page%5Bsize%5D=100" in e["query"] for e in log)


def test_empty_collection(api, fresh_sandbox, run_with_result, api_log):
    fresh_sandbox.config(volumes={"zendesk.tickets": 0})
    account = api.account(fresh_sandbox, "zendesk")
    done, body = run_with_result(account, TOOL, args={})
    assert done["status"] == "succeeded", done
    assert body["records"] == [] and body["pages_fetched"] == 1
    assert len(api_log("zendesk")) == 1


def test_single_page_and_page_size(api, fresh_sandbox, run_with_result, api_log):
    fresh_sandbox.config(volumes={"zendesk.tickets": 42})
    account = api.account(fresh_sandbox, "zendesk")
    done, body = run_with_result(account, TOOL, args={"page_size": 50})
    assert done["status"] == "succeeded", done
    assert [r["id"] for r in body["records"]] == list(range(1, 43))
    rec = body["records"][0]
    assert {"subject", "description", "status", "priority", "assignee_id", "requester_id",
            "created_at", "updated_at", "tags", "url"} <= set(rec)  # fmt: skip
    log = api_log("zendesk")
    assert len(log) == 1 and "page%5Bsize%5D=50" in log[0]["query"]


def test_after_cursor_arg_resumes_listing(api, fresh_sandbox, run_with_result):
    fresh_sandbox.config(volumes={"zendesk.tickets": 250})
    account = api.account(fresh_sandbox, "zendesk")
    args = {"after_cursor": encode_cursor(200)}
    done, body = run_with_result(account, TOOL, args=args, fields=["id"])
    assert done["status"] == "succeeded", done
    assert [r["id"] for r in body["records"]] == list(range(201, 251))


def test_vendor_400_fails_with_zendesk_code_and_message(api, fresh_sandbox, api_log):
    account = api.account(fresh_sandbox, "zendesk")
    done = api.wait(api.call(TOOL, account_id=account, args={"after_cursor": "bogus"})["job_id"])
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "InvalidPaginationParameter"
    assert done["error"]["message"] == "page[after] is not a valid cursor"
    assert [e["status"] for e in api_log("zendesk")] == [400]  # a 400 is not retried


def test_429_retry_after_waits_then_completes(api, fresh_sandbox, run_with_result, api_log):
    """Another app spent the window: Zendesk's 429 + Retry-After is waited out; then the
    budget defers at `remaining: 0` until `ratelimit-reset`, and Zendesk never refuses again."""
    fresh_sandbox.config(rate_budgets={"zendesk": 3}, rate_window_ms=2000,
                         volumes={"zendesk.tickets": 1000})  # fmt: skip
    assert fresh_sandbox.spend("zendesk", "api/v2/tickets.json", 3) == [200] * 3
    account = api.account(fresh_sandbox, "zendesk")
    done, body = run_with_result(account, TOOL, args={}, fields=["id"])
    assert done["status"] == "succeeded", done
    assert "waiting_rate_limit" in [h["status"] for h in done["history"]]
    assert [r["id"] for r in body["records"]] == list(range(1, 1001))
    assert [e["status"] for e in api_log("zendesk")[3:]] == [429] + [200] * 10


def test_401_refreshes_rotating_token_once(api, fresh_sandbox, run_with_result):
    fresh_sandbox.config(volumes={"zendesk.tickets": 300})
    account = api.account(fresh_sandbox, "zendesk", access_token="revoked-or-unknown")
    done, body = run_with_result(account, TOOL, args={}, fields=["id"])
    assert done["status"] == "succeeded", done
    assert len(body["records"]) == 300
    log = fresh_sandbox.requests("zendesk")
    assert [e["status"] for e in log][:3] == [401, 200, 200]
    assert [e["kind"] for e in log][:2] == ["api", "token"]
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["refresh_count"] == 1 and view["last_refresh_outcome"] == "ok"
    # The rotated refresh token was stored: a second refresh works.
    from app.store.tokens import get_access_token

    assert get_access_token(account, force=True)
    assert api.get(f"/v1/accounts/{account}").json()["refresh_count"] == 2


def test_rejected_refresh_parks_job_in_needs_reauth(api, fresh_sandbox):
    account = api.account(fresh_sandbox, "zendesk", access_token="revoked-or-unknown")
    requests.post(
        f"{fresh_sandbox.url}/_sandbox/revoke", json={"vendor": "zendesk"}, timeout=5
    ).raise_for_status()
    job = api.call(TOOL, account_id=account, args={})
    done = api.wait(job["job_id"], states=("needs_reauth", "failed", "succeeded"))
    assert done["status"] == "needs_reauth", done
    token_calls = [e for e in fresh_sandbox.requests("zendesk") if e["kind"] == "token"]
    assert [e["status"] for e in token_calls] == [400]  # invalid_grant
