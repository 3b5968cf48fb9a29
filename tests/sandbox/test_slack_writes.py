"""Slack chat writes over real HTTP: post (form and JSON), update, the per-channel limit,
faults, and the metadata lookup through conversations.history."""

from __future__ import annotations

import json

import pytest
import requests

API = "/slack/api"
META = {"event_type": "toolqueue_op", "event_payload": {"op": "job-1:0"}}
BLOCKS = [{"type": "section", "text": {"type": "plain_text", "text": "Hello"}}]
CUT = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


@pytest.fixture
def slack(live_sandbox):
    live_sandbox.config(volumes={"slack.messages": 30}, slack_channel_post_interval_ms=0)
    body = {"vendor": "slack", "client_id": "cid", "client_secret": "cs"}
    token = requests.post(f"{live_sandbox.url}/_sandbox/tokens", json=body).json()
    live_sandbox.h = {"Authorization": f"Bearer {token['access_token']}"}
    return live_sandbox


def post_json(live, method: str, doc: dict) -> requests.Response:
    return requests.post(f"{live.url}{API}/{method}", json=doc, headers=live.h, timeout=5)


def post_form(live, method: str, form: dict) -> requests.Response:
    return requests.post(f"{live.url}{API}/{method}", data=form, headers=live.h, timeout=5)


def history(live, **params) -> dict:
    resp = requests.get(f"{live.url}{API}/conversations.history", params={
        "channel": "C01GENERAL", **params}, headers=live.h, timeout=5)  # fmt: skip
    assert resp.status_code == 200 and resp.json()["ok"], resp.text
    return resp.json()


def find_marker(live, op: str) -> list[dict]:
    page = history(live, include_all_metadata="true", limit=50)["messages"]
    return [m for m in page if m.get("metadata", {}).get("event_payload", {}).get("op") == op]


def test_a_posted_message_comes_first_in_history_with_its_metadata(slack):
    resp = post_json(slack, "chat.postMessage",
                     {"channel": "C01GENERAL", "text": "Deployed", "blocks": BLOCKS,
                      "metadata": META})  # fmt: skip
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["ok"], body["channel"]) == (True, "C01GENERAL")
    assert body["message"]["ts"] == body["ts"] and body["message"]["metadata"] == META
    assert body["message"]["blocks"] == BLOCKS and body["message"]["text"] == "Deployed"
    page = history(slack, limit=3)
    assert page["messages"][0]["ts"] == body["ts"] and "metadata" not in page["messages"][0]
    assert page["messages"][1]["text"].endswith("(general #30)")
    assert [m["ts"] for m in find_marker(slack, "job-1:0")] == [body["ts"]]
    effects = slack.effects("slack")
    assert [(e["kind"], e["object_id"]) for e in effects] == [
        ("create", f"C01GENERAL:{body['ts']}")
    ]


