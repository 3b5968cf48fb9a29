"""salesforce.query through the real stack: API, worker, sandbox as the instance."""

from __future__ import annotations

import requests

from sandbox.salesforce import account_id, contact_id

TOOL = "salesforce.query"
CONTACTS = "SELECT Id, FirstName, LastName, Email, Account.Name FROM Contact"


def test_full_traversal_follows_next_records_url_until_done(
    api, fresh_sandbox, run_with_result, api_log
):
    account = api.account(fresh_sandbox, "salesforce")  # 1000 contacts by default
    args = {"soql": CONTACTS, "batch_size": 200}
    done, body = run_with_result(account, TOOL, args=args, fields=["Id", "Account.Name"])
    assert done["status"] == "succeeded", done
    assert [r["Id"] for r in body["records"]] == [contact_id(i) for i in range(1, 1001)]
    assert body["truncated"] is False and body["pages_fetched"] == 5
    assert set(body["records"][0]) == {"Id", "Account"}
    assert "Account" not in body["records"][24]  # no account: `null` is not projected
    log = api_log("salesforce")
    assert [e["status"] for e in log] == [200] * 5
    assert (
        log[0]["path"] == "/salesforce/services/data/v62.0/query" and "q=SELECT" in log[0]["query"]
    )
    # Later pages are the relative nextRecordsUrl, as given; the last one said done: true,
    # so nothing was asked after it.
    assert [e["path"].rsplit("-", 1)[1] for e in log[1:]] == ["200", "400", "600", "800"]
    assert all(e["path"].startswith("/salesforce/services/data/v62.0/query/01g") for e in log[1:])
    assert all(e["query"] == "" for e in log[1:])


def test_single_page_with_default_batch(api, fresh_sandbox, run_with_result, api_log):
    fresh_sandbox.config(volumes={"salesforce.accounts": 300})
    account = api.account(fresh_sandbox, "salesforce")
    args = {"soql": "SELECT Id, Name, Industry, CreatedDate FROM Account"}
    done, body = run_with_result(account, TOOL, args=args)
    assert done["status"] == "succeeded", done
    assert [r["Id"] for r in body["records"]] == [account_id(j) for j in range(1, 301)]
    rec = body["records"][0]
    assert rec["attributes"]["type"] == "Account" and {"Name", "Industry", "CreatedDate"} <= set(
        rec
    )
    assert body["pages_fetched"] == 1 and len(api_log("salesforce")) == 1


def test_empty_result(api, fresh_sandbox, run_with_result, api_log):
    fresh_sandbox.config(volumes={"salesforce.contacts": 0})
    account = api.account(fresh_sandbox, "salesforce")
    done, body = run_with_result(account, TOOL, args={"soql": CONTACTS})
    assert done["status"] == "succeeded", done
    assert body["records"] == [] and body["pages_fetched"] == 1
    assert len(api_log("salesforce")) == 1


def test_invalid_field_fails_with_salesforce_code_and_message(api, fresh_sandbox, api_log):
    account = api.account(fresh_sandbox, "salesforce")
    done = api.wait(
        api.call(TOOL, account_id=account, args={"soql": "SELECT Id, Foo FROM Contact"})["job_id"]
    )
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "INVALID_FIELD"
    assert "No such column 'Foo' on entity 'Contact'" in done["error"]["message"]
    malformed = api.wait(
        api.call(TOOL, account_id=account, args={"soql": "SELECT Id FRM Contact"})["job_id"]
    )
    assert malformed["status"] == "failed" and malformed["error"]["code"] == "MALFORMED_QUERY"
    assert [e["status"] for e in api_log("salesforce")] == [400, 400]  # never retried


def test_batch_size_is_validated_before_any_request(api, fresh_sandbox, api_log):
    account = api.account(fresh_sandbox, "salesforce")
    resp = api.post(
        "/v1/jobs",
        {"tool": TOOL, "account_id": account, "args": {"soql": CONTACTS, "batch_size": 50}},
    )
    assert resp.status_code == 422, resp.text
    assert api_log("salesforce") == []


def test_request_limit_exceeded_403_backs_off_then_completes(
    api, fresh_sandbox, run_with_result, api_log
):
    # Salesforce's 403 names no time: the worker backs off (bounded, jittered) and retries.
    # Another app spent the window, so the job's first batch is refused; later, `api-usage`
    # at its maximum (no reset named) pauses the job a moment instead of asking again.
    fresh_sandbox.config(rate_budgets={"salesforce": 2}, rate_window_ms=1000)
    query = "services/data/v62.0/query?q=SELECT+Id+FROM+Contact"
    assert fresh_sandbox.spend("salesforce", query, 2) == [200, 200]
    account = api.account(fresh_sandbox, "salesforce")
    args = {"soql": CONTACTS, "batch_size": 200}
    done, body = run_with_result(account, TOOL, args=args, fields=["Id"])
    assert done["status"] == "succeeded", done
    assert "waiting_rate_limit" in [h["status"] for h in done["history"]]
    assert any("REQUEST_LIMIT_EXCEEDED" in (h.get("reason") or "") for h in done["history"])
    assert [r["Id"] for r in body["records"]] == [contact_id(i) for i in range(1, 1001)]
    log = api_log("salesforce")[2:]  # the job's own
    assert log[0]["status"] == 403
    assert sum(e["status"] == 200 for e in log) == 5  # every batch fetched exactly once


def test_invalid_session_refreshes_without_expires_in(api, fresh_sandbox, run_with_result):
    account = api.account(fresh_sandbox, "salesforce", access_token="00Dxx!expired")
    args = {"soql": CONTACTS, "batch_size": 500}
    done, body = run_with_result(account, TOOL, args=args, fields=["Id"])
    assert done["status"] == "succeeded", done
    assert len(body["records"]) == 1000
    log = fresh_sandbox.requests("salesforce")
    assert [(e["kind"], e["status"]) for e in log][:3] == [
        ("api", 401),
        ("token", 200),
        ("api", 200),
    ]
    assert log[1]["path"] == "/salesforce/services/oauth2/token"  # relative to the instance
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["refresh_count"] == 1 and view["last_refresh_outcome"] == "ok"
    # No expires_in came back: the token is treated as valid for a while, not as expired.
    assert view["token_expires_at"] is not None


def test_rejected_refresh_parks_job_in_needs_reauth(api, fresh_sandbox):
    account = api.account(fresh_sandbox, "salesforce", access_token="00Dxx!expired")
    requests.post(
        f"{fresh_sandbox.url}/_sandbox/revoke", json={"vendor": "salesforce"}, timeout=5
    ).raise_for_status()
    job = api.call(TOOL, account_id=account, args={"soql": CONTACTS})
    done = api.wait(job["job_id"], states=("needs_reauth", "failed", "succeeded"))
    assert done["status"] == "needs_reauth", done
    token_calls = [e for e in fresh_sandbox.requests("salesforce") if e["kind"] == "token"]
    assert [e["status"] for e in token_calls] == [400]  # invalid_grant
