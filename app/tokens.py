"""Access tokens: sealed at rest, refreshed proactively and single-flight per account.

`get_access_token` returns the stored token while it is valid beyond a jittered 30–60 s
buffer. Otherwise one caller takes a python-redis-lock lock keyed by the account, re-reads
the store (a sibling may have refreshed already) and only then calls the vendor; the other
callers block on the lock and read the fresh token. Writes are compare-and-set on a
version, so a slow writer can never overwrite a newer token.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import redis_lock

from app import keys
from app.crypto import seal, unseal
from app.redis import get_redis, run_script
from app.settings import get_settings
from app.timefmt import now_iso
from connectors import oauth
from connectors.errors import AuthRejected

REFRESH_TIMEOUT_S = 15.0

_CAS = """
if redis.call('HGET', KEYS[1], 'version') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""


def store_initial(account_id: str, creds: Any, base_url: str, vendor_token_url: str) -> None:
    """Seal the credentials an account was created (or re-authorized) with."""
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
        url = creds.token_url or vendor_token_url
        secret["token_url"] = url if url.startswith("http") else base_url + url
        if creds.expires_at:
            expires_at = creds.expires_at
        elif creds.expires_in is not None:
            expires_at = time.time() + creds.expires_in
    r = get_redis()
    version = int(r.hget(keys.token(account_id), "version") or 0) + 1
    if secret.get("refresh_token") and expires_at:
        r.zadd(keys.TOKEN_EXPIRY, {account_id: expires_at})
    r.hset(
        keys.token(account_id),
        mapping={
            "sealed": seal(secret),
            "expires_at": expires_at,
            "version": version,
            "status": "active",
            "refresh_count": 0,
        },
    )


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


def _buffer(account_id: str, expires_at: float) -> float:
    """30–60 s, jittered by account and expiry so a fleet does not refresh in one second."""
    h = hashlib.sha256(f"{account_id}:{expires_at}".encode()).digest()
    return get_settings().token_refresh_buffer_s + (h[0] / 255) * 30


def _valid(t: dict[str, str], account_id: str) -> bool:
    exp = float(t.get("expires_at") or 0)
    return exp == 0 or exp - time.time() > _buffer(account_id, exp)


def get_access_token(account_id: str, *, force: bool = False) -> str:
    """The account's access token, refreshed first if it expires within the buffer.

    `force` refreshes even a token that looks valid (the vendor answered 401), unless a
    sibling refreshed it since we read it.
    """
    r = get_redis()
    t = r.hgetall(keys.token(account_id))
    if not t:
        raise AuthRejected(f"account {account_id} has no credentials")
    if t.get("status") == "needs_reauth":
        raise AuthRejected("the account needs re-authorization")
    secret = unseal(t["sealed"])
    if not secret.get("refresh_token") or (not force and _valid(t, account_id)):
        return secret["access_token"]
    seen = t["version"]
    lock = redis_lock.Lock(
        r, keys.refresh_lock(account_id), expire=int(REFRESH_TIMEOUT_S) + 10, auto_renewal=True
    )
    with lock:
        t = r.hgetall(keys.token(account_id))
        secret = unseal(t["sealed"])
        if t["version"] != seen or (not force and _valid(t, account_id)):
            return secret["access_token"]  # a sibling refreshed while we waited
        return _refresh(account_id, t, secret)


def _refresh(account_id: str, t: dict[str, str], secret: dict[str, Any]) -> str:
    r = get_redis()
    now = time.time()
    try:
        grant = oauth.refresh(
            secret["token_url"],
            secret["refresh_token"],
            secret["client_id"],
            secret["client_secret"],
            timeout=REFRESH_TIMEOUT_S,
        )
    except AuthRejected:
        r.hset(
            keys.token(account_id),
            mapping={
                "status": "needs_reauth",
                "last_refresh_at": now,
                "last_refresh_outcome": "rejected",
            },
        )
        r.zrem(keys.TOKEN_EXPIRY, account_id)
        raise
    except Exception:
        r.hset(
            keys.token(account_id),
            mapping={
                "last_refresh_at": now,
                "last_refresh_outcome": "transient_error",
            },
        )
        raise
    secret = {**secret, "access_token": grant.access_token}
    if grant.refresh_token:
        secret["refresh_token"] = grant.refresh_token
    lifetime = min(grant.expires_in if grant.expires_in is not None else 7200.0, 10 * 365 * 86400)
    written = run_script(
        _CAS,
        [keys.token(account_id)],
        [
            t["version"],
            "sealed",
            seal(secret),
            "expires_at",
            now + lifetime,
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
        return unseal(r.hget(keys.token(account_id), "sealed"))["access_token"]
    r.zadd(keys.TOKEN_EXPIRY, {account_id: now + lifetime})
    return grant.access_token


def expiring(horizon_s: float) -> list[str]:
    """Accounts whose refreshable access token expires within the horizon."""
    return get_redis().zrangebyscore(
        keys.TOKEN_EXPIRY, 0, time.time() + horizon_s, start=0, num=1000
    )
