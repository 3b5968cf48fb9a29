"""Redis's clock, as this process estimates it, for deadlines a script checks against `TIME`.

A script that must refuse to act after some instant (an enqueue whose caller stopped waiting)
compares with Redis's own clock; the caller states the instant in that clock, so the hosts'
clocks need not agree. The offset is measured with one `TIME` call and kept for a minute.
"""

from __future__ import annotations

import time

from app.kernel.redis import get_redis

REFRESH_S = 60.0

_offset: tuple[float, float] | None = None  # (offset seconds, measured at monotonic)


def now() -> float:
    """Redis's current time (epoch seconds), from this host's clock plus the measured offset."""
    global _offset
    if _offset is None or time.monotonic() - _offset[1] > REFRESH_S:
        before = time.time()
        secs, micros = get_redis().time()
        after = time.time()
        _offset = (secs + micros / 1e6 - (before + after) / 2, time.monotonic())
    return time.time() + _offset[0]
