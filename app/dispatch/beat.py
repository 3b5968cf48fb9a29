"""Beat's scheduler: Celery's persistent one, except that housekeeping sweeps run here, in the
beat process itself, instead of as task messages.

A once-a-second sweep sent as a task would be a task in Flower every second (an operator
opening Flower would see housekeeping, not jobs), a message on the broker and a worker's
time. The sweeps are a few Redis calls each, so beat runs them inline; tasks that call
vendors (the proactive token refresh) stay tasks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery.beat import PersistentScheduler
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from app import dispatch

log = logging.getLogger("toolqueue.beat")

# Entry task names that beat runs in-process (see app/celery.py's beat_schedule).
INLINE: dict[str, Callable[[], object]] = {"toolqueue.wake_due": dispatch.wake_due}


class Scheduler(PersistentScheduler):
    """Runs `INLINE` entries in-process (quietly: beat logs every task it sends, which for a
    once-a-second sweep is a log line a second); every other entry is sent as a task."""

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        run = INLINE.get(entry.task)
        if run is None:
            super().apply_entry(entry, producer=producer)
            return
        try:
            run()
        except (RedisError, OperationalError) as exc:  # Redis away: the next tick tries again
            log.warning("%s skipped: %s", entry.task, type(exc).__name__)
        except Exception:  # a bug must not stop beat (and every other schedule with it)
            log.exception("%s failed", entry.task)
