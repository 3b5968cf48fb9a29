"""Access tokens: sealed at rest, refreshed proactively and single-flight per account.

`get_access_token` returns the stored token while it is valid beyond a jittered buffer
(30–60 s, at most a third of the token's lifetime). Otherwise one caller takes a
python-redis-lock lock keyed by the account, re-reads the store (a sibling may have
refreshed already) and only then calls the vendor; the other callers block on the lock's
signal (a BLPOP, no polling; threads of one process share one waiter) and, once the
refresh has ended, read its outcome without taking the lock. Writes are compare-and-set
on a version, so a slow writer can never overwrite a newer token.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import redis_lock  # type: ignore[import-untyped]  # python-redis-lock ships no types

from app.kernel import keys, metrics
from app.kernel.crypto import seal, unseal
from app.kernel.errors import InvalidInput
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.registry import registry
from app.kernel.settings import get_settings
from app.kernel.ssrf import connect_check
from app.kernel.timefmt import now_iso
from connectors import oauth
from connectors.errors import AuthRejected, Transient

log = logging.getLogger(__name__)

_token_check = connect_check("token_url")


def _token_addresses(host: str, port: int) -> list[str]:
    """The SSRF rules at connect time for every token endpoint (its name may resolve
    elsewhere since the token_url was registered): a refusal is AuthRejected, raised before
    the client secret is sent; only new credentials (another token_url) can help."""
    try:
        return _token_check(host, port)
    except InvalidInput as exc:
        raise AuthRejected(f"the token endpoint was not called: {exc.message}") from None


oauth.guard_addresses(_token_addresses)

LOCK_SLACK_S = 3  # the lock outlives one token call by this much, even without its renewals
WAIT_SLICE_S = 1  # a waiter's BLPOP slice (below redis-py's 5 s socket timeout)
FANOUT = 4  # waiters a woken waiter wakes in turn: a storm of n is awake in log4(n) hops
MAX_LIFETIME_S = 10 * 365 * 86400
JITTER_S = 30.0


def store_initial(account_id: str, creds: Any, base_url: str, vendor_token_url: str) -> None:
    """Seal the credentials an account was created (or re-authorized) with.

    The token's lifetime is unknown here (it was issued before we saw it), so `lifetime_s`
    is 0 and the full buffer applies until the first refresh."""
    secret: dict[str, Any] = {"type": creds.type}
    expires_at = 0.0
    if creds.type == "bearer":
        secret["access_token"] = creds.token.get_secret_value()
    else:
        secret["access_token"] = creds.access_token.get_secret_value()
        if creds.refresh_token:
            secret["refresh_token"] = creds.refresh_token.get_secret_value()
            secret["client_id"] = creds.client_id
            secret["client_secret"] = creds.client_secret.get_secret_value()
        secret["token_url"] = token_endpoint(creds.token_url, vendor_token_url, base_url)
        if creds.expires_at:
            expires_at = creds.expires_at
        elif creds.expires_in is not None:
            expires_at = time.time() + creds.expires_in
    key = keys.token(account_id)
    with get_redis().pipeline() as p:  # MULTI: the version bump and the record land together
        p.hincrby(key, "version", 1)
        p.hset(
            key,
            mapping={
                "sealed": seal(secret),
                "expires_at": expires_at,
                "lifetime_s": 0,
                "status": "active",
                "refresh_count": 0,
            },
        )
        if secret.get("refresh_token") and expires_at:
            p.zadd(keys.TOKEN_EXPIRY, {account_id: expires_at})
        else:
            p.zrem(keys.TOKEN_EXPIRY, account_id)
        p.execute()


def token_endpoint(token_url: str | None, vendor_token_url: str, base_url: str) -> str:
    """Where refreshes go: the account's token_url, else the vendor's; a relative one (a path)
    is appended to the account's base_url."""
    url = token_url or vendor_token_url
    return url if url.startswith(("http://", "https://")) else base_url + url


