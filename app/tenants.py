"""Tenants own everything; an API key (stored hashed) names its tenant."""

from __future__ import annotations

import base64
import secrets
import time

from app import keys
from app.crypto import digest, seal, unseal
from app.errors import NotFound, Unauthorized
from app.redis import get_redis


def create_tenant(name: str) -> dict[str, str]:
    """Returns the only copy of the API key and webhook secret the caller will ever see."""
    tenant_id = "ten_" + secrets.token_hex(8)
    api_key = "tq_" + secrets.token_urlsafe(32)
    webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    r = get_redis()
    with r.pipeline() as p:
        p.hset(
            keys.tenant(tenant_id),
            mapping={
                "name": name,
                "created_at": time.time(),
                "webhook_secret": seal(webhook_secret),
            },
        )
        p.set(keys.api_key(digest(api_key)), tenant_id)
        p.execute()
    return {"tenant_id": tenant_id, "api_key": api_key, "webhook_secret": webhook_secret}


def authenticate(api_key: str) -> str:
    tenant_id = get_redis().get(keys.api_key(digest(api_key))) if api_key else None
    if not tenant_id:
        raise Unauthorized("missing or unknown API key: send `Authorization: Bearer <api_key>`")
    return tenant_id


def webhook_secret(tenant_id: str) -> str:
    sealed = get_redis().hget(keys.tenant(tenant_id), "webhook_secret")
    if not sealed:
        raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found")
    return unseal(sealed)
