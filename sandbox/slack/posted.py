"""Messages the sandbox's ``chat.postMessage`` wrote, kept in the shared ``WriteStore`` under
``slack`` as ``<channel>:<ts>``; ``conversations.history`` lists them before the seeded ones
(their ts is the wall clock, newer than any seeded message)."""

from __future__ import annotations

import time
from typing import Any

from sandbox.state import SandboxState

NAME = "slack"


def oid(channel: str, ts: str) -> str:
    return f"{channel}:{ts}"


def listed(state: SandboxState, channel: str) -> list[dict[str, Any]]:
    """Posted messages of ``channel``, newest first (each with ``_us``, ``message``)."""
    rows = state.writes.select(NAME, lambda o: o.get("_channel") == channel)
    return sorted(rows, key=lambda o: -int(o["_us"]))


def next_us(state: SandboxState, channel: str) -> int:
    """A fresh ts (microseconds) for ``channel``: the clock, kept strictly increasing."""
    newest = listed(state, channel)
    floor = int(newest[0]["_us"]) + 1 if newest else 0
    return max(time.time_ns() // 1000, floor)


def shown(obj: dict[str, Any], with_metadata: bool) -> dict[str, Any]:
    """The message as history shows it; ``metadata`` only with ``include_all_metadata``."""
    message = dict(obj["message"])
    if not with_metadata:
        message.pop("metadata", None)
    return message