def status(account_id: str) -> dict[str, Any]:
    """Everything about the token but the token."""
    t = get_redis().hgetall(keys.token(account_id))
    exp = float(t.get("expires_at") or 0)
    return {
        "status": t.get("status", "active"),
        "token_expires_at": now_iso(exp) if exp else None,
        "last_refresh_at": now_iso(float(t["last_refresh_at"]))
        if t.get("last_refresh_at")
        else None,
        "last_refresh_outcome": t.get("last_refresh_outcome"),
        "refresh_count": int(t.get("refresh_count") or 0),
    }


def _buffer(account_id: str, expires_at: float, lifetime_s: float = 0.0) -> float:
    """How long before expiry to refresh: the setting plus 0–30 s of jitter (by account and
    expiry, so a fleet does not refresh in one second), but at most a third of the token's
    known lifetime. Without that cap a token living shorter than the buffer (a 60 s token
    and a 30–60 s buffer) would never count as valid, and every call would refresh it."""
    h = hashlib.sha256(f"{account_id}:{expires_at}".encode()).digest()
    buffer = get_settings().token_refresh_buffer_s + (h[0] / 255) * JITTER_S
    return min(buffer, lifetime_s / 3) if lifetime_s > 0 else buffer


def _valid(t: dict[str, str], account_id: str) -> bool:
    exp = float(t.get("expires_at") or 0)
    lifetime = float(t.get("lifetime_s") or 0)
    return exp == 0 or exp - time.time() > _buffer(account_id, exp, lifetime)


def _lock_expire_s() -> int:
    """A few seconds past the token call's timeout, so a holder killed mid-call blocks its
    siblings only that long; auto-renewal covers a slow store write after the call."""
    return math.ceil(get_settings().token_refresh_timeout_s) + LOCK_SLACK_S


# In-process single flight in front of the Redis lock: the threads of one process that need
# the same refresh share one Future, so only one of them waits on (or holds) the lock.
_flights: dict[tuple[str, bool], Future[str]] = {}
_flights_guard = threading.Lock()


def get_access_token(account_id: str, *, force: bool = False) -> str:
    """The account's access token, refreshed first if it expires within the buffer.

    `force` refreshes even a token that looks valid (the vendor answered 401), unless a
    sibling refreshed it since we read it. Raises `Transient` when the token endpoint failed
    in a retryable way (the job step reschedules itself) and `AuthRejected` when the refresh
    token is dead (never retried).
    """
    flight = (account_id, force)
    with _flights_guard:
        joined = _flights.get(flight)
    if joined is not None:  # a thread of this process is on it already: share its outcome
        return joined.result()
    t = get_redis().hgetall(keys.token(account_id))
    _check_usable(account_id, t)
    secret = unseal(t["sealed"])
    if not secret.get("refresh_token") or (not force and _valid(t, account_id)):
        token: str = secret["access_token"]
        return token
    with _flights_guard:
        joined = _flights.get(flight)
        if joined is None:
            mine = _flights[flight] = Future()
    if joined is not None:
        return joined.result()
    try:
        token = _refresh_single_flight(account_id, t, force)
        mine.set_result(token)
        return token
    except BaseException as exc:
        mine.set_exception(exc)
        raise
    finally:
        with _flights_guard:
            del _flights[flight]


def _refresh_single_flight(account_id: str, t: dict[str, str], force: bool) -> str:
    """Across processes: wait for a sibling's refresh, or take the lock and refresh."""
    r = get_redis()
    seen, asked = t["version"], time.time()
    latest: list[dict[str, str]] = []

    def settled() -> bool:
        latest[:] = [r.hgetall(keys.token(account_id))]
        return _settled(latest[0], seen, asked)

    lock = _RefreshLock(
        r, keys.refresh_lock(account_id), expire=_lock_expire_s(), auto_renewal=True
    )
    if not lock.wait_or_acquire(settled, account_id):
        return _outcome(account_id, latest[0], seen)
    try:
        t = r.hgetall(keys.token(account_id))
        if _settled(t, seen, asked):  # it ended between our read and our lock
            return _outcome(account_id, t, seen)
        if not force and _valid(t, account_id):
            return _access_token(t["sealed"])
        return _refresh(account_id, t, unseal(t["sealed"]))
    finally:
        _release(lock, account_id)


