"""MCP sign-in with OAuth: what toolqueue, as the authorization server of its `/mcp`, keeps.

A person signs in by pasting an API key of their tenant once; every code and token issued then
is a *grant* of that key (its tenant and key id, the scopes granted: the ones asked for that
the key holds). A grant never copies the key's powers: each use looks the key up again
(`apikeys.by_id`), so revoking the key ends all its tokens at once, and narrowing its tools or
accounts narrows them too.

Kept in Redis, each under its TTL (app.kernel.keys): client registrations (RFC 7591; the
client secret sealed; one no sign-in used expires in a day, a used one `oauth_refresh_ttl_s`
after its last use; at most `oauth_max_clients` at once), authorize requests awaiting sign-in,
authorization codes (single use: taken with GETDEL), access and refresh tokens (a refresh token
is rotated on use: the old pair is deleted as the new one is written). Codes and tokens are
stored under their digest only.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson
from redis.exceptions import ResponseError

from app.kernel import keys
from app.kernel.crypto import digest, seal, unseal
from app.kernel.redis import get_redis
from app.kernel.settings import get_settings
from app.store import apikeys
from app.store.apikeys import Principal

ACCESS_PREFIX = "tqa_"  # an access token's prefix: /mcp tells it from an API key (`tq_`)
REFRESH_PREFIX = "tqr_"


@dataclass(frozen=True)
class Grant:
    """What a code or token stands for: a key of a tenant, narrowed to `scopes`, for one client
    and one resource (RFC 8707)."""

    tenant_id: str
    key_id: str
    client_id: str
    scopes: tuple[str, ...]
    resource: str | None
    expires_at: int = 0

    def principal(self) -> Principal | None:
        """The key as it stands now, narrowed to the granted scopes; None once it is revoked."""
        key = apikeys.by_id(self.tenant_id, self.key_id)
        if key is None:
            return None
        return replace(key, scopes=key.scopes & frozenset(self.scopes))


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    scopes: tuple[str, ...]


def _put(key: str, doc: object, ttl: int) -> None:
    get_redis().set(key, orjson.dumps(doc), ex=ttl)


def _load(raw: str | bytes | None) -> dict[str, object] | None:
    doc = orjson.loads(raw) if raw else None
    return doc if isinstance(doc, dict) else None


def _grant(doc: dict[str, object] | None) -> Grant | None:
    if doc is None:
        return None
    scopes = doc.get("scopes")
    resource = doc.get("resource")
    return Grant(
        tenant_id=str(doc["tenant_id"]),
        key_id=str(doc["key_id"]),
        client_id=str(doc["client_id"]),
        scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else (),
        resource=str(resource) if resource is not None else None,
        expires_at=int(float(str(doc.get("expires_at", 0)))),
    )


def save_client(client_id: str, registration: dict[str, Any], ttl: int | None = None) -> None:
    """Keep a client's registration (the SDK's JSON of it) for `ttl` seconds (default: a new
    one's, `oauth_unused_client_ttl_s`), its client secret sealed apart from the rest.

    Sealed (Fernet, `keys rotate` re-seals it), not stored as a digest: the SDK's
    `ClientAuthenticator` takes `client.client_secret` from the provider's `get_client`, which
    is given the client_id only, and compares it with what the client sent
    (`hmac.compare_digest`); a digest would never equal the secret, so every confidential
    client's /token and /revoke would fail."""
    doc = dict(registration)
    secret = doc.pop("client_secret", None)
    record = {"doc": orjson.dumps(doc).decode()}
    if secret:
        record["sealed_secret"] = seal(str(secret))
    ttl = ttl or get_settings().oauth_unused_client_ttl_s
    key = keys.oauth_client(client_id)
    with get_redis().pipeline() as p:
        p.delete(key)
        p.hset(key, mapping=record)
        p.expire(key, ttl)
        _index(p, client_id, ttl)
        p.execute()


def _index(p: Any, client_id: str, ttl: int, *, only_known: bool = False) -> None:
    """Queue the client's expiry in the index the cap counts (`only_known`: a touch never
    brings back the entry of a registration that expired meanwhile); the index itself lives as
    long as its longest-lived entry can."""
    index, s = keys.oauth_clients(), get_settings()
    p.zadd(index, {client_id: time.time() + ttl}, xx=only_known)
    p.expire(index, max(s.oauth_unused_client_ttl_s, s.oauth_refresh_ttl_s))


def client(client_id: str) -> dict[str, Any] | None:
    """The registration with its secret unsealed, as the SDK's authenticator needs it."""
    key = keys.oauth_client(client_id)
    try:
        raw = get_redis().hgetall(key)
    except ResponseError as exc:  # WRONGTYPE: stored whole, before secrets were sealed
        if "WRONGTYPE" not in str(exc):
            raise
        return _migrate(client_id)
    if not raw:
        return None
    doc: dict[str, Any] = orjson.loads(raw["doc"])
    if raw.get("sealed_secret"):
        doc["client_secret"] = unseal(raw["sealed_secret"])
    return doc


def _migrate(client_id: str) -> dict[str, Any] | None:
    """A registration kept whole (a JSON string, its secret in clear) by an older toolqueue:
    re-kept sealed under its remaining TTL, and returned as it was."""
    with get_redis().pipeline() as p:
        p.get(keys.oauth_client(client_id))
        p.ttl(keys.oauth_client(client_id))
        raw, ttl = p.execute()
    doc = orjson.loads(raw) if raw else None
    if not isinstance(doc, dict):
        return None
    save_client(client_id, doc, ttl if ttl > 0 else get_settings().oauth_refresh_ttl_s)
    return doc


def seal_legacy_clients() -> int:
    """Seal every registration still kept whole (see `_migrate`); how many there were."""
    done = 0
    for key in get_redis().scan_iter(match=keys.oauth_client("*"), count=500):
        with get_redis().pipeline(transaction=False) as p:
            p.type(key)
            (kind,) = p.execute()
        if kind == "string":
            done += _migrate(key.rsplit(":", 1)[1]) is not None
    return done


def clients_full() -> float | None:
    """None while the registrations kept are under `oauth_max_clients`; else the seconds until
    the oldest one expires (expired ones leave the count first)."""
    index, now = keys.oauth_clients(), time.time()
    with get_redis().pipeline() as p:
        p.zremrangebyscore(index, "-inf", now)
        p.zcard(index)
        p.zrange(index, 0, 0, withscores=True)
        _, count, oldest = p.execute()
    if count < get_settings().oauth_max_clients:
        return None
    return max(1.0, oldest[0][1] - now) if oldest else 1.0


def touch_client(client_id: str) -> None:
    """A used registration lives `oauth_refresh_ttl_s` from this use (its refresh tokens do)."""
    ttl = get_settings().oauth_refresh_ttl_s
    with get_redis().pipeline() as p:
        p.expire(keys.oauth_client(client_id), ttl)
        _index(p, client_id, ttl, only_known=True)
        p.execute()


def save_request(request: dict[str, object]) -> str:
    """An authorize request waiting for the person to sign in; its id goes in the sign-in URL
    (it is no credential: whoever signs in with it sends a code only to the client's own
    redirect URI, and only the client's PKCE verifier redeems that code)."""
    rid = secrets.token_urlsafe(24)
    _put(keys.oauth_request(rid), request, get_settings().oauth_code_ttl_s)
    return rid


def request(rid: str) -> dict[str, object] | None:
    return _load(get_redis().get(keys.oauth_request(rid))) if rid else None


def take_request(rid: str) -> dict[str, object] | None:
    """The request, once: a sign-in answers it (approved or denied) only one time."""
    return _load(get_redis().getdel(keys.oauth_request(rid))) if rid else None


def issue_code(grant: Grant, bound: dict[str, object]) -> str:
    """A single-use code for `grant`, bound (`bound`: redirect URI, PKCE challenge) as the SDK's
    token handler checks it."""
    code = secrets.token_urlsafe(32)
    ttl = get_settings().oauth_code_ttl_s
    doc = {**asdict(grant), **bound, "expires_at": time.time() + ttl}
    _put(keys.oauth_code(digest(code)), doc, ttl)
    return code


def code(code: str) -> dict[str, object] | None:
    """The code's grant as stored; a code already exchanged is None, and its use again ends
    the tokens the first exchange gave (OAuth 2.1 §4.1.3: a replayed code may be a stolen one)."""
    doc = _load(get_redis().get(keys.oauth_code(digest(code)))) if code else None
    if doc is not None and "spent" in doc:
        revoke_digests(str(doc["spent"]), str(doc.get("pair", "")))
        return None
    return doc


def take_code(code: str) -> Grant | None:
    """The code's grant, once (GETDEL): a second exchange of the same code finds nothing."""
    return _grant(_load(get_redis().getdel(keys.oauth_code(digest(code)))))


def spend_code(code: str, tokens: Tokens) -> None:
    """Remember, for the code's lifetime, which tokens its exchange gave (see `code`)."""
    mark = {"spent": digest(tokens.access_token), "pair": digest(tokens.refresh_token)}
    _put(keys.oauth_code(digest(code)), mark, get_settings().oauth_code_ttl_s)


def issue_tokens(grant: Grant) -> Tokens:
    """A new access and refresh token pair for `grant`, each knowing the other's digest (so
    revoking either ends both)."""
    settings = get_settings()
    a_ttl, r_ttl = settings.oauth_access_ttl_s, settings.oauth_refresh_ttl_s
    access = ACCESS_PREFIX + secrets.token_urlsafe(32)
    refresh = REFRESH_PREFIX + secrets.token_urlsafe(32)
    now = int(time.time())
    a_doc = {**asdict(grant), "expires_at": now + a_ttl, "pair": digest(refresh)}
    r_doc = {**asdict(grant), "expires_at": now + r_ttl, "pair": digest(access)}
    with get_redis().pipeline() as p:
        p.set(keys.oauth_access(digest(access)), orjson.dumps(a_doc), ex=a_ttl)
        p.set(keys.oauth_refresh(digest(refresh)), orjson.dumps(r_doc), ex=r_ttl)
        p.execute()
    return Tokens(access, refresh, a_ttl, grant.scopes)


def access(token: str) -> Grant | None:
    if not token.startswith(ACCESS_PREFIX):
        return None
    return _grant(_load(get_redis().get(keys.oauth_access(digest(token)))))


def refresh(token: str) -> Grant | None:
    if not token.startswith(REFRESH_PREFIX):
        return None
    return _grant(_load(get_redis().get(keys.oauth_refresh(digest(token)))))


def rotate(token: str, grant: Grant) -> Tokens | None:
    """Spend refresh token `token` (GETDEL: of two concurrent uses one wins) and its access
    token, and issue a new pair for `grant`; None when it was already spent."""
    doc = _load(get_redis().getdel(keys.oauth_refresh(digest(token))))
    if doc is None:
        return None
    get_redis().delete(keys.oauth_access(str(doc.get("pair", ""))))
    return issue_tokens(grant)


def revoke_digests(access_digest: str, refresh_digest: str) -> None:
    get_redis().delete(keys.oauth_access(access_digest), keys.oauth_refresh(refresh_digest))


def revoke(token: str) -> None:
    """End `token` (access or refresh) and its pair; unknown tokens are ignored (RFC 7009)."""
    own = keys.oauth_access if token.startswith(ACCESS_PREFIX) else keys.oauth_refresh
    pair = keys.oauth_refresh if own is keys.oauth_access else keys.oauth_access
    doc = _load(get_redis().getdel(own(digest(token))))
    if doc is not None:
        get_redis().delete(pair(str(doc.get("pair", ""))))
