"""A job's step as a Celery task (`app.work.steps` runs it)."""

from __future__ import annotations

import logging

from celery.exceptions import Reject

from app import dispatch
from app.dispatch import fairshare, lanes
from app.kernel.celery import app
from app.kernel.redis import STORE_ERRORS
from app.work import steps

log = logging.getLogger("toolqueue.steps")


@app.task(name="toolqueue.step", ignore_result=True)
def run_step(job_id: str, seq: int) -> None:
    try:
        steps.run(job_id, seq)
    except STORE_ERRORS as exc:
        # Requeue (or stay unacked): never ack a step Redis lost; the sweep covers it anyway.
        log.warning("job %s step %s: Redis unavailable (%s); step requeued", job_id, seq, exc)
        raise Reject(exc, requeue=True) from exc


@app.task(name=lanes.OFFER_TASK, ignore_result=True)
def bulk_offer(job_id: str, seq: int) -> None:
    """A bulk step is due: it joins the fair share, and one turn is sent for it (a copy
    sent again by the sweep sends a turn too: its first may have been lost)."""
    fairshare.offer(job_id, seq)
    dispatch.send_turn(job_id if seq == 0 else f"{job_id}.{seq}")


@app.task(name=lanes.TURN_TASK, ignore_result=True)
def bulk_turn() -> None:
    """Run the fairest waiting bulk step (`app.dispatch.fairshare`), if any may run."""
    taken = fairshare.take()
    if taken is None:
        return
    try:
        run_step(*taken)
    finally:
        if fairshare.done(*taken):
            dispatch.send_turn(f"{taken[0]}.{taken[1]}.freed")