def _settled(t: dict[str, str], seen: str, asked: float) -> bool:
    """Has a sibling's refresh ended since we read version `seen` at time `asked`?"""
    return (
        not t
        or t.get("status") == "needs_reauth"
        or t["version"] != seen
        or (
            t.get("last_refresh_outcome") == "transient_error"
            and float(t.get("last_refresh_at") or 0) >= asked
        )
    )


def _outcome(account_id: str, t: dict[str, str], seen: str) -> str:
    """A sibling's refresh ended: its token, or its failure (we do not retry a refusal, and
    do not queue up behind a failing endpoint to fail again: the job step backs off)."""
    _check_usable(account_id, t)
    if t["version"] == seen:
        raise Transient("the token endpoint failed a moment ago")
    return _access_token(t["sealed"])


class _RefreshLock(redis_lock.Lock):
    """python-redis-lock's lock (SET NX EX, auto-renewal, release wakes a waiter through a
    BLPOP on its signal list) whose waiters stop waiting once the refresh they waited for
    has ended, instead of each taking the lock in turn only to read the new token: one
    release wakes one waiter, so a 64-caller storm would queue 63 hand-overs behind the
    refresh. The holder, and then each waiter that finds the refresh ended, wakes FANOUT
    more waiters (any spare wake-ups expire with the signal list within a second).
    Built on python-redis-lock 4.x internals (`_client`, `_name`, `_id`, `_expire`,
    `_signal`, `_signal_expire`, `_start_lock_renewer`)."""

    def wait_or_acquire(self, settled: Callable[[], bool], account_id: str) -> bool:
        """True: the lock is ours. False: `settled()` came true while we waited. A holder
        keeps the lock one token call plus a store write at most, so after twice its
        expiry give up with a Transient (the job reschedules; the worker is not tied up)."""
        deadline = time.monotonic() + 2 * self._expire
        while True:
            if self._client.set(self._name, self._id, nx=True, ex=self._expire):
                self._start_lock_renewer()
                return True
            # Slices, not one long BLPOP: a longer one would outlast redis-py's 5 s socket
            # timeout, and each slice retries the SET NX (a dead holder's lock expires).
            self._client.blpop([self._signal], WAIT_SLICE_S)
            if settled():
                self.wake(FANOUT)
                return False
            if time.monotonic() > deadline:
                raise Transient(f"the refresh lock of {account_id} stayed busy")

    def wake(self, n: int) -> None:
        with self._client.pipeline(transaction=False) as p:
            p.lpush(self._signal, *([1] * n))
            p.pexpire(self._signal, self._signal_expire)
            p.execute()

    def release(self) -> None:
        """Release (which wakes one waiter), then wake FANOUT - 1 more at once."""
        super().release()
        self.wake(FANOUT - 1)


def _check_usable(account_id: str, t: dict[str, str]) -> None:
    if not t:
        raise AuthRejected(f"account {account_id} has no credentials")
    if t.get("status") == "needs_reauth":
        raise AuthRejected("the account needs re-authorization")


def _release(lock: redis_lock.Lock, account_id: str) -> None:
    """Release; a lock that expired under us (process stalled past its renewals) is not an
    error for the caller: every token write was compare-and-set on the version anyway."""
    try:
        lock.release()
    except redis_lock.NotAcquired:
        log.warning("refresh lock of %s expired before release", account_id)


def _refresh(account_id: str, t: dict[str, str], secret: dict[str, Any]) -> str:
    settings = get_settings()
    key = keys.token(account_id)
    now = time.time()
    try:
        grant = oauth.refresh(
            secret["token_url"],
            secret["refresh_token"],
            secret["client_id"],
            secret["client_secret"],
            timeout=settings.token_refresh_timeout_s,
            vendor_text=_on_vendor_host(account_id, secret["token_url"]),
        )
    except AuthRejected:
        metrics.incr("token_refreshes", {"outcome": "rejected"})  # the vendor's word, counted once
        newer = _rejected(account_id, t["version"], now)
        if newer is None:
            raise
        return newer
    except Transient:  # stamped when it failed, so waiters queued behind it can tell
        metrics.incr("token_refreshes", {"outcome": "transient_error"})
        outcome = ["last_refresh_at", time.time(), "last_refresh_outcome", "transient_error"]
        _cas(key, t["version"], outcome)
        raise
    metrics.incr("token_refreshes", {"outcome": "ok"})  # the grant succeeded, stored or not
    return _store_grant(account_id, t, secret, grant, now)


