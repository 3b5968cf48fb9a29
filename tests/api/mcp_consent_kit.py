"""Helpers of the MCP consent tests (tests/api/test_mcp_approvals.py): MCP task polling that
records the statuses a task went through (tenants and keys: tests/consentkit.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from mcp import Client
from mcp_types import CallToolResult

from app.mcp.client import get_task


def body(result: CallToolResult) -> dict[str, Any]:
    assert len(result.content) == 1 and result.content[0].type == "text", result
    out: dict[str, Any] = json.loads(result.content[0].text)
    return out


async def follow(
    client: Client, task_id: str, until: tuple[str, ...], seen: list[str], timeout: float = 60
) -> dict[str, Any]:
    """tasks/get every 50 ms until the task's status is one of `until`; each status change is
    appended to `seen` (so a test can assert the whole path, not only the end)."""
    deadline = time.monotonic() + timeout
    while True:
        task = await get_task(client, task_id)
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        if task["status"] in until:
            return task
        assert time.monotonic() < deadline, f"task never got to {until}: {task}"
        await anyio.sleep(0.05)
