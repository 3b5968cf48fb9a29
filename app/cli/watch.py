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
    JobState.AWAITING_APPROVAL: "bold blue",
}
APPROVAL_STYLE = {"pending": "bold blue", "approved": "green", "rejected": "yellow"}


def _epoch(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() if iso else None


def preview_counts(summary: dict[str, Any] | None) -> str:
    """`1 update, 2 unchanged of 3 records`: a preview summary's non-zero counts."""
    if not summary:
        return ""
    counts = [f"{n:,} {k}" for k, n in summary.items()
              if k not in ("ops", "done_ops", "records") and n]  # fmt: skip
    total = f"{summary.get('records', 0):,} records"
    return f"{', '.join(counts)} of {total}" if counts else total


def _span(seconds: float) -> str:
    """`42s`, `17m`, `23h59m`: how long is left, as a person reads it."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    return f"{s // 60}m" if s < 7200 else f"{s // 3600}h{s % 3600 // 60:02d}m"


def consent(job: dict[str, Any], now: float) -> Text | None:
    """The preview's counts and the approval's state (pending until when, or who decided and
    why), for a dry run or a job policy held for approval."""
    approval, summary = job.get("approval"), job.get("preview")
    if not approval and not summary:
        return None
    line = Text()
    if summary:
        line.append(f"preview: {preview_counts(summary)}")
    if approval:
        state = approval.get("state", "")
        line.append("  approval " if summary else "approval ")
        line.append(state, APPROVAL_STYLE.get(state, ""))
        if approval.get("reason"):
            line.append(f" ({approval['reason']})")
        expires = _epoch(approval.get("expires_at"))
        if state == "pending" and expires:
            line.append(f" until {approval['expires_at']}, {_span(expires - now)} left")
        if approval.get("decided_by"):
            line.append(f" by {approval['decided_by']}")
        if approval.get("note"):
            line.append(f": {approval['note']}")
    return line


def render(job: dict[str, Any], deliveries: list[dict[str, Any]], now: float) -> Group:
    """The view of one job at `now`: state (with a countdown while waiting), progress, the
    preview and approval, the token refreshes and waits from its history, and its webhook
    attempts."""
    status = job["status"]
    head = Text.assemble(
        (f"{job['job_id']}  ", "bold"), (job["tool"], "dim"), "  ", (status, STYLE.get(status, ""))
    )
    if job.get("dry_run"):
        head.append("  dry run: nothing is written", "cyan")
    retry_at = _epoch(job.get("retry_at"))
    if retry_at and status not in TERMINAL and status != JobState.AWAITING_APPROVAL:
        head.append(f"  next try in {max(0.0, retry_at - now):.1f}s")  # (approval: its expiry)
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
    held = consent(job, now)
    if held is not None:
        parts.insert(2, held)
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
