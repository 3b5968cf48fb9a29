"""Tenants own everything; an API key (stored hashed) names its tenant."""

from __future__ import annotations

import base64
import math
import secrets
import time
from datetime import UTC, datetime

from app.kernel import keys
from app.kernel.crypto import seal, unseal
from app.kernel.errors import NotFound
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.settings import get_settings
from app.store import apikeys


def create_tenant(
    name: str, rate_limit: int | None = None, rate_window_s: float | None = None
) -> dict[str, str]:
    """Returns the only copy of the API key and webhook secret the caller will ever see.

    `rate_limit` requests per `rate_window_s` (0: unlimited) override this tenant's API limit
    (`app.api.throttle`); one left out follows its setting (`TOOLQUEUE_API_RATE_*`).
    """
    if rate_limit is not None and rate_limit < 0:
        raise ValueError("rate_limit must be 0 (unlimited) or more")
    if rate_window_s is not None and not (0 < rate_window_s < math.inf):
        raise ValueError("rate_window_s must be a number of seconds above 0")
    tenant_id = "ten_" + secrets.token_hex(8)
    webhook_secret = _new_secret()
    record: dict[str, str | float] = {
        "name": name,
        "created_at": time.time(),
        "webhook_secret": seal(webhook_secret),
    }
    if rate_limit is not None:
        record["rate_limit"] = rate_limit
    if rate_window_s is not None:
        record["rate_window_s"] = float(rate_window_s)
    get_redis().hset(keys.tenant(tenant_id), mapping=record)
    key = apikeys.create(tenant_id, name="first key")
    return {
        "tenant_id": tenant_id,
        "api_key": str(key["api_key"]),
        "key_id": str(key["key_id"]),
        "webhook_secret": webhook_secret,
    }


def authenticate(api_key: str) -> str:
    """The key's tenant (`apikeys.authenticate` for the key's scopes too)."""
    return apikeys.authenticate(api_key).tenant_id


def set_plan(
    tenant_id: str, *, bulk_weight: float | None = None, bulk_concurrency: int | None = None
) -> dict[str, object]:
    """The tenant's share of the bulk lane (`app.dispatch.fairshare`): its weight (2: twice
    the turns of a tenant at 1 while both have work waiting) and how many bulk steps it may
    run at once (0: no limit). One left out keeps its value (settings by default)."""
    if bulk_weight is not None and not (0 < bulk_weight <= 1000):
        raise ValueError("bulk_weight must be above 0 and at most 1000")
    if bulk_concurrency is not None and bulk_concurrency < 0:
        raise ValueError("bulk_concurrency must be 0 (no limit) or more")
    r = get_redis()
    if not r.hget(keys.tenant(tenant_id), "name"):
        raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found")
    changes = {"bulk_weight": bulk_weight, "bulk_concurrency": bulk_concurrency}
    r.hset(keys.tenant(tenant_id), mapping={k: v for k, v in changes.items() if v is not None})
    weight, limit = r.hmget(keys.tenant(tenant_id), "bulk_weight", "bulk_concurrency")
    s = get_settings()
    return {
        "tenant_id": tenant_id,
        "bulk_weight": float(weight) if weight else s.bulk_weight,
        "bulk_concurrency": int(limit) if limit else s.bulk_tenant_concurrency,
    }


def display_name(tenant_id: str) -> str:
    return get_redis().hget(keys.tenant(tenant_id), "name") or tenant_id


def webhook_secret(tenant_id: str) -> str:
    sealed = get_redis().hget(keys.tenant(tenant_id), "webhook_secret")
    if not sealed:
        raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found")
    secret: str = unseal(sealed)
    return secret


def webhook_secrets(tenant_id: str) -> list[str]:
    """The secrets that sign an attempt now: the current one, plus the previous one while a
    rotation's overlap lasts (so receivers can switch secrets without dropping events)."""
    current, prev, until = get_redis().hmget(
        keys.tenant(tenant_id), "webhook_secret", "webhook_secret_prev", "webhook_secret_prev_until"
    )
    if not current:
        raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found")
    out = [unseal(current)]
    if prev and until and float(until) > time.time():
        out.append(unseal(prev))
    return out


def rotate_webhook_secret(tenant_id: str) -> dict[str, object]:
    """A new webhook secret, returned this once (sealed at rest like the first). The old one
    keeps signing alongside it for `webhook_secret_overlap_s`, then stops."""
    secret = _new_secret()
    overlap = get_settings().webhook_secret_overlap_s
    until = time.time() + overlap
    sealed = seal(secret)
    if not run_script(source("tenant_rotate_secret"), [keys.tenant(tenant_id)], [sealed, until]):
        raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found")
    return {
        "tenant_id": tenant_id,
        "webhook_secret": secret,
        "previous_secret_valid_until": datetime.fromtimestamp(until, UTC).isoformat(),
        "overlap_s": overlap,
    }


def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