def _rejected(account_id: str, version: str, now: float) -> str | None:
    """The vendor refused the refresh token: mark needs_reauth (None: the caller re-raises),
    unless a sibling rotated it a moment earlier (its lock expired while it was slow, or the
    account was re-authorized): the refusal is then about a token we no longer hold, and the
    newer token (returned) wins."""
    key = keys.token(account_id)
    mark = ["status", "needs_reauth", "last_refresh_at", now, "last_refresh_outcome"]
    if _cas(key, version, [*mark, "rejected"]):
        get_redis().zrem(keys.TOKEN_EXPIRY, account_id)
        return None
    newer = get_redis().hgetall(key)
    if newer and newer.get("status") != "needs_reauth":
        log.info("refresh of %s refused, but a sibling rotated it first", account_id)
        return _access_token(newer["sealed"])
    return None


def _store_grant(
    account_id: str, t: dict[str, str], secret: dict[str, Any], grant: oauth.Grant, now: float
) -> str:
    """Store the new token (compare-and-set on the version read); a newer one that landed
    meanwhile wins and is returned instead."""
    key = keys.token(account_id)
    secret = {**secret, "access_token": grant.access_token}
    if grant.refresh_token:  # rotated: stored atomically with its access token
        secret["refresh_token"] = grant.refresh_token
    expires_at = _expires_at(grant, now, get_settings().token_default_lifetime_s)
    written = _cas(
        key,
        t["version"],
        [
            "sealed",
            seal(secret),
            "expires_at",
            expires_at,
            "lifetime_s",
            max(expires_at - now, 0.0),
            "version",
            int(t["version"]) + 1,
            "last_refresh_at",
            now,
            "last_refresh_outcome",
            "ok",
            "refresh_count",
            int(t.get("refresh_count") or 0) + 1,
        ],
    )
    if not written:  # a newer token landed meanwhile; it wins
        return _access_token(get_redis().hget(key, "sealed"))
    get_redis().zadd(keys.TOKEN_EXPIRY, {account_id: expires_at})
    return grant.access_token


def _cas(key: str, version: str, pairs: Sequence[object]) -> bool:
    """Set the field/value `pairs` only if the record still has the `version` the caller
    read (token_cas.lua): a slow writer never overwrites a newer token."""
    return bool(run_script(source("token_cas"), [key], [version, *pairs]))


def _on_vendor_host(account_id: str, token_url: str) -> bool:
    """Is the token endpoint on a host the account's vendor documents? Only then is its
    refusal's text shown to the tenant (a tenant-named host's text could be anything)."""
    vendor = registry().vendors.get(get_redis().hget(keys.account(account_id), "vendor") or "")
    return vendor is not None and oauth.on_vendor_host(token_url, vendor.base_url, vendor.token_url)


def _expires_at(grant: oauth.Grant, now: float, default_lifetime_s: float) -> float:
    """`expires_in` counts from the answer. Without it (Salesforce) the configured lifetime
    counts from the vendor's `issued_at` when given, clamped to [now - lifetime/2, now] so a
    skewed vendor clock can neither extend the token nor make it look expired at once."""
    if grant.expires_in is not None:
        return now + min(max(grant.expires_in, 0.0), MAX_LIFETIME_S)
    lifetime = min(default_lifetime_s, MAX_LIFETIME_S)
    start = now
    if grant.issued_at:
        start = min(max(grant.issued_at, now - lifetime / 2), now)
    return start + lifetime


def expiring(horizon_s: float) -> list[str]:
    """Accounts whose refreshable access token expires within the horizon."""
    return get_redis().zrangebyscore(
        keys.TOKEN_EXPIRY, 0, time.time() + horizon_s, start=0, num=1000
    )


def _access_token(sealed: str | None) -> str:
    """The access token of a sealed credentials record."""
    if sealed is None:  # the account went away meanwhile
        raise Transient("the account's credentials are gone")
    token: str = unseal(sealed)["access_token"]
    return token
