"""One Redis connection pool per process, shared by jobs, spool, tokens and locks.

Two ways to wait for Redis (`Timeouts`): workers, beat and the CLI ride out a restart (a few
seconds of refused connections or AOF loading) by reconnecting with backoff; the API answers
503 `store_unavailable` soon instead (`API`, switched on when the ASGI app starts), so a
request never hangs on a Redis that accepts connections but does not answer (SIGSTOP, a full
network buffer).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

import redis
import redis.asyncio
from kombu.exceptions import OperationalError
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError
from redis.retry import Retry

from app.kernel.redistypes import Store, Value
from app.kernel.settings import get_settings

# Redis cannot be reached or did not answer in time (BusyLoadingError is a ConnectionError;
# kombu's OperationalError is the broker's). Surfaces map these to StoreUnavailable.
STORE_ERRORS: tuple[type[Exception], ...] = (ConnectionError, TimeoutError, OperationalError)
_RETRY_ON = [ConnectionError, TimeoutError, BusyLoadingError]


@dataclass(frozen=True)
class Timeouts:
    socket_s: float | None  # one reply; None: wait forever
    connect_s: float | None
    retries: int  # after the first attempt, each on a fresh connection
    backoff_cap_s: float
    health_check_s: int  # PING an idle connection before use (0: off)

    def bound_s(self) -> float | None:
        """Longest one command can take before it raises (None: unbounded)."""
        if self.socket_s is None or self.connect_s is None:
            return None
        return (self.retries + 1) * (self.connect_s + self.socket_s) + (
            self.retries * self.backoff_cap_s
        )

    def options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self.socket_s,
            "socket_connect_timeout": self.connect_s,
            "health_check_interval": self.health_check_s,
            "socket_keepalive": True,
        }


RIDE_OUT = Timeouts(None, None, retries=10, backoff_cap_s=1.0, health_check_s=30)
# 2 s per reply stays above the 1 s BLPOP slices of app/tokens.py; one retry on a fresh
# connection replaces a pooled one Redis dropped on restart. Bound: 2 x (1 + 2) + 0.1 = 6.1 s;
# a stopped process (SIGSTOP) answers 503 after ~4 s, a refused connection at once.
API = Timeouts(2.0, 1.0, retries=1, backoff_cap_s=0.1, health_check_s=0)
_timeouts = RIDE_OUT


def use(timeouts: Timeouts) -> None:
    """This process's way to wait; clients made before are dropped (call it at start-up)."""
    global _timeouts
    if timeouts != _timeouts:
        _timeouts = timeouts
        get_redis.cache_clear()
        get_async_redis.cache_clear()
        _scripts.clear()


def current() -> Timeouts:
    return _timeouts


@lru_cache(maxsize=1)
def get_redis() -> Store:
    """Process-wide client (decoded strings). Failed commands are retried on a fresh
    connection (`Timeouts`); every write we make is idempotent or fenced, so a retried
    command is safe."""
    t = _timeouts
    client = redis.Redis.from_url(
        get_settings().effective_redis_url,
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=t.backoff_cap_s, base=0.05), retries=t.retries),
        retry_on_error=_RETRY_ON,
        **t.options(),
    )
    return cast(Store, client)  # its replies are decoded: see app.kernel.redistypes


@lru_cache(maxsize=1)
def get_async_redis() -> redis.asyncio.Redis:
    """For waits the API holds open (long-polls): they must not pin a worker thread each.
    Waits and retries like the sync client (a pooled connection may be stale)."""
    t = _timeouts
    return redis.asyncio.Redis.from_url(
        get_settings().effective_redis_url,
        decode_responses=True,
        retry=AsyncRetry(ExponentialBackoff(cap=t.backoff_cap_s, base=0.05), retries=t.retries),
        retry_on_error=_RETRY_ON,
        **t.options(),
    )


_scripts: dict[str, redis.commands.core.Script] = {}


def run_script(source: str, keys: Sequence[str], args: Sequence[object]) -> object:
    """EVALSHA a Lua script, `app.kernel.lua.source(name)` (loaded once per process; redis-py's
    Script loads it again when Redis answers NOSCRIPT, after a restart). The reply is whatever
    the script returns: each caller names its codes (see the scripts' headers)."""
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = get_redis().register_script(source)
    client = cast(redis.Redis, get_redis())  # the Store face of the same client
    # arguments are strings and numbers; redis-py refuses anything else when it encodes them
    return script(keys=keys, args=cast("Sequence[Value]", args), client=client)
