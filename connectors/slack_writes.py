"""Slack `chat.postMessage`, with the operation's key in the message `metadata`.

Slack has no idempotency key (`Mechanism.MARKER`): a message carries `metadata`
`{"event_type": "toolqueue_op", "event_payload": {"op": <key>}}` and, before an uncertain one
is resent, `find` reads the channel's newest messages (`conversations.history` with
`include_all_metadata=true`, a few pages) for that payload.

Slack refuses with HTTP 200 `{"ok": false, "error"}` (`channel_not_found`, `no_text`,
`invalid_blocks`, …); `connectors.slack.classify` raises those as VendorError with the 200's
status, which the write loop would not take for a refusal, so `send` turns them into the
record's rejection itself (auth errors still go to the refresh path). The per-channel posting
limit (about one message per second per channel) answers 429 `rate_limited` with
`Retry-After`: RateLimited, the sent mark cleared, the job waiting as long as Slack says. No
proactive pacing here: a job posts one message, and jobs share no per-channel clock.

The preview reads the channel (`conversations.info`): the message would be created there, or
refused as `chat.postMessage` would refuse it (`channel_not_found`, `is_archived`); a token
without `channels:read` (`missing_scope`) gets the default preview.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import Http, Tool
from connectors.errors import Unauthorized, VendorError
from connectors.writes import (
    ItemResult,
    Mechanism,
    Operation,
    Pace,
    PreviewItem,
    Write,
    creates,
    one,
    rejected,
    would_reject,
)

EVENT_TYPE = "toolqueue_op"
HISTORY_PAGES = 3  # newest messages looked at for an uncertain post: 3 x 200
HISTORY_LIMIT = 200


class PostArgs(BaseModel):
    """Arguments of `slack.chat.post_message`."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(
        pattern=r"^[CGD][A-Z0-9]{2,30}$",
        description="Conversation id (C… public, G… private, D… direct message)",
    )
    text: str = Field(
        min_length=1, max_length=40_000, description="The message (the fallback with blocks)"
    )
    blocks: list[dict[str, Any]] | None = Field(
        None, min_length=1, max_length=50, description="Block Kit blocks, as Slack takes them"
    )

    @field_validator("blocks")
    @classmethod
    def _typed(cls, blocks: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        for n, block in enumerate(blocks or []):
            if not isinstance(block.get("type"), str):
                raise ValueError(f"block {n} has no `type`")
        return blocks


def metadata(op: Operation) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"op": op.key}}


def _send(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    body: dict[str, Any] = {"channel": args.channel, "text": args.text, "metadata": metadata(op)}
    if args.blocks:
        body["blocks"] = args.blocks
    try:
        doc = http.request("POST", "/api/chat.postMessage", json=body).json()
    except Unauthorized:
        raise
    except VendorError as exc:  # Slack's `ok: false`, in a 200 or a 4xx
        return [rejected(i, exc.code, exc.message)]
    return [ItemResult(i, "created", message_id(str(doc["channel"]), str(doc["ts"])))]


def message_id(channel: str, ts: str) -> str:
    """A message's id in the result: Slack names a message by its channel and `ts`."""
    return f"{channel}:{ts}"


def _is_mark(message: Any, key: str) -> bool:
    meta = message.get("metadata") if isinstance(message, dict) else None
    if not isinstance(meta, dict) or meta.get("event_type") != EVENT_TYPE:
        return False
    payload = meta.get("event_payload")
    return isinstance(payload, dict) and payload.get("op") == key


def _find(http: Http, op: Operation) -> list[ItemResult] | None:
    ((i, args),) = op.items
    params: dict[str, Any] = {
        "channel": args.channel,
        "include_all_metadata": "true",
        "limit": HISTORY_LIMIT,
    }
    for _ in range(HISTORY_PAGES):
        try:
            doc = http.request("GET", "/api/conversations.history", params=params).json()
        except Unauthorized:
            raise
        except VendorError:  # no such channel (or not in it): nothing was posted
            return None
        for message in doc.get("messages") or []:
            if _is_mark(message, op.key):
                return [ItemResult(i, "created", message_id(args.channel, str(message["ts"])))]
        cursor = (doc.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
        params["cursor"] = cursor
    return None


def _preview(http: Http, op: Operation) -> list[PreviewItem]:
    ((i, args),) = op.items
    try:
        doc = http.request("GET", "/api/conversations.info", params={"channel": args.channel})
    except Unauthorized:
        raise
    except VendorError as exc:
        if exc.code == "channel_not_found":
            return [would_reject(i, exc.code, exc.message)]
        if exc.code == "missing_scope":  # no `channels:read`: the default says what it can
            return creates(http, op)
        raise
    if (doc.json().get("channel") or {}).get("is_archived"):
        return [would_reject(i, "is_archived", "Channel has been archived")]
    return creates(http, op)


def _channel(op: Operation) -> str:
    return str(op.payloads[0].channel)


post_message = Tool(
    name="slack.chat.post_message",
    description=(
        "Post one message to a Slack conversation (chat.postMessage): text, optional Block Kit "
        "blocks. Safe to retry: the message carries the operation's key in its metadata, looked "
        "up in the channel's history before anything is resent. The result's id is "
        '"<channel>:<ts>"; Slack\'s refusals (channel_not_found, invalid_blocks, …) come back '
        "as a rejected record with Slack's error code."
    ),
    args=PostArgs,
    read_only=False,
    idempotent=False,  # a new call posts again (the marker guards retries of one call)
    # Slack: about one message per second per channel (api.slack.com, "Rate limits")
    write=Write(Mechanism.MARKER, one, _send, _find, (Pace("post", 1, 1.0, _channel),), _preview),
)
TOOLS = (post_message,)
