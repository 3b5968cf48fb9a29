"""The REST leaky bucket: ``budget("shopify")`` calls, leaking ``budget / window`` per second.

Shopify standard is 40 calls leaking 2/s (``rate_budgets={"shopify": 40}``,
``rate_window_ms=20000``). The level lives in ``state.windows`` so /_sandbox/reset empties it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from sandbox.shopify.http import NAME
from sandbox.state import SandboxState

REST_BUCKET = "shopify:rest-bucket"  # key in state.windows: [level, t]
RETRY_AFTER = 2.0


@dataclass(frozen=True)
class Drip:
    """One call into the bucket: accepted or not, the level shown (``used/size``), and the
    seconds until one slot frees."""

    accepted: bool
    used: int
    size: int
    wait: float


def take_rest(state: SandboxState) -> Drip:
    cfg = state.config
    size = cfg.budget(NAME)
    leak = size / (cfg.rate_window_ms / 1000)
    now = time.monotonic()
    with state.lock:
        bucket = state.windows[REST_BUCKET]
        if not bucket:
            bucket.extend((0.0, now))
        level = max(0.0, bucket[0] - (now - bucket[1]) * leak)
        accepted = level + 1 <= size
        if accepted:
            level += 1
        else:
            state.rate_limited += 1
        bucket[0], bucket[1] = level, now
    wait = (level + 1 - size) / leak if leak > 0 else RETRY_AFTER
    return Drip(accepted, min(size, math.ceil(level - 1e-9)), size, max(0.0, wait))
