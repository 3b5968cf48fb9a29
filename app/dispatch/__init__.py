"""The one scheduler: every piece of pending work has a deadline, and a sweep sees that it runs.

Work is a job's next step, a job webhook's next delivery attempt, an account event's next
attempt to one target, or a pipeline's next coordinator run. Each has a member name
(`keys.step_work`, `keys.webhook_work`, `keys.event_work`, `keys.pipeline_work`), the attempt
in hand (the step number, the delivery attempt) in `keys.PENDING`, and a deadline in
`keys.DUE`:

- work sent now, or after a countdown inside half the broker's visibility timeout, must have
  started by then + `dispatch_grace_s`;
- a longer wait is not sent at all (the Redis transport redelivers a long countdown early,
  once per visibility timeout): it is parked, and its deadline is the wake time.

Beat's sweep (`wake_due`, every second, in the beat process itself) sends the task of every
member past its deadline that no live lease holds: a parked wait that came due, or a message
that never reached a worker or whose worker died. kombu's Redis transport pops a message and
records it as unacked in two steps, so a worker killed between them loses the message; the
visibility timeout cannot bring back what it never recorded. With a lease renewed while the
work runs (`app.leases`), a worker killed mid-step is noticed when its lease lapses
(`step_lease_s`), not after the visibility timeout. A task sent twice is harmless: it runs
only for the attempt still pending, under that work's lease.

Tasks are sent by name, so producers need not import the task modules.
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum

from app.dispatch import fairshare, lanes
from app.dispatch.lanes import Lane
from app.kernel import keys, metrics
from app.kernel.celery import app as celery
from app.kernel.leases import LAPSE_SLACK_S
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.settings import get_settings
from app.store.jobstore import Plan

log = logging.getLogger("toolqueue.dispatch")

STEP_TASK = "toolqueue.step"
WEBHOOK_TASK = "toolqueue.deliver_webhook"
EVENT_TASK = "toolqueue.deliver_account_event"
PIPELINE_TASK = "toolqueue.pipeline"
BACKOFF_CAP = 5  # a task never started is sent again after grace * 2^min(sends, cap)
CLAIM_S = 5.0  # a claimed member is hidden from other sweeps this long
SWEEP_BATCH = 500


def plan(countdown: float = 0.0, now: float | None = None) -> Plan:
    """A countdown inside half the visibility timeout is sent now and must start within the
    grace after it; a longer one is parked until it is due."""
    s = get_settings()
    now = time.time() if now is None else now
    countdown = max(countdown, 0.0)
    if countdown > s.visibility_timeout_s / 2:
        return Plan(countdown, now + countdown, True)
    return Plan(countdown, now + countdown + s.dispatch_grace_s, False)


def route(member: str, attempt: int) -> tuple[str, list[object], str]:
    """The task that does `attempt` of `member`: its name, arguments and Celery task id (a
    job's step 0 is the job id itself, so Flower and the API show the same id)."""
    kind, _, ident = member.partition(":")
    if kind == "step":
        return STEP_TASK, [ident, attempt], ident if attempt == 0 else f"{ident}.{attempt}"
    if kind == "hook":
        suffix = "" if attempt == 0 else f".{attempt}"
        return WEBHOOK_TASK, [ident, attempt], f"{ident}.webhook{suffix}"
    if kind == "event":
        event_id, _, target = ident.partition(":")
        suffix = "" if attempt == 0 else f".{attempt}"
        return EVENT_TASK, [event_id, target, attempt], f"{event_id}.{target or 'account'}{suffix}"
    if kind == "pipe":
        return PIPELINE_TASK, [ident, attempt], f"{ident}.tick.{attempt}"
    raise ValueError(f"no task does work {member!r}")


def send(member: str, attempt: int, work: Plan | None = None, lane: str | None = None) -> None:
    """Send the task now or after `work`'s countdown; a parked plan sends nothing (the sweep
    will). The deadline was recorded by the caller's own atomic write. A step goes to its
    job's lane (`lane`, else the job record's); a bulk step is offered to the fair share
    (`app.dispatch.fairshare`) rather than run in arrival order."""
    work = work or plan()
    if work.parked:
        return
    name, args, task_id = route(member, attempt)
    queue = lanes.TASK_LANES.get(name, Lane.INTERACTIVE).value
    if name == STEP_TASK:
        queue = lane or get_redis().hget(keys.job(str(args[0])), "lane") or Lane.INTERACTIVE
        if queue == Lane.BULK and not work.countdown:
            # due now: into the fair share at once (behind the broker's FIFO of turns, a
            # tenant's next step would not be waiting when the next turn chooses), one turn
            fairshare.offer(str(args[0]), attempt)
            send_turn(task_id)
            return
        if queue == Lane.BULK:
            name = lanes.OFFER_TASK  # due later: offered when its countdown ends
    celery.send_task(
        name, args=args, task_id=task_id, countdown=work.countdown or None, queue=queue
    )


def send_turn(offered: str) -> None:
    """One bulk worker's turn at the fairest waiting step (`app.dispatch.fairshare`), named
    for the step whose offer sent it (it runs the fairest step, which may be another's)."""
    celery.send_task(lanes.TURN_TASK, task_id=f"{offered}.turn", queue=Lane.BULK.value)


def send_once(task: str, args: list[object], task_id: str) -> None:
    """A single task no deadline watches (a manual redelivery: whoever asked sees its
    outcome in the delivery log, and can ask again)."""
    celery.send_task(task, args=args, task_id=task_id)


def start(member: str, work: Plan | None = None) -> bool:
    """Begin `member` at attempt 0 and send it; False (and nothing sent) if it had begun."""
    work = work or plan()
    started = run_script(source("work_start"), [keys.DUE, keys.PENDING], [member, work.deadline])
    if started:
        send(member, 0, work)
    return bool(started)


def advance(member: str, attempt: int, work: Plan) -> bool:
    """Attempt `attempt` ended and `attempt + 1` follows per `work`; False when another copy
    of the attempt moved it first (then it sends nothing)."""
    moved = _next(member, attempt, attempt + 1, work)
    if moved:
        send(member, attempt + 1, work)
    return moved


def settle(member: str, attempt: int) -> bool:
    """The work is done with `attempt` (delivered, given up, or gone): nothing more pending."""
    return _next(member, attempt, None, None)


def _next(member: str, attempt: int, following: int | None, work: Plan | None) -> bool:
    argv: list[object] = [member, attempt, "" if following is None else following]
    argv += [work.deadline, "1" if work.parked else "0"] if work else ["", ""]
    moved = run_script(source("work_next"), [keys.DUE, keys.PENDING], argv)
    return bool(moved)


def poke(member: str) -> None:
    """A coordinator (a pipeline's) has news: its pending attempt runs now rather than at its
    guard time, and the flag makes an attempt running meanwhile run once more after."""
    get_redis().hset(keys.POKED, member, 1)
    attempt = pending(member)
    if attempt is not None:
        send(member, attempt)


def unpoke(member: str) -> None:
    get_redis().hdel(keys.POKED, member)


def poked(member: str) -> bool:
    return bool(get_redis().hexists(keys.POKED, member))


def pending(member: str) -> int | None:
    """The attempt pending for `member` (None: nothing is)."""
    value = get_redis().hget(keys.PENDING, member)
    return int(value.split(":", 1)[0]) if value else None


class How(StrEnum):
    """How pending work stands (the middle part of its `tq:pending` value, work.lua)."""

    PARKED = "p"  # no message sent yet: the sweep sends it when it comes due
    SENT = "s"  # a message went out; come due again, it never started or its worker died


def wake_due(now: float | None = None) -> int:
    """Beat: send the task of every member past its deadline that no lease holds (see the
    module docstring). Returns how many were sent."""
    s = get_settings()
    now = time.time() if now is None else now
    claimed = run_script(source("claim_due"), [keys.DUE], [now, SWEEP_BATCH, CLAIM_S])
    sent = 0
    for member in claimed:  # type: ignore[attr-defined]
        verdict = run_script(
            source("sweep_one"),
            [keys.DUE, keys.PENDING, keys.lease(member)],
            [member, now, s.dispatch_grace_s, LAPSE_SLACK_S, BACKOFF_CAP],
        )
        if not verdict:
            continue
        attempt, how = int(verdict[0]), verdict[1]  # type: ignore[index]
        if how == How.SENT:
            kind = member.partition(":")[0]
            log.warning("%s attempt %d never started, or its worker died: resent", member, attempt)
            metrics.incr("work_resent", {"kind": kind})
        send(member, attempt)
        sent += 1
    return sent
