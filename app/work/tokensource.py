"""The account's access token as one step sees it: read once, read again when due."""

from __future__ import annotations

import time
from collections.abc import Callable

from app.kernel import keys
from app.kernel.redis import get_redis
from app.kernel.settings import get_settings
from app.store import tokens


class TokenSource:
    """Called as `token(force)` by the vendor-call pipeline. The token is read once per step
    and again when it falls due for a refresh (a step may outlive a short-lived token); a
    forced refresh (after a 401) replaces it.

    A refresh that happened meanwhile (this step's, or a sibling's it waited for) is told to
    `on_refresh`, so the job's history explains its token churn. `version` is the token
    record's version: a later refusal marks the account needs_reauth only if its credentials
    are still the ones this step used, not ones posted since."""

    def __init__(self, account_id: str, on_refresh: Callable[[str], object]) -> None:
        self.account_id = account_id
        self.version: str | None = None
        self._key = keys.token(account_id)
        self._on_refresh = on_refresh
        self._token: str | None = None
        self._due = 0.0  # when the cached token enters its refresh buffer (0: never)

    def __call__(self, force: bool) -> str:
        if force or self._token is None or (self._due and time.time() >= self._due):
            self._token = self._read(force)
        return self._token

    def _read(self, force: bool) -> str:
        r = get_redis()
        count, self.version = r.hmget(self._key, "refresh_count", "version")
        token = tokens.get_access_token(self.account_id, force=force)
        after, self.version, expires_at, lifetime = r.hmget(
            self._key, "refresh_count", "version", "expires_at", "lifetime_s"
        )
        self._due = _due_at(expires_at, lifetime)
        if int(after or 0) > int(count or 0):
            why = "after the vendor refused it" if force else "ahead of its expiry"
            left = float(expires_at or 0) - time.time()
            self._on_refresh(
                f"access token refreshed {why} (refresh #{after}; the new one "
                f"expires in {left:.0f}s)"
            )
        return token


def _due_at(expires_at: str | None, lifetime: str | None) -> float:
    """Look again from the earliest the (jittered) refresh buffer can start;
    get_access_token refreshes once it really has."""
    buffer = get_settings().token_refresh_buffer_s + tokens.JITTER_S
    if lifetime and float(lifetime) > 0:
        buffer = min(buffer, float(lifetime) / 3)
    return float(expires_at) - buffer if expires_at and float(expires_at) else 0.0
