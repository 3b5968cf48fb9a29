"""The Celery app (`celery -A app.celery worker|beat|flower`).

Reliability settings follow the design: late acks plus reject-on-worker-lost so a killed
worker's step is redelivered; prefetch 1 so a busy worker does not hoard steps; events on
so Flower sees a task from the moment it is sent. The broker's visibility timeout bounds
crash recovery (redelivery ≈ visibility timeout + restore sweep period), and every step's
soft time limit stays well inside it (checked by `Settings`).
"""

from __future__ import annotations

from celery import Celery

from app.kernel.settings import get_settings

settings = get_settings()

TASK_MODULES = ["tasks.steps", "tasks.webhooks", "tasks.housekeeping", "tasks.pipelines"]
app = Celery("toolqueue", include=TASK_MODULES)
app.conf.update(
    broker_url=settings.effective_redis_url,
    result_backend=settings.effective_redis_url,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        "visibility_timeout": settings.visibility_timeout_s,
        "unacked_restore_interval": settings.restore_interval_s,
        "unacked_restore_throttle": 1,
    },
    result_backend_transport_options={"visibility_timeout": settings.visibility_timeout_s},
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    event_serializer="json",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_send_task_events=True,
    task_send_sent_event=True,
    task_track_started=True,
    task_ignore_result=True,
    task_soft_time_limit=settings.step_time_limit_s,
    task_time_limit=settings.step_time_limit_s + 2,
    result_expires=settings.spool_ttl_s,
    worker_hijack_root_logger=False,
    worker_redirect_stdouts=False,
    timezone="UTC",
    # lanes (app/dispatch/lanes.py): a task sent without a queue goes by its name
    task_default_queue="interactive",
    task_routes=("app.dispatch.lanes.route",),  # by name, like beat_scheduler
    beat_scheduler="app.dispatch.beat:Scheduler",
    beat_schedule={
        # pending work past its deadline: parked waits that came due, lost messages, steps
        # whose worker died (app/dispatch); run inside beat itself (app/dispatch/beat.py)
        "wake-due-work": {"task": "toolqueue.wake_due", "schedule": 1.0},
        "refresh-expiring-tokens": {
            "task": "toolqueue.refresh_tokens",
            "schedule": settings.token_refresh_every_s,
        },
        "expire-reauth-jobs": {
            "task": "toolqueue.expire_reauth",
            "schedule": settings.reauth_sweep_every_s,
        },
    },
)
celery = app


def fail_fast() -> None:
    """The API's broker connections give up soon, like its Redis clients (`app.redis.API`):
    sending a job's step to a Redis that stopped answering must not hold the request (the job
    is recorded already; beat's sweep sends the step if this send fails). Call at start-up,
    before the first send."""
    app.conf.broker_transport_options = {
        **app.conf.broker_transport_options,
        "socket_timeout": 2.0,
        "socket_connect_timeout": 1.0,
    }
    app.conf.broker_connection_timeout = 1.0
    app.conf.task_publish_retry_policy = {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.2,
    }

