"""One Redis connection pool per process, shared by jobs, spool, tokens and locks."""

from __future__ import annotations

from functools import lru_cache

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError
from redis.retry import Retry

from app.settings import get_settings


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    """Process-wide client (decoded strings). Commands ride out a Redis restart (a few
    seconds of refused connections or AOF loading) by reconnecting with backoff; every
    write we make is idempotent or fenced, so a retried command is safe."""
    return redis.Redis.from_url(
        get_settings().effective_redis_url,
        decode_responses=True,
        health_check_interval=30,
        socket_keepalive=True,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=10),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
    )


@lru_cache(maxsize=1)
def get_async_redis() -> redis.asyncio.Redis:
    """For waits the API holds open (long-polls): they must not pin a worker thread each.
    Rides out a Redis restart like the sync client (a pooled connection may be stale)."""
    return redis.asyncio.Redis.from_url(
        get_settings().effective_redis_url,
        decode_responses=True,
        health_check_interval=30,
        retry=AsyncRetry(ExponentialBackoff(cap=1.0, base=0.05), retries=10),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
    )


_scripts: dict[str, redis.commands.core.Script] = {}


def run_script(source: str, keys: list[str], args: list[object]) -> object:
    """EVALSHA a Lua script (loaded once per process, reloaded after a Redis restart)."""
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = get_redis().register_script(source)
    return script(keys=keys, args=args)
