"""Slack chat.postMessage on the real stack: posted with its metadata marker, Slack's 200
`ok:false` refusals as rejected records, a post whose answer was lost found in the channel's
history (one effect), and the per-channel posting limit honoured through Retry-After."""

from __future__ import annotations

from typing import Any

import requests
from ledger import effects

TOOL = "slack.chat.post_message"
BLOCKS = [{"type": "section", "text": {"type": "plain_text", "text": "Hello"}}]




def slack(api: Any, sandbox: Any, interval_ms: int = 0) -> str:
    sandbox.config(volumes={"slack.messages": 30}, slack_channel_post_interval_ms=interval_ms)
    return api.account(sandbox, "slack")


def run(api: Any, account: str, args: dict[str, Any]) -> tuple[dict, list[dict]]:
    job = api.call(TOOL, account_id=account, args=args)
    done = api.wait(job["job_id"])
    return done, api.records(job["job_id"])


def calls(sandbox: Any, method: str) -> list[dict[str, Any]]:
    return [e for e in sandbox.requests("slack") if e["path"].endswith(f"/api/{method}")]


def history(sandbox: Any) -> list[dict[str, Any]]:
    token = sandbox.mint("slack")["access_token"]
    resp = requests.get(f"{sandbox.url}/slack/api/conversations.history", params={
        "channel": "C01GENERAL", "include_all_metadata": "true", "limit": 5},
        headers={"Authorization": f"Bearer {token}"}, timeout=5)  # fmt: skip
    return list(resp.json()["messages"])


def test_a_post_carries_its_operation_in_metadata(api: Any, fresh_sandbox: Any) -> None:
    args = {"channel": "C01GENERAL", "text": "Deployed", "blocks": BLOCKS}
    done, (rec,) = run(api, slack(api, fresh_sandbox), args)
    assert done["status"] == "succeeded", (done["error"], done["history"])
    newest = history(fresh_sandbox)[0]
    assert rec == {"index": 0, "status": "created", "id": f"C01GENERAL:{newest['ts']}"}
    assert newest["metadata"] == {"event_type": "toolqueue_op",
                                  "event_payload": {"op": f"{done['job_id']}.0"}}  # fmt: skip
    assert newest["blocks"] == BLOCKS and newest["text"] == "Deployed"


def test_slack_refusals_in_a_200_are_rejected_records(api: Any, fresh_sandbox: Any) -> None:
    account = slack(api, fresh_sandbox)
    done, (rec,) = run(api, account, {"channel": "C0NOPE000", "text": "x"})
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected", done
    assert rec["status"] == "rejected"
    assert rec["error"] == {"code": "channel_not_found", "message": "channel_not_found"}
    done, (rec,) = run(api, account, {"channel": "C01GENERAL", "text": " "})
    assert rec["error"]["code"] == "no_text"
    assert effects(fresh_sandbox, "slack")["effects"] == []


def test_a_lost_post_is_found_in_history(api: Any, fresh_sandbox: Any) -> None:
    account = slack(api, fresh_sandbox)
    fresh_sandbox.config(drop_after_commit_next=1)
    done, (rec,) = run(api, account, {"channel": "C01GENERAL", "text": "Once"})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert api.result(done["job_id"])["writes"]["reconciled"] == 1
    assert effects(fresh_sandbox, "slack")["per_object"] == {rec["id"]: {"create": 1, "update": 0,
                                                                "noop": 0}}  # fmt: skip
    assert len(calls(fresh_sandbox, "chat.postMessage")) == 1
    (looked,) = calls(fresh_sandbox, "conversations.history")
    assert "include_all_metadata=true" in looked["query"]


def test_the_per_channel_limit_is_waited_out(api: Any, fresh_sandbox: Any) -> None:
    account = slack(api, fresh_sandbox, interval_ms=3000)  # wide: a slow machine still hits it
    first = api.call(TOOL, account_id=account, args={"channel": "C01GENERAL", "text": "m0"})
    assert api.wait(first["job_id"])["status"] == "succeeded"
    second = api.call(TOOL, account_id=account, args={"channel": "C01GENERAL", "text": "m1"})
    done = api.wait(second["job_id"])  # within the window: refused once, then posted
    assert done["status"] == "succeeded"
    assert "waiting_rate_limit" in [h["status"] for h in done["history"]]
    statuses = [e["status"] for e in calls(fresh_sandbox, "chat.postMessage")]
    assert statuses == [200, 429, 200]
    assert len(effects(fresh_sandbox, "slack")["effects"]) == 2
    assert calls(fresh_sandbox, "conversations.history") == []  # a 429 is never uncertain


def test_posts_to_one_channel_are_paced_ahead_of_slacks_limit(
    api: Any, fresh_sandbox: Any
) -> None:
    """Slack's real interval (1 s per channel): toolqueue paces the second post itself, so
    Slack never refuses one; another channel is not held back."""
    account = slack(api, fresh_sandbox, interval_ms=1000)
    jobs = [api.call(TOOL, account_id=account, args={"channel": ch, "text": f"p{i}"})
            for i, ch in enumerate(["C01GENERAL", "C01GENERAL", "C02RANDOM0"])]  # fmt: skip
    done = [api.wait(j["job_id"]) for j in jobs]
    assert [d["status"] for d in done] == ["succeeded"] * 3
    assert [e["status"] for e in calls(fresh_sandbox, "chat.postMessage")] == [200, 200, 200]
    paced = [d for d in done if "waiting_rate_limit" in [h["status"] for h in d["history"]]]
    assert len(paced) == 1, [d["history"] for d in done]
    general = sorted(e["t"] for e in effects(fresh_sandbox, "slack")["effects"]
                     if e["object_id"].startswith("C01GENERAL"))  # fmt: skip
    assert len(general) == 2 and general[1] - general[0] >= 0.95
