"""Outbound webhook signing (Standard Webhooks) and the tenant's dead-letter list (read side).

The workers (tasks/webhooks.py) write dead letters; the API reads, lists and replays them here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from standardwebhooks import Webhook

from app.kernel import keys
from app.kernel.errors import NotFound
from app.kernel.redis import get_redis


def sign(secrets: list[str], msg_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for one attempt. Several secrets (the current one and, during
    a rotation's overlap, the previous one) give several space-separated signatures: a
    receiver verifying with either secret accepts the message."""
    text = body.decode()
    signature = " ".join(Webhook(s).sign(msg_id, timestamp, text) for s in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def dead_letters(tenant_id: str) -> list[dict[str, Any]]:
    """The tenant's undeliverable job events, oldest first."""
    raw = get_redis().hvals(keys.tenant_dead_letters(tenant_id))
    return sorted((json.loads(v) for v in raw), key=lambda e: e["at"])


def dead_letter(tenant_id: str, job_id: str) -> dict[str, Any]:
    raw = get_redis().hget(keys.tenant_dead_letters(tenant_id), job_id)
    if not raw:
        raise NotFound(f"no dead letter for job {job_id}", code="dead_letter_not_found")
    letter: dict[str, Any] = json.loads(raw)
    return letter
