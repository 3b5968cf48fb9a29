"""Which lane each kind of work takes, and when a job moves from interactive to bulk."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from support import LANES

from app.dispatch import lanes
from app.dispatch.lanes import Lane
from app.kernel.celery import app

SETTINGS = SimpleNamespace(bulk_after_pages=5, bulk_after_s=2.0)


def test_the_test_workers_consume_every_lane() -> None:
    assert tuple(lane.value for lane in lanes.ALL) == LANES


@pytest.mark.parametrize(
    ("task", "lane"),
    [
        ("toolqueue.deliver_webhook", Lane.WEBHOOKS),
        ("toolqueue.deliver_account_event", Lane.WEBHOOKS),
        ("toolqueue.refresh_tokens", Lane.HOUSEKEEPING),
        ("toolqueue.expire_reauth", Lane.HOUSEKEEPING),
        ("toolqueue.wake_due", Lane.HOUSEKEEPING),
        ("toolqueue.bulk_offer", Lane.BULK),
        ("toolqueue.bulk_turn", Lane.BULK),
        ("toolqueue.step", Lane.INTERACTIVE),  # a step sent without its lane: the default
    ],
)
def test_celery_routes_each_task_by_name(task: str, lane: Lane) -> None:
    assert app.amqp.router.route({}, task, (), {})["queue"].name == lane.value


@pytest.mark.parametrize(
    ("delivery", "continued", "lane"),
    [("single", False, Lane.INTERACTIVE), ("blocks", False, Lane.BULK),
     ("single", True, Lane.BULK)],  # fmt: skip
)
def test_exports_and_continuations_start_bulk(delivery: str, continued: bool, lane: Lane) -> None:
    assert lanes.first(delivery, continued) is lane


def test_a_job_moves_to_bulk_once_it_shows_itself_long_and_never_back() -> None:
    now = time.time()

    def lane(**job: object) -> Lane:
        return lanes.next_step({"lane": "interactive", "started_at": now, **job}, SETTINGS)

    assert lane(pages=4) is Lane.INTERACTIVE
    assert lane(pages=5) is Lane.BULK  # pages
    assert lane(pages=1, started_at=now - 2.5) is Lane.BULK  # time working
    # time waiting (a rate limit, a retry, the vendor) is not work
    assert lane(pages=1, started_at=now - 9, waited_s=5.0, retry_waited_s=1.0,
                vendor_waited_s=2.0) is Lane.INTERACTIVE  # fmt: skip
    assert lanes.next_step({}, SETTINGS) is Lane.INTERACTIVE  # an older record, no lane
    assert lane(lane="bulk", pages=0) is Lane.BULK  # never back
