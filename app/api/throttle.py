"""toolqueue's own API limit: a token bucket per tenant in Redis, shared by every API process.

A tenant may send `limit` requests per `window` seconds, all at once (the burst) or spread
out; the bucket refills continuously at `limit / window`. One Lua script per request reads the
tenant's override (tenant record) or the setting, refills from Redis `TIME` (so API hosts'
clocks never matter), and takes a token atomically: one round trip, after the key lookup.

A refusal is a 429 `rate_limit_exceeded` with `Retry-After` and the IETF `ratelimit-*` trio
(delta seconds, rounded up: the same shape as the proxy's upstream 429); every other
authenticated answer carries the trio too (`QuotaHeaders`), so a client can pace itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kernel import keys
from app.kernel.errors import TooManyRequests
from app.kernel.lua import source
from app.kernel.redis import run_script
from app.kernel.settings import get_settings

SCOPE_KEY = "toolqueue.ratelimit"  # the quota headers auth leaves for `QuotaHeaders`
EPS = 1e-9  # float slack: a bucket at 0.9999999999 tokens holds one token


@dataclass(frozen=True)
class Quota:
    """One request's outcome: `tokens` left in a bucket of `limit` per `window_s` seconds."""

    allowed: bool
    limit: int  # 0: unlimited, no headers
    window_s: float
    tokens: float

    @property
    def remaining(self) -> int:
        return math.floor(self.tokens + EPS)

    @property
    def reset_s(self) -> int:
        """Seconds until the bucket is full again (the whole burst available)."""
        return _ceil((self.limit - self.tokens) * self.window_s / self.limit)

    @property
    def retry_after_s(self) -> int:
        """Seconds until the next token, rounded up and at least 1 (a 0 invites a busy loop)."""
        return max(1, _ceil((1 - self.tokens) * self.window_s / self.limit))

    def headers(self) -> dict[str, str]:
        if not self.limit:
            return {}
        out = {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset_s),
        }
        if not self.allowed:
            out["retry-after"] = str(self.retry_after_s)
        return out

    def refusal(self) -> TooManyRequests:
        return TooManyRequests(
            f"API rate limit of {self.limit} requests per {self.window_s:g} s for this tenant "
            f"exceeded; retry in {self.retry_after_s} s",
            headers=self.headers(),
        )


def _ceil(seconds: float) -> int:
    return max(0, math.ceil(seconds - EPS))


def take(tenant_id: str) -> Quota:
    """Spend one of the tenant's requests (one EVALSHA); the caller raises `refusal()`."""
    s = get_settings()
    reply: Any = run_script(
        source("throttle_take"),
        [keys.tenant(tenant_id), keys.tenant_throttle(tenant_id)],
        [s.api_rate_limit, s.api_rate_window_s],
    )
    allowed, limit, window, tokens = reply
    return Quota(bool(allowed), int(limit), float(window), float(tokens))


class QuotaHeaders:
    """Pure ASGI: stamps the quota headers auth left in the scope on the response, unless it
    carries rate headers already (our 429, or the proxy's: those describe the vendor)."""

    OWN = frozenset({b"ratelimit-limit", b"retry-after", b"x-toolqueue-upstream"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamp(message: Message) -> None:
            quota = scope.get(SCOPE_KEY)
            if message["type"] == "http.response.start" and quota:
                raw = list(message.get("headers", ()))
                if not any(name.lower() in self.OWN for name, _ in raw):
                    raw += [(k.encode(), v.encode()) for k, v in quota.items()]
                    message = {**message, "headers": raw}
            await send(message)

        await self.app(scope, receive, stamp)
