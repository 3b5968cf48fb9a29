"""Encryption at rest for credentials and webhook secrets (Fernet, with key rotation)."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, MultiFernet

from app.kernel.settings import get_settings


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in get_settings().fernet_keys()])


def seal(value: Any) -> str:
    """Encrypt a JSON-able value with the first key."""
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def unseal(token: str) -> Any:
    """Decrypt with any configured key (old keys keep reading during rotation)."""
    return json.loads(_fernet().decrypt(token.encode()))


def reseal(token: str) -> str:
    """The same value sealed under the first (newest) key, so older keys can be retired.

    `MultiFernet.rotate` decrypts with any key and keeps the original timestamp."""
    return _fernet().rotate(token.encode()).decode()


def reseal_all() -> dict[str, int]:
    """Re-seal every token record, tenant webhook secret, account vendor-webhook secret,
    tenant OAuth app secret and MCP OAuth client secret (dynamic registration) under the first
    key, after which the older keys can be dropped from `TOOLQUEUE_SECRET_KEY`. Safe while
    workers run. Only hashes are looked at: a client registration an older toolqueue kept
    whole, a string with its secret in clear, is no sealed value (app.store.oauth seals it on
    its next use, or `seal_legacy_clients`)."""
    from app.kernel import keys
    from app.kernel.lua import source
    from app.kernel.redis import get_redis, run_script

    r = get_redis()
    done = {"tokens": 0, "tenants": 0, "accounts": 0, "oauth_apps": 0, "oauth_clients": 0}
    for kind, pattern, field in (
        ("tokens", keys.token("*"), "sealed"),
        ("tenants", keys.tenant("*"), "webhook_secret"),
        # a rotated-out secret still signing during its overlap (counted with the tenants)
        ("tenants", keys.tenant("*"), "webhook_secret_prev"),
        ("accounts", keys.account("*"), "webhook_secret"),  # the vendor's, for inbound ones
        ("oauth_apps", keys.oauth_app("*", "*"), "sealed_secret"),  # a tenant's client secret
        ("oauth_clients", keys.oauth_client("*"), "sealed_secret"),  # an MCP client's (DCR)
    ):
        parts = pattern.count(":")  # tq:tenant:<id>, not tq:tenant:<id>:jobs and the like
        for key in r.scan_iter(match=pattern, count=500):
            if key.count(":") != parts:
                continue
            old = _hget(key, field)
            if old and run_script(source("sealed_swap"), [key], [field, old, reseal(old)]):
                done[kind] += 1
    return done


def _hget(key: str, field: str) -> str | None:
    """The field of a hash; None for a key of another type (see `reseal_all`)."""
    from redis.exceptions import ResponseError

    from app.kernel.redis import get_redis

    try:
        return get_redis().hget(key, field)
    except ResponseError as exc:
        if "WRONGTYPE" not in str(exc):
            raise
        return None


def digest(secret: str) -> str:
    """Stable lookup hash of a high-entropy secret (API keys are random, so no salt needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()
