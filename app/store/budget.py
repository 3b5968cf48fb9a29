"""One request budget per account in Redis, shared by every worker and the proxy.

A sliding-window log (a sorted set of request times, by Redis `TIME`) admits a request only
while fewer than `limit` were made in the last `window`: exact for rolling windows (HubSpot's
ten seconds) and conservative for fixed ones. A token bucket or GCRA would admit up to twice
the limit within one rolling window (a full burst, then the refill), which is exactly what a
rolling vendor refuses. A request is logged when it is sent and re-stamped when its answer
is in, so the vendor's own (queued, later) arrival time is always covered.

Seeded from the vendor's documented policy (none: unlimited until a response says more),
then corrected by every response: a stated limit and window replace the seed; a `remaining`
below what the log explains (another app on the same account) adds phantom sends; a fixed
window's `reset` forgets the sends before it; a refusal closes the budget until the instant
the vendor named, for every worker at once. A response's report rides along with the next
`take` (one round trip per request); `flush` sends the last one.
"""

from __future__ import annotations

import secrets
from enum import IntEnum, StrEnum
from typing import Any

from app.kernel import keys
from app.kernel.lua import source
from app.kernel.redis import run_script
from connectors.base import RatePolicy
from connectors.ratelimit import RateLimit

STATE_TTL_S = 86400  # learned limits outlive a job, not an idle day
SPENT_PAUSE_S = 1.0  # `remaining: 0` with no reset: wait this long before asking again


class BudgetOp(StrEnum):
    """What budget.lua does after applying the last report (its ARGV[12])."""

    TAKE = "take"  # admit the next request, or say how long to wait
    OBSERVE = "observe"  # only apply the report


class BudgetReply(IntEnum):
    """budget.lua's reply code (the first element of its reply)."""

    REFUSED = 0  # {0, wait_s, limit}
    ADMITTED = 1  # {1, '0'}: the request is logged, send it
    OBSERVED = 2  # {2, '0'}: the report applied, nothing taken


_NOTHING = [""] * 8


def _arg(value: float | None) -> str:
    return "" if value is None else repr(value)


class Budget:
    """One account's budget as one sequential caller (a step, a proxy call) uses it."""

    def __init__(self, account_id: str, policy: RatePolicy | None) -> None:
        self.keys = [keys.budget_log(account_id), keys.budget(account_id)]
        self.seed = (
            [policy.limit, repr(float(policy.window_s)), "1" if policy.fixed else "0"]
            if policy
            else [0, "1.0", "0"]
        )
        self.sent: str = ""  # log id of the request in flight
        self.report = _NOTHING
        self.limit: int | None = None  # the budget's limit, as of the last refusal

    def take(self) -> float:
        """0.0: send now (the request is logged); else seconds until the budget admits one."""
        sent = secrets.token_hex(6)
        reply = self._run(BudgetOp.TAKE, sent)
        if int(reply[0]) == BudgetReply.ADMITTED:
            self.sent = sent
            return 0.0
        self.limit = int(reply[2]) or None
        return float(reply[1])

    def observe(self, rate: RateLimit) -> None:
        """Keep what the vendor just reported about the budget, for the next take or flush."""
        closed_for = rate.wait if rate.limited else None
        if rate.remaining == 0 and rate.window is None and not rate.limited:
            # spent until the reset (a rolling log knows better); with no reset stated (Jira),
            # pause a moment rather than spend a request on a sure refusal
            closed_for = rate.reset_after if rate.reset_after is not None else SPENT_PAUSE_S
        self.report = [
            _arg(rate.window_limit),
            _arg(rate.window),
            _arg(rate.remaining if self.sent else None),
            _arg(rate.reset_after),
            _arg(closed_for),
            self.sent,
            secrets.token_hex(6),
            _arg(rate.limit),
        ]
        self.sent = ""

    def flush(self) -> None:
        """Apply the last report now (the caller sends nothing more for a while)."""
        if self.report is not _NOTHING:
            self._run(BudgetOp.OBSERVE, "")

    def _run(self, op: BudgetOp, sent: str) -> list[Any]:
        argv = [*self.seed, *self.report, op.value, sent, STATE_TTL_S]
        self.report = _NOTHING
        return run_script(source("budget"), self.keys, argv)  # type: ignore[return-value]
