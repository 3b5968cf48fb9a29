"""A dry run of Slack's chat.postMessage on the real stack: nothing is posted, the message
would be created in a channel Slack has, and refused (`channel_not_found`) in one it has not."""

from __future__ import annotations

from typing import Any

from ledger import connect
from previewing import dry_run, read

TOOL = "slack.chat.post_message"


def test_a_slack_post_previews_without_posting(api: Any, fresh_sandbox: Any) -> None:
    account = connect(api, fresh_sandbox, "slack")
    before = read(fresh_sandbox, "slack", "/api/conversations.history", channel="C01GENERAL")
    args = {
        "channel": "C01GENERAL",
        "text": "Deploy done",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*Deploy* done"}}],
    }
    rec = dry_run(api, fresh_sandbox, "slack", account, TOOL, args)
    assert rec == {"index": 0, "action": "create", "id": None, "proposed": args}
    rec = dry_run(api, fresh_sandbox, "slack", account, TOOL, {**args, "channel": "C99NOPE00"})
    assert rec["action"] == "reject" and rec["error"]["code"] == "channel_not_found", rec
    after = read(fresh_sandbox, "slack", "/api/conversations.history", channel="C01GENERAL")
    assert after["messages"] == before["messages"]  # the channel holds no new message
