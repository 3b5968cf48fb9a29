"""`toolqueue watch`: a live view of one job, redrawn on every state change (long-poll) and
once a second for the countdowns, until the job ends."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from app.client import Client
from app.kernel.states import TERMINAL, JobState

STYLE: dict[str, str] = {  # by job state
    JobState.SUCCEEDED: "bold green",
    JobState.COMPLETED_WITH_ERRORS: "bold yellow",
    JobState.FAILED: "bold red",
    JobState.CANCELLED: "yellow",
    JobState.WAITING_RATE_LIMIT: "magenta",
    JobState.WAITING_VENDOR: "cyan",
    JobState.NEEDS_REAUTH: "bold red",
}


def _epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def render(job: dict[str, Any], deliveries: list[dict[str, Any]], now: float) -> Group:
    """The view of one job at `now`: state (with a countdown while waiting), progress, the
    token refreshes and waits from its history, and its webhook attempts."""
    status = job["status"]
    head = Text.assemble(
        (f"{job['job_id']}  ", "bold"), (job["tool"], "dim"), "  ", (status, STYLE.get(status, ""))
    )
    retry_at = _epoch(job.get("retry_at"))
    if retry_at and status not in TERMINAL:
        head.append(f"  next try in {max(0.0, retry_at - now):.1f}s")
    if job.get("error"):
        head.append(f"  {job['error']['code']}: {job['error']['message']}", "red")
    progress = job["progress"]
    counts = ("pages", "records", "bytes", "blocks")
    numbers = Table.grid(padding=(0, 2))
    for _ in counts:
        numbers.add_column(justify="right")
    numbers.add_row(*(f"{progress[k]:,} {k}" for k in counts))
    history = Table("at", "state", "what happened", box=None, show_header=False)
    for entry in job["history"][-8:]:
        reason = entry["reason"]
        style = "cyan" if "token" in reason else STYLE.get(entry["status"] or "", "")
        history.add_row(entry["at"][11:23], entry["status"] or "", Text(reason, style))
    parts: list[Any] = [head, numbers, history]
    if deliveries:
        hooks = Table("webhook", "status", "latency", "error", box=None)
        for d in deliveries[-4:]:
            ok = d.get("status_code") and 200 <= d["status_code"] < 300
            hooks.add_row(
                f"attempt {d['attempt']}",
                Text(str(d.get("status_code") or "-"), "green" if ok else "red"),
                f"{d.get('latency_ms', 0):.0f} ms",
                d.get("error") or "",
            )
        parts.append(hooks)
    return Group(*parts)


def watch(
    client: Client, job_id: str, console: Console | None = None, budget_s: float | None = None
) -> dict[str, Any]:
    """Draw until the job ends and its webhook (if any) was tried (or 5 s after the end), or
    until `budget_s` passes; returns the last job view."""
    console = console or Console(stderr=True)
    deadline = None if budget_s is None else time.monotonic() + budget_s
    job = client.get(job_id)
    ended: float | None = None
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            hooks = client.deliveries(job_id)["deliveries"] if job.get("callback_url") else []
            live.update(render(job, hooks, time.time()), refresh=True)
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return job
            if job["status"] in TERMINAL:
                ended = ended or time.monotonic()
                if hooks or not job.get("callback_url") or time.monotonic() - ended > 5:
                    return job
                time.sleep(0.2)  # the webhook is on its way
                job = client.get(job_id)
                continue
            # a state change, or a tick of the clock for the countdown
            job = client.get(job_id, wait_s=min(1.0, left) if left is not None else 1.0)
