"""The one scheduler's sweep on a real Redis (app/dispatch.py): what it sends, and when it
looks again. Sends are captured in this process; the deadlines are Redis's own."""

from __future__ import annotations

from typing import Any

import pytest

from app import dispatch
from app.kernel import keys
from app.kernel.settings import get_settings

NOW = 2_000_000_000.0  # far ahead of the live sweep in beat, which never sees these members


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch, r: Any) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []

    def send(member: str, attempt: int, work: Any = None, lane: Any = None) -> None:
        if member.startswith("step:sweep-"):  # not earlier tests' work, due before NOW too
            out.append((member, attempt))

    monkeypatch.setattr(dispatch, "send", send)
    yield out
    for m in ("step:sweep-a", "step:sweep-b", "step:sweep-c"):
        r.zrem(keys.DUE, m)
        r.hdel(keys.PENDING, m)
        r.delete(keys.lease(m))


def pend(r: Any, member: str, value: str, deadline: float) -> None:
    r.hset(keys.PENDING, member, value)
    r.zadd(keys.DUE, {member: deadline})


def test_parked_work_is_sent_when_due_and_a_lost_one_again_with_backoff(sent, r):
    grace = get_settings().dispatch_grace_s
    pend(r, "step:sweep-a", "4:p:0", NOW - 1)  # a parked wait that came due
    pend(r, "step:sweep-b", "2:s:0", NOW - 1)  # sent, never started
    pend(r, "step:sweep-c", "0:s:0", NOW + 60)  # not due yet
    dispatch.wake_due(now=NOW)
    assert sorted(sent) == [("step:sweep-a", 4), ("step:sweep-b", 2)]
    assert r.hget(keys.PENDING, "step:sweep-a") == "4:s:0"  # sent now: a resend counts next
    assert r.zscore(keys.DUE, "step:sweep-a") == pytest.approx(NOW + grace)
    assert r.hget(keys.PENDING, "step:sweep-b") == "2:s:1"
    assert r.zscore(keys.DUE, "step:sweep-b") == pytest.approx(NOW + 2 * grace)
    sent.clear()
    dispatch.wake_due(now=NOW + 2 * grace)
    assert sorted(sent) == [("step:sweep-a", 4), ("step:sweep-b", 2)]
    assert r.zscore(keys.DUE, "step:sweep-b") == pytest.approx(NOW + 2 * grace + 4 * grace)


def test_work_its_lease_holds_is_looked_at_again_after_the_lease(sent, r):
    pend(r, "step:sweep-a", "1:s:0", NOW - 1)
    r.set(keys.lease("step:sweep-a"), "someone", px=4000)
    dispatch.wake_due(now=NOW)
    assert sent == []
    assert NOW + 3 < r.zscore(keys.DUE, "step:sweep-a") <= NOW + 4 + dispatch.LAPSE_SLACK_S


def test_settled_work_leaves_the_schedule(sent, r):
    r.zadd(keys.DUE, {"step:sweep-a": NOW - 1})  # nothing pending any more
    dispatch.wake_due(now=NOW)
    assert sent == [] and r.zscore(keys.DUE, "step:sweep-a") is None


def test_an_attempt_moves_on_once(sent, r):
    plan = dispatch.plan(0.0)
    assert dispatch.start("step:sweep-a", plan)
    assert not dispatch.start("step:sweep-a", plan)  # begun already
    assert dispatch.advance("step:sweep-a", 0, plan)
    assert not dispatch.advance("step:sweep-a", 0, plan)  # a second copy of attempt 0
    assert dispatch.pending("step:sweep-a") == 1
    assert not dispatch.settle("step:sweep-a", 0)
    assert dispatch.settle("step:sweep-a", 1)
    assert dispatch.pending("step:sweep-a") is None
    assert r.zscore(keys.DUE, "step:sweep-a") is None
    assert sent == [("step:sweep-a", 0), ("step:sweep-a", 1)]


def test_a_long_wait_is_parked_not_sent():
    s = get_settings()
    assert not dispatch.plan(s.visibility_timeout_s / 2).parked
    far = dispatch.plan(s.visibility_timeout_s / 2 + 1, now=NOW)
    assert far.parked and far.deadline == NOW + s.visibility_timeout_s / 2 + 1
    assert dispatch.plan(1.0, now=NOW).deadline == NOW + 1.0 + s.dispatch_grace_s


def test_each_kind_of_work_has_its_task_and_id():
    assert dispatch.route("step:j1", 0) == ("toolqueue.step", ["j1", 0], "j1")
    assert dispatch.route("step:j1", 3) == ("toolqueue.step", ["j1", 3], "j1.3")
    assert dispatch.route("hook:j1", 0)[2] == "j1.webhook"
    assert dispatch.route("hook:j1", 2) == ("toolqueue.deliver_webhook", ["j1", 2], "j1.webhook.2")
    assert dispatch.route("event:evt_1:", 1) == (
        "toolqueue.deliver_account_event", ["evt_1", "", 1], "evt_1.account.1")
    with pytest.raises(ValueError):
        dispatch.route("nope:x", 0)
