"""Job state → MCP task (SEP-2663): the status mapping the README documents, and the Task's
wire fields (camelCase, as the tasks extension names them)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from app.kernel.timefmt import now_iso
from app.mcp.tasks import MAX_POLL_MS, POLL_MS, task


def job(status: str, **over: Any) -> dict[str, Any]:
    return {
        "job_id": "3f1c9a8e-0000-4000-8000-000000000001", "status": status,
        "account_id": "acc_1", "created_at": "2026-11-28T10:00:00Z",
        "updated_at": "2026-11-28T10:00:05Z", "retry_at": None, "truncated": False,
        "error": None, "progress": {"pages": 3, "records": 300}, **over,
    }  # fmt: skip


@pytest.mark.parametrize(("state", "status", "message"), [
    ("queued", "working", "queued: "),
    ("running", "working", "running: 3 pages, 300 records so far"),
    ("waiting_rate_limit", "working", "waiting_rate_limit: the vendor's rate limit"),
    ("waiting_vendor", "working", "waiting_vendor: the vendor's export is running"),
    ("needs_reauth", "working", "needs_reauth: account acc_1's refresh token was rejected"),
    ("succeeded", "completed", "succeeded: 300 records"),
    ("failed", "completed", "failed: vendor_error: boom"),
    ("cancelled", "cancelled", "cancelled"),
])  # fmt: skip
def test_job_states_map_to_task_statuses(state: str, status: str, message: str) -> None:
    t = task(job(state, error={"code": "vendor_error", "message": "boom"}))
    assert t["status"] == status
    assert t["statusMessage"].startswith(message)
    assert t["taskId"] == job(state)["job_id"]
    expected = {"taskId", "status", "statusMessage", "createdAt", "lastUpdatedAt", "ttlMs"}
    if status == "working":  # only a task still working is told when to poll again
        expected.add("pollIntervalMs")
    assert set(t) == expected
    assert t["createdAt"] == "2026-11-28T10:00:00Z" and t["lastUpdatedAt"].endswith("05Z")
    assert t["ttlMs"] > 0


def test_a_waiting_task_is_told_to_poll_when_the_wait_ends() -> None:
    soon = task(job("waiting_rate_limit", retry_at=now_iso(time.time() + 12)))
    assert 10_000 <= soon["pollIntervalMs"] <= 12_000
    assert "until 20" in soon["statusMessage"]
    far = task(job("waiting_vendor", retry_at=now_iso(time.time() + 3600)))
    assert far["pollIntervalMs"] == MAX_POLL_MS
    assert task(job("running"))["pollIntervalMs"] == POLL_MS


def test_a_truncated_result_says_where_the_rest_is() -> None:
    assert "continuation" in task(job("succeeded", truncated=True))["statusMessage"]
