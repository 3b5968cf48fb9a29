"""Lanes: Celery queues by kind of work, and which work takes which — in one place.

- `interactive`: a job's steps while it looks short (an agent waits on it);
- `bulk`: steps of jobs that have shown themselves long (pages fetched, or time since the
  first step: `bulk_after_pages`, `bulk_after_s`), exports (`delivery: blocks`) and
  continuations of long jobs from their first step; bulk capacity is shared fairly among
  tenants (`app.dispatch.fairshare`);
- `webhooks`: job webhooks and account events;
- `housekeeping`: beat's periodic tasks (token refresh, re-auth expiry).

Workers consume lanes (`celery -A app.celery worker -Q interactive`), so interactive work
and webhooks always have capacity that bulk work cannot take. A job's lane is on its record
(`lane`); it only ever moves from interactive to bulk.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Lane(StrEnum):
    INTERACTIVE = "interactive"
    BULK = "bulk"
    WEBHOOKS = "webhooks"
    HOUSEKEEPING = "housekeeping"


ALL = tuple(Lane)
STEP_TASK = "toolqueue.step"
OFFER_TASK = "toolqueue.bulk_offer"  # a bulk step's message: join the fair share, send a turn
TURN_TASK = "toolqueue.bulk_turn"  # a bulk worker's turn: run the fairest waiting step
# tasks whose lane is the task's own (the steps' lane is the job's)
TASK_LANES: dict[str, Lane] = {
    "toolqueue.deliver_webhook": Lane.WEBHOOKS,
    "toolqueue.deliver_account_event": Lane.WEBHOOKS,
    "toolqueue.refresh_tokens": Lane.HOUSEKEEPING,
    "toolqueue.expire_reauth": Lane.HOUSEKEEPING,
    "toolqueue.wake_due": Lane.HOUSEKEEPING,
    OFFER_TASK: Lane.BULK,
    TURN_TASK: Lane.BULK,
}


def first(delivery: str, continued: bool) -> Lane:
    """A new job's lane: exports and continuations are long by construction."""
    return Lane.BULK if delivery == "blocks" or continued else Lane.INTERACTIVE


def next_step(job: Mapping[str, Any], settings: Any) -> Lane:
    """The lane of a job's next step: bulk once it has shown itself long, by pages fetched
    or by time spent working since its first step (its waits, on rate limits, retries or
    the vendor, are not work: a paced job is not a long one)."""
    if job.get("lane") == Lane.BULK:
        return Lane.BULK
    started = job.get("started_at")
    waited = sum(job.get(k) or 0.0 for k in ("waited_s", "retry_waited_s", "vendor_waited_s"))
    spent = time.time() - started - waited if started else 0.0
    if (job.get("pages") or 0) >= settings.bulk_after_pages or spent >= settings.bulk_after_s:
        return Lane.BULK
    return Lane.INTERACTIVE


def route(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str]:
    """Celery's `task_routes` hook: the queue of every task sent without an explicit one."""
    return {"queue": TASK_LANES.get(name, Lane.INTERACTIVE).value}
