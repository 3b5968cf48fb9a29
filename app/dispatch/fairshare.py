"""Fair share of the bulk lane among tenants: start-time fair queueing, in one mechanism.

A bulk step is not a message a worker runs in arrival order. It is *offered*: it joins one
sorted set of waiting bulk steps under a virtual start tag (the later of the lane's virtual
time, the start tag of the step last taken, and its tenant's finish tag, which then moves on
by 1/weight), and one *turn* (`bulk_turn`) is sent. A step due now is offered at once by
whoever hands it over (`app.dispatch.send`): were the offer a message behind the broker's
FIFO of turns, a tenant's next step would not be waiting when the next turn chooses. A step
due later is a `bulk_offer` message with the countdown, offered when it arrives.

A bulk worker's turn runs the waiting step with the smallest start tag whose tenant is under
its concurrency limit. A tenant with 200 steps waiting has start tags far ahead; one that
just arrived starts at the virtual time, ahead of them: bulk capacity is shared among the
tenants with work waiting, weighted by plan (`bulk_weight`), without a queue per tenant and
without polling (one turn per offer; a step that ends while a limit held others back sends
one more). A running step is never interrupted, so bulk steps are short
(`bulk_step_budget_s`).

Nothing here replaces the account's rate-limit budget: a step taken still paces itself
against its account's budget as every step does. A worker killed mid-turn loses nothing:
the step's lease (here) lapses, and its pending work (`app.dispatch`) is sent again.
"""

from __future__ import annotations

import time

from app.kernel import keys
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.settings import get_settings

_KEYS = [keys.BULK_READY, keys.BULK_OWNER, keys.BULK_VTIME, keys.BULK_LEASES, keys.BULK_RUNNING]
SCAN = 200  # waiting steps a turn looks at for one whose tenant is under its limit


def plan(tenant_id: str) -> tuple[float, int]:
    """The tenant's weight and bulk concurrency limit (0: none): its record, else settings."""
    s = get_settings()
    weight, limit = get_redis().hmget(keys.tenant(tenant_id), "bulk_weight", "bulk_concurrency")
    return (float(weight) if weight else s.bulk_weight), (
        int(limit) if limit else s.bulk_tenant_concurrency
    )


def offer(job_id: str, seq: int) -> bool:
    """Queue the job's step `seq` fairly; False if it was queued already (a copy)."""
    tenant = get_redis().hget(keys.job(job_id), "tenant_id")
    if not tenant:
        return False  # the job expired
    weight, limit = plan(tenant)
    guard = time.time() + get_settings().bulk_wait_guard_s
    argv = [f"{job_id}:{seq}", tenant, weight, limit, keys.step_work(job_id), seq, guard]
    queued = run_script(source("fair_offer"), [*_KEYS[:3], keys.DUE, keys.PENDING], argv)
    return bool(queued)


def take() -> tuple[str, int] | None:
    """The fairest waiting step, leased to this turn (None: nothing may run now)."""
    lease = get_settings().step_time_limit_s + 5
    member = run_script(source("fair_take"), _KEYS, [time.time(), lease, SCAN])
    if not member:
        return None
    job_id, _, seq = str(member).rpartition(":")
    return job_id, int(seq)


def done(job_id: str, seq: int) -> bool:
    """The step ended; True when a turn should be sent for steps a limit held back."""
    return bool(run_script(source("fair_done"), _KEYS, [f"{job_id}:{seq}"]))
