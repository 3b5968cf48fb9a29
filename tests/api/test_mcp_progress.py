"""MCP `job_wait` keeps a client with a short request timeout informed: with a progressToken,
progress notifications (the job's state and progress) come more often than every 5 s (the
OpenAI Agents SDK's default timeout) for as long as the wait lasts. The official SDK client
against the real API, workers and a slow vendor sandbox."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import anyio
from support import wait_until

from app.kernel import keys
from app.mcp.client import connect

CLIENT_TIMEOUT_S = 5.0  # the OpenAI Agents SDK's default MCP request timeout
BUDGET_S = 9.0


def test_job_wait_sends_progress_more_often_than_a_client_times_out(
    api: Any, api_url: str, fresh_sandbox: Any, r: Any
) -> None:
    fresh_sandbox.config(latency_ms=1500)  # ten pages of 100: about 15 s, longer than the wait
    account = api.account(fresh_sandbox)
    call = {"account_id": account, "args": {"limit": 100}, "fields": ["id"]}
    heard: list[tuple[float, float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        heard.append((time.monotonic(), progress, total, message))

    async def main() -> tuple[float, float, dict[str, Any]]:
        async with connect(api_url, api.tenant["api_key"], tasks=False) as client:
            handle = await client.call_tool("hubspot_contacts_list", call)
            job_id = json.loads(handle.content[0].text)["job_id"]
            start = time.monotonic()
            waited = await client.call_tool(
                "job_wait", {"job_id": job_id, "budget_s": BUDGET_S}, progress_callback=on_progress
            )
            end = time.monotonic()
            await client.call_tool("job_cancel", {"job_id": job_id})
            return start, end, json.loads(waited.content[0].text)

    start, end, out = anyio.run(main)
    # the cancelled job's step ends with the page in flight (and flushes its metrics): let it,
    # so nothing of this test lands in the next one's counters
    wait_until(lambda: not r.exists(keys.lease(keys.step_work(out["job_id"]))), 15, 0.1)
    assert out["done"] is False and end - start >= BUDGET_S - 0.5  # the whole budget was waited

    times = [start] + [t for t, *_ in heard] + [end]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(heard) >= 4 and max(gaps) < CLIENT_TIMEOUT_S, gaps
    progress = [p for _, p, _, _ in heard]
    assert progress == sorted(progress) and len(set(progress)) == len(progress)  # it increases
    assert all(total == BUDGET_S for _, _, total, _ in heard)

    # each message is the job's state and progress as it was then
    counts = []
    for _, _, _, message in heard:
        m = re.fullmatch(r"job (\w+): (\d+) pages, (\d+) records so far; \d+s of the wait left",
                         message or "")  # fmt: skip
        assert m and m[1] in ("queued", "running", "waiting_rate_limit"), message
        counts.append(int(m[3]))
    assert counts == sorted(counts) and counts[-1] >= 100  # pages came in while it waited
    assert counts[-1] <= out["progress"]["records"]
