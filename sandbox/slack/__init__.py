"""Slack Web API double: reads with Slack's dialect (:mod:`.reads`: conversations.history,
users.list, oauth.v2.access) and chat writes marked by message metadata (:mod:`.writes`,
messages kept in :mod:`.posted`)."""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.slack import reads, writes
from sandbox.slack.reads import (
    ACCESS_PREFIX,
    CHANNELS,
    NAME,
    REFRESH_PREFIX,
    ROTATES_REFRESH_TOKENS,
    TEAM_ID,
    decode_cursor,
    encode_cursor,
    member,
    message,
    ts_str,
    ts_us,
    user_id,
)

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])
for _part in (reads, writes):
    router.include_router(_part.router)

__all__ = [
    "ACCESS_PREFIX",
    "CHANNELS",
    "NAME",
    "REFRESH_PREFIX",
    "ROTATES_REFRESH_TOKENS",
    "TEAM_ID",
    "decode_cursor",
    "encode_cursor",
    "member",
    "message",
    "router",
    "ts_str",
    "ts_us",
    "user_id",
]