def test_a_form_post_with_json_strings_and_paging_across_posted_and_seeded(slack):
    tss = []
    for k in range(3):
        form = {"channel": "C01GENERAL", "text": f"m{k}", "metadata": json.dumps(META)}
        resp = post_form(slack, "chat.postMessage", form)
        assert resp.json()["ok"], resp.text
        assert resp.json()["message"]["metadata"] == META
        tss.append(resp.json()["ts"])
    seen, cursor = [], None
    while True:
        page = history(slack, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [m["ts"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert seen[:3] == tss[::-1] and len(seen) == len(set(seen)) == 33
    assert history(slack, oldest=tss[0])["messages"][0]["ts"] == tss[2]
    assert [m["ts"] for m in history(slack, oldest=tss[0])["messages"]] == tss[:0:-1]


def test_post_errors_are_slack_shaped(slack):
    cases = [({"channel": "C0NOPE", "text": "x"}, "channel_not_found"),
             ({"channel": "C01GENERAL", "text": " "}, "no_text"),
             ({"channel": "C01GENERAL", "text": "x", "blocks": [{"no": "type"}]}, "invalid_blocks"),
             ({"channel": "C01GENERAL", "text": "x", "metadata": {"event_type": "t"}},
              "invalid_metadata_format")]  # fmt: skip
    for doc, error in cases:
        resp = post_json(slack, "chat.postMessage", doc)
        assert resp.status_code == 200 and resp.json() == {"ok": False, "error": error}
    bad_form = post_form(
        slack, "chat.postMessage", {"channel": "C01GENERAL", "text": "x", "metadata": "{not json"}
    )
    assert bad_form.json()["error"] == "invalid_metadata_format"
    assert requests.post(f"{slack.url}{API}/chat.postMessage", data={"channel": "C01GENERAL",
                         "text": "x"}).json()["error"] == "not_authed"  # fmt: skip
    assert slack.effects("slack") == []


def test_the_per_channel_posting_limit_is_a_429_rate_limited(slack):
    slack.config(slack_channel_post_interval_ms=1000)
    assert slack.config()["slack_channel_post_interval_ms"] == 1000
    first = post_json(slack, "chat.postMessage", {"channel": "C01GENERAL", "text": "a"})
    assert first.json()["ok"]
    second = post_json(slack, "chat.postMessage", {"channel": "C01GENERAL", "text": "b"})
    assert second.status_code == 429 and second.json() == {"ok": False, "error": "rate_limited"}
    assert second.headers["Retry-After"] == "1"
    other = post_json(slack, "chat.postMessage", {"channel": "C02RANDOM0", "text": "c"})
    assert other.json()["ok"]  # the limit is per channel
    assert len(slack.effects("slack")) == 2


def test_update_changes_a_posted_message(slack):
    ts = post_json(slack, "chat.postMessage", {"channel": "C01GENERAL", "text": "v1",
                                               "metadata": META}).json()["ts"]  # fmt: skip
    resp = post_json(slack, "chat.update", {"channel": "C01GENERAL", "ts": ts, "text": "v2"})
    assert resp.json()["ok"] and (resp.json()["ts"], resp.json()["text"]) == (ts, "v2")
    assert history(slack, limit=1)["messages"][0]["text"] == "v2"
    assert find_marker(slack, "job-1:0")[0]["text"] == "v2"
    seeded = history(slack, limit=2)["messages"][1]["ts"]
    for doc, error in (({"channel": "C01GENERAL", "ts": seeded, "text": "x"},
                        "cant_update_message"),
                       ({"channel": "C01GENERAL", "ts": "9999999999.000001", "text": "x"},
                        "message_not_found"),
                       ({"channel": "C01GENERAL", "ts": ts, "text": ""}, "no_text")):  # fmt: skip
        assert post_json(slack, "chat.update", doc).json()["error"] == error
    kinds = [(e["kind"], e["object_id"]) for e in slack.effects("slack")]
    assert kinds == [("create", f"C01GENERAL:{ts}"), ("update", f"C01GENERAL:{ts}")]


def test_a_failure_before_commit_is_a_503_with_no_effect(slack):
    slack.config(fail_before_commit_next=1)
    resp = post_json(slack, "chat.postMessage", {"channel": "C01GENERAL", "text": "x"})
    assert resp.status_code == 503 and resp.json()["ok"] is False
    assert slack.effects("slack") == []


def test_a_post_committed_then_dropped_is_found_by_its_metadata(slack):
    slack.config(drop_after_commit_next=1)
    with pytest.raises(CUT):
        post_json(slack, "chat.postMessage", {"channel": "C01GENERAL", "text": "x",
                                              "metadata": META})  # fmt: skip
    found = find_marker(slack, "job-1:0")
    assert [f"C01GENERAL:{m['ts']}" for m in found] == [
        e["object_id"] for e in slack.effects("slack")
    ]
    per_object = requests.get(f"{slack.url}/slack/_sandbox/effects").json()["per_object"]
    assert list(per_object.values()) == [{"create": 1, "update": 0, "noop": 0}]


def test_write_latency_holds_the_write(slack):
    slack.config(write_latency_ms=300)
    resp = post_json(slack, "chat.postMessage", {"channel": "C01GENERAL", "text": "x"})
    assert resp.json()["ok"] and resp.elapsed.total_seconds() >= 0.3
