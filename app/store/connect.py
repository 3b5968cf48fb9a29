"""Connect sessions: a short-lived, single-use link that runs one vendor authorization.

The link's token is random and only its SHA-256 is a key, so a Redis dump holds no usable
link. `state` (what the vendor echoes to the callback) is a second random value pointing at
the session; the PKCE verifier is sealed. Records outlive their expiry by `KEEP_S`, so a late
callback is told `expired_session` rather than an unknown `state`. One callback claims the
session (HSETNX `claimed_at`): a replayed `state` finds it claimed. A claim that ended in a
transient vendor failure is given back (`reopen`) under a new `state` and verifier, so the
link starts a fresh authorization and the failed callback's `state` is dead.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import orjson

from app.kernel import keys
from app.kernel.crypto import digest, seal, unseal
from app.kernel.errors import NotFound
from app.kernel.redis import get_redis
from app.store import oauthapps

CALLBACK_PATH = "/connect/callback"  # toolqueue's redirect_uri, on its public origin
KEEP_S = 3600  # a session's record stays this long past its expiry (to name a late callback)
MAX_REOPENS = 5  # transient vendor failures a session survives; the next one ends it


def _fresh_authorization() -> tuple[str, str]:
    """A new `state`, and a PKCE verifier (64 chars of [A-Za-z0-9_-]: RFC 7636's alphabet)."""
    return secrets.token_urlsafe(32), secrets.token_urlsafe(48)


def create(fields: dict[str, Any], ttl_s: float) -> tuple[str, dict[str, Any]]:
    """Store a session; returns its link token (shown once) and the stored record."""
    token = secrets.token_urlsafe(32)
    state, verifier = _fresh_authorization()
    now = time.time()
    record = {
        **{k: v for k, v in fields.items() if v is not None},
        "session_id": "cs_" + secrets.token_hex(8),
        "state": state,
        "sealed_verifier": seal(verifier),
        "created_at": now,
        "expires_at": now + ttl_s,
    }
    record["scopes"] = orjson.dumps(record.get("scopes", [])).decode()
    keep = int(ttl_s + KEEP_S)
    sid = digest(token)
    with get_redis().pipeline() as p:
        p.hset(keys.connect_session(sid), mapping=record)
        p.expire(keys.connect_session(sid), keep)
        p.set(keys.connect_state(state), sid, ex=keep)
        p.set(keys.connect_session_id(record["session_id"]), sid, ex=keep)
        p.execute()
    return token, record


def by_token(token: str) -> dict[str, Any] | None:
    return _load(key_of(token))


def key_of(token: str) -> str:
    """The session's key: the link token's digest (the token itself is never stored)."""
    return digest(token)


def by_state(state: str) -> tuple[str, dict[str, Any]] | None:
    """The session `state` belongs to (with its key digest), or None for an unknown one."""
    sid = get_redis().get(keys.connect_state(state)) if state else None
    found = _load(sid) if sid else None
    return (sid, found) if sid and found else None


def by_id(session_id: str) -> dict[str, Any] | None:
    """A session by its public id (the tenant's handle for its status)."""
    sid = get_redis().get(keys.connect_session_id(session_id)) if session_id else None
    return _load(sid) if sid else None


def record_outcome(sid: str, outcome: dict[str, str]) -> None:
    """What the callback ended with (`outcome`, `account_id` or `error`), for the status."""
    key = keys.connect_session(sid)
    with get_redis().pipeline() as p:
        p.hdel(key, "outcome", "account_id_made", "error")
        p.hset(key, mapping=outcome)
        p.execute()


def _load(sid: str) -> dict[str, Any] | None:
    raw = get_redis().hgetall(keys.connect_session(sid))
    if not raw:
        return None
    return {**raw, "scopes": orjson.loads(raw["scopes"]), "expires_at": float(raw["expires_at"])}


def claim(sid: str) -> bool:
    """True for the one callback that uses the session; False for every later one."""
    return bool(get_redis().hsetnx(keys.connect_session(sid), "claimed_at", time.time()))


def reopen(sid: str, session: dict[str, Any], error: str) -> bool:
    """Give back the claim this callback holds after a transient vendor failure: a new `state`
    and PKCE verifier (the old `state` is forgotten, so its callback cannot be replayed), the
    failure as `last_error`. False, and nothing changed, once the session has been reopened
    MAX_REOPENS times. Only the claim's holder calls this, so nothing else writes meanwhile."""
    if int(session.get("reopened") or 0) >= MAX_REOPENS:
        return False
    key = keys.connect_session(sid)
    keep = max(1, int(float(session["expires_at"]) + KEEP_S - time.time()))  # as the record's
    state, fresh = _fresh_authorization()
    with get_redis().pipeline() as p:  # MULTI: the link never shows a half-renewed session
        p.delete(keys.connect_state(session["state"]))
        p.set(keys.connect_state(state), sid, ex=keep)
        p.hset(key, mapping={"state": state, "sealed_verifier": seal(fresh),
                             "last_error": error, "last_error_at": time.time()})  # fmt: skip
        p.hincrby(key, "reopened", 1)
        p.hdel(key, "claimed_at")
        p.execute()
    return True


def verifier(session: dict[str, Any]) -> str:
    value: str = unseal(session["sealed_verifier"])
    return value


def expired(session: dict[str, Any]) -> bool:
    return time.time() >= float(session["expires_at"])


def reconnect_link(account_id: str, ttl_s: float) -> str | None:
    """A fresh re-connect link for an account made through connect (None for others, or
    when its tenant's OAuth app is gone): same end user, return_url and shop; the app's
    scopes. It re-authorizes the same account."""
    acc = get_redis().hgetall(keys.account(account_id))
    if not acc.get("connect_return_url"):
        return None
    try:
        app = oauthapps.load(acc["tenant_id"], acc["vendor"])
    except NotFound:
        return None
    origin = acc["connect_origin"]
    fields = {
        "tenant_id": acc["tenant_id"],
        "vendor": acc["vendor"],
        "end_user_id": acc.get("end_user_id") or account_id,
        "account_id": account_id,
        "return_url": acc["connect_return_url"],
        "scopes": app["scopes"],
        "shop": acc.get("connect_shop") or None,
        "subdomain": acc.get("connect_subdomain") or None,
        "redirect_uri": app.get("redirect_uri") or origin + CALLBACK_PATH,
        "origin": origin,
    }
    token, _ = create(fields, ttl_s)
    return f"{origin}/connect/{token}"
