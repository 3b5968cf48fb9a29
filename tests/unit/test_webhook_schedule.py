"""Which delay follows a failed webhook attempt (tasks/webhooks.next_delay): the schedule,
a receiver's Retry-After on 429/502/503/504, nothing after a 2xx, a 410 or the last attempt."""

from __future__ import annotations

import pytest

from app.work.deliveries import Outcome, next_delay

SCHEDULE = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]


def fail(status: int | None, retry_after: float | None = None) -> Outcome:
    return Outcome(status, f"receiver answered {status}", retry_after)


def test_schedule_delays_follow_each_failure():
    assert [next_delay(fail(500), a, SCHEDULE) for a in range(8)] == [*SCHEDULE[1:], None]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retry_after_replaces_the_next_delay(status):
    assert next_delay(fail(status, 1.0), 0, SCHEDULE) == 1.0
    assert next_delay(fail(status, 10**7), 0, SCHEDULE) == 86400.0  # capped at a day
    assert next_delay(fail(status), 1, SCHEDULE) == 300  # none given: the schedule
    assert next_delay(fail(status, 1.0), 7, SCHEDULE) is None  # the attempts stay 8


def test_retry_after_only_counts_on_those_statuses():
    assert next_delay(fail(500, 1.0), 0, SCHEDULE) == 5
    assert next_delay(fail(301, 1.0), 0, SCHEDULE) == 5


def test_delivered_and_disabled_stop():
    assert next_delay(Outcome(204, ""), 0, SCHEDULE) is None
    assert next_delay(fail(410), 0, SCHEDULE) is None
    assert next_delay(Outcome(None, "ConnectionError"), 0, SCHEDULE) == 5
