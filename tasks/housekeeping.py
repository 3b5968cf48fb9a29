"""Beat's periodic work as Celery tasks. The once-a-second sweep runs inside beat itself
(`app.dispatch.beat:Scheduler`); it is a task too for a beat run with another scheduler."""

from __future__ import annotations

import logging

from app import dispatch
from app.kernel.celery import app
from app.work import reauth, refresh

log = logging.getLogger("toolqueue.housekeeping")


@app.task(name="toolqueue.wake_due", ignore_result=True)
def wake_due() -> int:
    """Send pending work past its deadline (`app.dispatch.wake_due`)."""
    return dispatch.wake_due()


@app.task(name="toolqueue.refresh_tokens", ignore_result=True)
def refresh_tokens() -> int:
    """Refresh every token about to expire (`app.work.refresh`)."""
    return refresh.refresh_expiring()


@app.task(name="toolqueue.expire_reauth", ignore_result=True)
def expire_reauth() -> int:
    """Parked jobs whose account was never re-authorized fail after reauth_timeout_s."""
    expired = reauth.expire()
    if expired:
        log.info("%d job(s) failed with reauth_timeout", len(expired))
    return len(expired)
