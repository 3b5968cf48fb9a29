"""Slack sandbox speaks Slack: cursors ending in "", errors in HTTP 200s, 429s, rotation."""

from __future__ import annotations

import base64
import time
from functools import partial

from support import refresh_grant

from sandbox.slack import ACCESS_PREFIX, REFRESH_PREFIX, ts_str, ts_us

HISTORY = "/slack/api/conversations.history"
USERS = "/slack/api/users.list"
TOKEN = "/slack/api/oauth.v2.access"
CHANNEL = "C01GENERAL"


def bearer(account: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['access_token']}"}


def volumes(client, **v: int) -> None:
    resp = client.post("/_sandbox/config", json={"volumes": v})
    assert resp.status_code == 200, resp.text


refresh = partial(refresh_grant, TOKEN)


def crawl(client, path: str, h: dict, key: str, **params) -> tuple[list[dict], list[dict]]:
    records, docs = [], []
    while True:
        doc = client.get(path, params=params, headers=h).json()
        assert doc["ok"] is True, doc
        docs.append(doc)
        records += doc[key]
        cursor = doc["response_metadata"]["next_cursor"]
        if cursor == "":
            return records, docs
        params["cursor"] = cursor


def test_history_pages_newest_first_and_empty_cursor_ends(make_client, mint):
    client = make_client()
    volumes(client, **{"slack.messages": 250})
    h = bearer(mint(client, "slack"))
    messages, docs = crawl(client, HISTORY, h, "messages", channel=CHANNEL, limit=100)
    assert len(docs) == 3
    assert [m["ts"] for m in messages] == [ts_str(ts_us(i)) for i in range(250, 0, -1)]
    assert len({m["ts"] for m in messages}) == 250
    assert [d["has_more"] for d in docs] == [True, True, False]
    assert docs[-1]["response_metadata"] == {"next_cursor": ""}
    first = docs[0]
    assert {"ok", "messages", "has_more", "pin_count", "response_metadata"} <= set(first)
    m = messages[0]
    assert m["type"] == "message" and m["user"].startswith("U") and m["text"]
    assert base64.b64decode(first["response_metadata"]["next_cursor"]).startswith(b"next_ts:")
    assert any(not x["text"].isascii() for x in messages[:7])
    # Channels differ; the default limit is Slack's 100.
    other = client.get(HISTORY, params={"channel": "C02RANDOM0"}, headers=h).json()
    assert len(other["messages"]) == 100
    assert other["messages"][0]["text"] != messages[0]["text"]


def test_history_oldest_latest_inclusive_and_volumes(make_client, mint):
    client = make_client()
    volumes(client, **{"slack.messages": 50, "slack.messages.C03SUPPORT": 0})
    h = bearer(mint(client, "slack"))
    oldest, latest = ts_str(ts_us(10)), ts_str(ts_us(20))
    doc = client.get(
        HISTORY, params={"channel": CHANNEL, "oldest": oldest, "latest": latest}, headers=h
    ).json()
    assert [m["ts"] for m in doc["messages"]] == [ts_str(ts_us(i)) for i in range(19, 10, -1)]
    doc = client.get(
        HISTORY,
        params={"channel": CHANNEL, "oldest": oldest, "latest": latest, "inclusive": "true"},
        headers=h,
    ).json()
    assert len(doc["messages"]) == 11
    empty = client.get(HISTORY, params={"channel": "C03SUPPORT"}, headers=h).json()
    assert empty["messages"] == [] and empty["has_more"] is False
    assert empty["response_metadata"] == {"next_cursor": ""}
    assert client.get(HISTORY, params={"channel": CHANNEL, "oldest": "abc"}, headers=h).json() \
        == {"ok": False, "error": "invalid_ts_oldest"}  # fmt: skip


def test_users_pages_and_fields(make_client, mint):
    client = make_client()
    volumes(client, **{"slack.users": 230})
    h = bearer(mint(client, "slack"))
    members, docs = crawl(client, USERS, h, "members", limit=100)
    assert [u["id"] for u in members] == [f"U{i:08d}" for i in range(1, 231)]
    assert len(docs) == 3 and docs[-1]["response_metadata"]["next_cursor"] == ""
    u = members[0]
    assert {"id", "name", "real_name", "deleted", "profile"} <= set(u)
    assert "@" in u["profile"]["email"]
    assert members[24]["deleted"] is True and members[0]["deleted"] is False
    assert base64.b64decode(docs[0]["response_metadata"]["next_cursor"]) == b"user:U00000101"
    # Without a limit Slack sends everyone it can in one page.
    everyone = client.get(USERS, headers=h).json()
    assert len(everyone["members"]) == 230
    assert everyone["response_metadata"]["next_cursor"] == ""
    volumes(client, **{"slack.users": 1500})
    assert client.get(USERS, headers=h).json() == {"ok": False, "error": "limit_required"}


