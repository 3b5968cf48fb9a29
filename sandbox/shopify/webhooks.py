"""The ``bulk_operations/finish`` webhook: subscriptions, and signed deliveries sent from a
timer thread when an operation ends (``X-Shopify-Hmac-Sha256``, shop ``SHOP_DOMAIN``).

Sandbox-only controls: ``POST /shopify/_sandbox/webhooks`` subscribes a URL (what the app's
``webhookSubscriptionCreate`` would do); ``GET`` lists the subscriptions and every attempt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import requests
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from sandbox.shopify.bulk import BulkOp, BulkStore, bulk_store
from sandbox.shopify.http import API_VERSION

SHOP_DOMAIN = "toolqueue-sandbox.myshopify.com"  # X-Shopify-Shop-Domain of every webhook
BULK_TOPIC = "bulk_operations/finish"
WEBHOOK_TIMEOUT_S = 3.0

router = APIRouter()


def _headers(body: bytes, secret: str, webhook_id: str, event_id: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": BULK_TOPIC,
        "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
        "X-Shopify-Shop-Domain": SHOP_DOMAIN,
        "X-Shopify-API-Version": API_VERSION,
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def _attempt(op: BulkOp, url: str, secret: str, body: bytes) -> dict[str, Any]:
    """One POST; the attempt as ``GET /_sandbox/webhooks`` shows it."""
    webhook_id = str(uuid.uuid4())
    headers = _headers(body, secret, webhook_id, op.event_id)
    attempt: dict[str, Any] = {
        "t": time.time(),
        "url": url,
        "topic": BULK_TOPIC,
        "operation": op.gid,
        "webhook_id": webhook_id,
        "event_id": op.event_id,
        "status": None,
        "error": None,
    }
    try:
        resp = requests.post(
            url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT_S, allow_redirects=False
        )
        attempt["status"] = resp.status_code
    except requests.RequestException as exc:
        attempt["error"] = f"{type(exc).__name__}: {exc}"[:300]
    return attempt


def deliver(store: BulkStore, op: BulkOp) -> None:
    """Timer thread: POST the finish webhook (``webhook_copies`` times) to every subscription."""
    if not store.current or not op.webhook:
        return
    with store.lock:
        subscriptions = list(store.subscriptions.items())
    body = op.webhook_body()
    for _ in range(op.webhook_copies):
        for url, secret in subscriptions:
            attempt = _attempt(op, url, secret, body)
            with store.lock:
                store.attempts.append(attempt)


class WebhookSubscription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    callback_url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://")
    secret: str = Field(min_length=1, max_length=512)


@router.post("/_sandbox/webhooks")
async def webhook_subscribe(request: Request, body: WebhookSubscription) -> Response:
    """Sandbox-only: subscribe ``callback_url`` to bulk_operations/finish, signed with
    ``secret`` (what the app's webhookSubscriptionCreate would do; Shopify signs with the
    app's client secret). Registering a URL again replaces its secret."""
    store = bulk_store(request)
    with store.lock:
        store.subscriptions[body.callback_url] = body.secret
    return JSONResponse({"topic": BULK_TOPIC, "callback_url": body.callback_url})


@router.get("/_sandbox/webhooks")
async def webhook_attempts(request: Request) -> Response:
    """The subscriptions (without secrets) and every delivery attempt, oldest first."""
    store = bulk_store(request)
    with store.lock:
        subs = [{"topic": BULK_TOPIC, "callback_url": url} for url in store.subscriptions]
        attempts = list(store.attempts)
    return JSONResponse({"shop_domain": SHOP_DOMAIN, "subscriptions": subs, "attempts": attempts})
