"""Housekeeping as tasks, for a beat run with another scheduler than `app.beat:Scheduler`
(which runs these sweeps inline and never sends them)."""

from __future__ import annotations

from app import dispatch
from app.celery import app


@app.task(name="toolqueue.wake_due", ignore_result=True)
def wake_due() -> int:
    """Send pending work past its deadline (`app.dispatch.wake_due`)."""
    return dispatch.wake_due()