def test_errors_are_http_200_ok_false(make_client, mint):
    client = make_client()
    h = bearer(mint(client, "slack"))
    cases = [
        (HISTORY, {"channel": "C000"}, {"ok": False, "error": "channel_not_found"}),
        (HISTORY, {"channel": CHANNEL, "cursor": "bm9wZQ=="}, {"ok": False,
                                                               "error": "invalid_cursor"}),
        (USERS, {"cursor": "!!!"}, {"ok": False, "error": "invalid_cursor"}),
    ]  # fmt: skip
    for path, params, expected in cases:
        resp = client.get(path, params=params, headers=h)
        assert resp.status_code == 200 and resp.json() == expected, params
        assert "x-slack-req-id" in resp.headers
    missing = client.get(HISTORY, headers=h)
    assert missing.status_code == 200
    assert missing.json()["error"] == "invalid_arguments"
    assert missing.json()["response_metadata"]["messages"]
    # POST with a form body, token as a parameter: Slack accepts both.
    account = mint(client, "slack")
    resp = client.post(HISTORY, data={"channel": "C000", "token": account["access_token"]})
    assert resp.json() == {"ok": False, "error": "channel_not_found"}


def test_auth_failures_are_http_200(make_client, mint):
    client = make_client()
    resp = client.get(USERS)
    assert resp.status_code == 200 and resp.json() == {"ok": False, "error": "not_authed"}
    resp = client.get(USERS, headers={"Authorization": "Bearer xoxp-nope"})
    assert resp.status_code == 200 and resp.json() == {"ok": False, "error": "invalid_auth"}
    expired = mint(client, "slack", expires_in=0)
    resp = client.get(USERS, headers=bearer(expired))
    assert resp.status_code == 200 and resp.json() == {"ok": False, "error": "token_expired"}
    resp = client.get(USERS, headers=bearer(mint(client, "hubspot")))
    assert resp.json() == {"ok": False, "error": "invalid_auth"}


def test_ratelimited_429_then_recovery(make_client, mint):
    client = make_client(rate_budget=2, rate_window_ms=1200)
    h = bearer(mint(client, "slack"))
    for _ in range(2):
        ok = client.get(USERS, params={"limit": 1}, headers=h)
        assert ok.status_code == 200
        assert not any(k.lower().startswith(("x-ratelimit", "ratelimit")) for k in ok.headers)
    resp = client.get(USERS, params={"limit": 1}, headers=h)
    assert resp.status_code == 429
    assert resp.json() == {"ok": False, "error": "ratelimited"}
    assert resp.headers["Retry-After"] in ("1", "2")
    # The budget is shared by every method of the workspace (the sandbox has one per vendor).
    assert client.get(HISTORY, params={"channel": CHANNEL}, headers=h).status_code == 429
    time.sleep(1.3)
    assert client.get(USERS, params={"limit": 1}, headers=h).status_code == 200


def test_token_rotation_and_refusals(make_client, mint):
    client = make_client(token_ttl_s=43200)
    account = mint(client, "slack")
    resp = refresh(client, account)
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["ok"] is True and doc["token_type"] == "user" and doc["expires_in"] == 43200
    assert doc["access_token"].startswith(ACCESS_PREFIX)
    assert doc["refresh_token"].startswith(REFRESH_PREFIX)
    assert doc["refresh_token"] != account["refresh_token"]  # rotates
    assert client.get(USERS, params={"limit": 1}, headers=bearer(doc)).json()["ok"] is True

    reused = refresh(client, account)
    assert reused.status_code == 200
    assert reused.json() == {"ok": False, "error": "invalid_refresh_token"}
    again = refresh(client, account, doc["refresh_token"])
    assert again.json()["ok"] is True

    assert refresh(client, account, client_secret="x").json() == {
        "ok": False,
        "error": "bad_client_secret",
    }
    assert refresh(client, account, client_id="nobody").json()["error"] == "invalid_client_id"
    assert refresh(client, account, grant_type="authorization_code").json() == {
        "ok": False,
        "error": "invalid_grant_type",
    }
    # Client credentials as HTTP Basic, as Slack also accepts.
    basic = base64.b64encode(f"{account['client_id']}:{account['client_secret']}".encode())
    resp = client.post(
        TOKEN,
        data={"grant_type": "refresh_token", "refresh_token": again.json()["refresh_token"]},
        headers={"Authorization": f"Basic {basic.decode()}"},
    )
    assert resp.json()["ok"] is True
    log = client.get("/_sandbox/requests", params={"vendor": "slack"}).json()
    assert {e["kind"] for e in log if e["path"] == TOKEN} == {"token"}
    assert client.get("/_sandbox/stats").json()["refresh_calls"]["slack"] == 7
