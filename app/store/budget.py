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
from typing import Any

from app.kernel import keys
from app.kernel.redis import run_script
from connectors.base import RatePolicy
from connectors.ratelimit import RateLimit

STATE_TTL_S = 86400  # learned limits outlive a job, not an idle day
SPENT_PAUSE_S = 1.0  # `remaining: 0` with no reset: wait this long before asking again

# KEYS: request log (zset), state (hash). ARGV: seed limit, seed window, fixed; the last
# response's report: stated limit, stated window, remaining, reset_after, closed_for, its
# request's log id, phantom id, and the limit `remaining` counts down (phantoms only when that
# is the window we pace by); then 'take' or 'observe', the new request's id, state TTL.
# Returns {1, 0} (admitted), {0, wait_s, limit} (refused) or {2, 0} (observed only).
_SCRIPT = """
local log, state = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
if ARGV[4] ~= '' and ARGV[5] ~= '' then
  redis.call('HSET', state, 'limit', ARGV[4], 'window', ARGV[5])
end
local limit = tonumber(redis.call('HGET', state, 'limit')) or tonumber(ARGV[1])
local window = tonumber(redis.call('HGET', state, 'window')) or tonumber(ARGV[2])
local fixed = ARGV[3] == '1'
local margin = math.min(0.05, 0.01 * window)  -- clock steps, a page's processing
local ttl = math.ceil((window + margin) * 1000) + 1000

-- what the last response reported
if ARGV[9] ~= '' then redis.call('ZADD', log, 'XX', now, ARGV[9]) end
if fixed and ARGV[7] ~= '' then
  redis.call('HSET', state, 'reset_at', tostring(now + tonumber(ARGV[7])))
end
local remaining = tonumber(ARGV[6])
if remaining and limit > 0 and tonumber(ARGV[11]) == limit then  -- the window we pace by
  local have = redis.call('ZCOUNT', log, tostring(now - window - margin), '+inf')
  local missing = math.min(limit - remaining - have, 1000)
  for i = 1, missing do redis.call('ZADD', log, now, 'p' .. ARGV[10] .. i) end
  if missing > 0 then redis.call('PEXPIRE', log, ttl) end
end
local closed = tonumber(redis.call('HGET', state, 'closed_until')) or 0
local closed_for = tonumber(ARGV[8])
if closed_for and now + closed_for > closed then
  closed = now + closed_for
  redis.call('HSET', state, 'closed_until', tostring(closed))
end
if ARGV[4] ~= '' or ARGV[7] ~= '' or closed_for then  -- a closure outlives itself
  redis.call('EXPIRE', state, math.max(tonumber(ARGV[14]), math.ceil(closed - now) + 60))
end
if ARGV[12] ~= 'take' then return {2, '0'} end

-- the next send
if now < closed then return {0, tostring(closed - now), limit} end
if limit <= 0 then return {1, '0'} end
local reset_at = tonumber(redis.call('HGET', state, 'reset_at'))
if fixed and reset_at and now >= reset_at then
  redis.call('ZREMRANGEBYSCORE', log, '-inf', '(' .. tostring(reset_at - margin))
  redis.call('HDEL', state, 'reset_at')
  reset_at = nil
end
redis.call('ZREMRANGEBYSCORE', log, '-inf', tostring(now - window - margin))
if redis.call('ZCARD', log) < limit then
  redis.call('ZADD', log, now, ARGV[13])
  redis.call('PEXPIRE', log, ttl)
  return {1, '0'}
end
local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
local wait = tonumber(oldest[2]) + window + margin - now
if fixed and reset_at then wait = math.min(wait, reset_at - now) end
return {0, tostring(math.max(wait, 0.001)), limit}
"""

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
        reply = self._run("take", sent)
        if int(reply[0]) == 1:
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
            self._run("observe", "")

    def _run(self, op: str, sent: str) -> list[Any]:
        argv = [*self.seed, *self.report, op, sent, STATE_TTL_S]
        self.report = _NOTHING
        return run_script(_SCRIPT, self.keys, argv)  # type: ignore[return-value]
