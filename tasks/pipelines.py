"""A pipeline's coordinator as a Celery task (`app.work.pipelinerun` runs it)."""

from __future__ import annotations

import logging

from celery.exceptions import Reject

from app.kernel.celery import app
from app.work import pipelinerun

log = logging.getLogger("toolqueue.pipelines")


@app.task(name="toolqueue.pipeline", ignore_result=True)
def tick(pipeline_id: str, attempt: int) -> None:
    try:
        pipelinerun.tick(pipeline_id, attempt)
    except pipelinerun.OUTAGE as exc:
        log.warning(
            "pipeline %s run %s: Redis unavailable (%s); requeued", pipeline_id, attempt, exc
        )
        raise Reject(exc, requeue=True) from exc
