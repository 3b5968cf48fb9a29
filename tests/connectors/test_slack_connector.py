"""slack.conversations.history and slack.users.list through the real stack, plus the
connector's reading of Slack's HTTP-200 errors."""

from __future__ import annotations

import base64

import pytest
import requests
from fakes import canned

from connectors.errors import Transient, VendorError
from connectors.slack import SlackAuthError, classify
from sandbox.slack import ts_str, ts_us

HISTORY = "slack.conversations.history"
USERS = "slack.users.list"
CHANNEL = "C01GENERAL"


def newest_first(n: int) -> list[str]:
    return [ts_str(ts_us(i)) for i in range(n, 0, -1)]


def cursor_of(entry: dict) -> str:
    for pair in entry["query"].split("&"):
        if pair.startswith("cursor="):
            return base64.b64decode(requests.utils.unquote(pair[7:])).decode()
    return ""


# ---- the real stack -----------------------------------------------------------------------


def test_history_full_traversal_in_order(api, fresh_sandbox, run_with_result, api_log):
    fresh_sandbox.config(volumes={"slack.messages": 1000})
    account = api.account(fresh_sandbox, "slack")
    done, body = run_with_result(account, HISTORY, args={"channel": CHANNEL}, fields=["ts", "user"])
    assert done["status"] == "succeeded", done
    assert [r["ts"] for r in body["records"]] == newest_first(1000)
    assert body["pages_fetched"] == 5  # default limit 200
    log = api_log("slack")
    assert len(log) == 5  # next_cursor "" on the fifth page: nothing after it
    assert "cursor=" not in log[0]["query"] and "limit=200" in log[0]["query"]
    assert cursor_of(log[-1]) == f"next_ts:{ts_us(200)}"


def test_users_full_traversal_in_order(api, fresh_sandbox, run_with_result, api_log):
    fresh_sandbox.config(volumes={"slack.users": 1000})
    account = api.account(fresh_sandbox, "slack")
    done, body = run_with_result(account, USERS, args={"limit": 200}, fields=["id", "deleted"])
    assert done["status"] == "succeeded", done
    assert [r["id"] for r in body["records"]] == [f"U{i:08d}" for i in range(1, 1001)]
    assert sum(r["deleted"] for r in body["records"]) == 40
    log = api_log("slack")
    assert len(log) == 5 and cursor_of(log[-1]) == "user:U00000801"


def test_empty_collections(api, fresh_sandbox, run_with_result, api_log):
    fresh_sandbox.config(volumes={"slack.users": 0, "slack.messages.C03SUPPORT": 0})
    account = api.account(fresh_sandbox, "slack")
    done, body = run_with_result(account, HISTORY, args={"channel": "C03SUPPORT"})
    assert done["status"] == "succeeded", done
    assert body["records"] == [] and body["pages_fetched"] == 1
    done, body = run_with_result(account, USERS, args={})
    assert done["status"] == "succeeded", done
    assert body["records"] == []
    assert len(api_log("slack")) == 2


def test_single_pages_and_range_args(api, fresh_sandbox, run_with_result, api_log):
    fresh_sandbox.config(volumes={"slack.messages": 300, "slack.users": 150})
    account = api.account(fresh_sandbox, "slack")
    done, body = run_with_result(account, HISTORY, args={"channel": CHANNEL, "limit": 999})
    assert done["status"] == "succeeded", done
    assert [r["ts"] for r in body["records"]] == newest_first(300)
    assert {"type", "user", "text", "ts"} <= set(body["records"][0])
    done, body = run_with_result(account, USERS, args={})
    assert len(body["records"]) == 150 and body["pages_fetched"] == 1
    assert "@" in body["records"][0]["profile"]["email"]
    args = {"channel": CHANNEL, "oldest": ts_str(ts_us(10)), "latest": ts_str(ts_us(20)),
            "inclusive": True}  # fmt: skip
    done, body = run_with_result(account, HISTORY, args=args, fields=["ts"])
    assert [r["ts"] for r in body["records"]] == newest_first(20)[:11]
    assert len(api_log("slack")) == 3
    assert "inclusive=true" in api_log("slack")[-1]["query"]


