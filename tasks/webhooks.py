"""Webhook deliveries as Celery tasks (`app.work.deliveries` does them)."""

from __future__ import annotations

from app.kernel.celery import app
from app.work import deliveries


@app.task(name="toolqueue.deliver_webhook", ignore_result=True)
def deliver(job_id: str, attempt: int, manual: str = "") -> None:
    """One attempt of an ended job's webhook (`manual`: a redelivery asked for by hand)."""
    deliveries.deliver(job_id, attempt, manual)


@app.task(name="toolqueue.deliver_account_event", ignore_result=True)
def deliver_account_event(event_id: str, target: str, attempt: int) -> None:
    """One attempt of an account event to one target."""
    deliveries.deliver_account_event(event_id, target, attempt)
