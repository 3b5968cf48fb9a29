"""A job's step as a Celery task (`app.work.steps` runs it)."""

from __future__ import annotations

import logging

from celery.exceptions import Reject

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