def test_ok_false_on_200_fails_with_slack_code(api, fresh_sandbox, api_log):
    account = api.account(fresh_sandbox, "slack")
    job = api.call(HISTORY, account_id=account, args={"channel": "C000"})
    done = api.wait(job["job_id"])
    assert done["status"] == "failed", done
    assert done["error"] == {"code": "channel_not_found", "message": "channel_not_found"}
    assert [e["status"] for e in api_log("slack")] == [200]  # not retried


def test_ratelimited_429_waits_then_completes(api, fresh_sandbox, run_with_result, api_log):
    fresh_sandbox.config(rate_budgets={"slack": 2}, rate_window_ms=1000,
                         volumes={"slack.messages": 1000})  # fmt: skip
    account = api.account(fresh_sandbox, "slack")
    done, body = run_with_result(account, HISTORY, args={"channel": CHANNEL}, fields=["ts"])
    assert done["status"] == "succeeded", done
    assert "waiting_rate_limit" in [h["status"] for h in done["history"]]
    assert [r["ts"] for r in body["records"]] == newest_first(1000)
    log = api_log("slack")
    assert sum(e["status"] == 200 for e in log) == 5
    assert 1 <= sum(e["status"] == 429 for e in log) <= 4


@pytest.mark.parametrize("failure", ["token_expired", "invalid_auth"])
def test_auth_error_in_200_refreshes_once(api, fresh_sandbox, failure, run_with_result):
    fresh_sandbox.config(volumes={"slack.messages": 300})
    if failure == "token_expired":
        fresh_sandbox.config(token_ttl_s=0)  # the sandbox's token is dead on arrival ...
        account = api.account(fresh_sandbox, "slack", expires_in=43200)  # ... we think not
        fresh_sandbox.config(token_ttl_s=43200)
    else:
        account = api.account(fresh_sandbox, "slack", access_token="xoxp-unknown")
    done, body = run_with_result(account, HISTORY, args={"channel": CHANNEL}, fields=["ts"])
    assert done["status"] == "succeeded", done
    assert [r["ts"] for r in body["records"]] == newest_first(300)
    assert [e["kind"] for e in fresh_sandbox.requests("slack")] == ["api", "token", "api", "api"]
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["refresh_count"] == 1 and view["last_refresh_outcome"] == "ok"


def test_rejected_refresh_in_200_parks_job_in_needs_reauth(api, fresh_sandbox):
    account = api.account(fresh_sandbox, "slack", access_token="xoxp-unknown")
    requests.post(
        f"{fresh_sandbox.url}/_sandbox/revoke", json={"vendor": "slack"}, timeout=5
    ).raise_for_status()
    job = api.call(USERS, account_id=account, args={})
    done = api.wait(job["job_id"], states=("needs_reauth", "failed", "succeeded"), timeout=60)
    assert done["status"] == "needs_reauth", done


# ---- classify and the refresh-once wrapper, without the stack ----------------------------


def test_classify_reads_slack_errors_whatever_the_status():
    for ok in (
        canned(200, {"ok": True, "messages": []}),
        canned(429, {"ok": False, "error": "ratelimited"}),
        canned(200, {"ok": False, "error": "ratelimited"}),  # the generic check's job
        canned(503, {"ok": False, "error": "service_unavailable"}),
        canned(200, content=b"not json"),
    ):
        classify(ok)
    with pytest.raises(VendorError) as err:
        scope = {"needed": "channels:history", "provided": "identify"}
        classify(canned(200, {"ok": False, "error": "missing_scope", **scope}))
    assert err.value.code == "missing_scope"
    assert err.value.message == "needed: channels:history; provided: identify"
    with pytest.raises(VendorError) as err:
        meta = {"response_metadata": {"messages": ["[ERROR] bad: limit"]}}
        classify(canned(200, {"ok": False, "error": "invalid_arguments", **meta}))
    assert (err.value.code, err.value.message) == ("invalid_arguments", "[ERROR] bad: limit")
    with pytest.raises(VendorError) as err:
        classify(canned(400, {"ok": False, "error": "invalid_cursor"}))
    assert (err.value.code, err.value.message) == ("invalid_cursor", "invalid_cursor")
    for code in ("invalid_auth", "token_expired", "not_authed", "token_revoked"):
        with pytest.raises(SlackAuthError):
            classify(canned(200, {"ok": False, "error": code}))
    with pytest.raises(Transient):
        classify(canned(200, {"ok": False, "error": "internal_error"}))
