"""Outbound webhook signing (Standard Webhooks)."""

from __future__ import annotations

from datetime import datetime

from standardwebhooks import Webhook


def sign(secret: str, msg_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for one attempt."""
    signature = Webhook(secret).sign(msg_id, timestamp, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
