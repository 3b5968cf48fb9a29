"""Inbound vendor webhooks: per-account signing secrets, verification, de-duplication, the
account's event log, and the completion signals that resume waiting jobs.

A delivery either names its account in the URL (`/v1/vendor-webhooks/{vendor}/{account_id}`,
the safe choice when several tenants connect the same shop or portal) or in its payload (the
shop domain, portal id or GitHub installation the account registered as its `ref`). Nothing
is read from a delivery's payload, beyond finding whose secret to check it with, until its
signature verified.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app import accounts, crypto, keys, metrics
from app.errors import Conflict, InvalidInput, NotFound, Unauthorized
from app.redis import get_redis
from app.timefmt import now_iso
from connectors.inbound import DIALECTS, Delivery, PayloadError, SignatureError, VendorEvent
from tasks import signals

DEDUPE_TTL_S = 7 * 86_400  # vendors retry for up to 48 h (Shopify), 3 days (HubSpot)
EVENT_LOG_MAX = 1000


class VendorWebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    secret: SecretStr = Field(
        min_length=8,
        max_length=512,
        description="The secret the vendor signs deliveries with (Shopify: the app's client "
        "secret; GitHub: the hook's secret; HubSpot: the app's client secret)",
    )
    ref: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:/-]+$",
        description="How the vendor's payloads name this account (Shopify shop domain, HubSpot "
        "portal id, GitHub installation id or owner/repo), for POST "
        "/v1/vendor-webhooks/{vendor} without the account id",
    )
    fallback_s: float | None = Field(
        None,
        ge=1,
        le=86_400,
        description="Poll a waiting async job after this long should its webhook never come "
        "(default: the server's vendor_webhook_fallback_s)",
    )


def dialect_of(vendor: str) -> Any:
    dialect = DIALECTS.get(vendor)
    if dialect is None:
        raise NotFound(
            f"toolqueue takes no webhooks from {vendor!r}; it does from: "
            f"{', '.join(sorted(DIALECTS))}",
            code="vendor_webhooks_unsupported",
        )
    return dialect


def configure(tenant_id: str, account_id: str, cfg: VendorWebhookConfig) -> dict[str, Any]:
    acc = accounts.load(account_id, tenant_id)
    vendor = acc["vendor"]
    dialect_of(vendor)
    r = get_redis()
    old_ref = acc.get("webhook_ref")
    taken = cfg.ref and cfg.ref != old_ref
    if taken and not r.set(keys.vendor_ref(vendor, cfg.ref), account_id, nx=True):
        raise Conflict(
            f"another account already receives {vendor} webhooks for {cfg.ref!r}: use the "
            f"per-account URL /v1/vendor-webhooks/{vendor}/{account_id} instead of a ref",
            code="webhook_ref_taken",
        )
    if old_ref and old_ref != cfg.ref:
        r.delete(keys.vendor_ref(vendor, old_ref))
    fields = {"webhook_secret": crypto.seal(cfg.secret.get_secret_value())}
    if cfg.fallback_s is not None:
        fields["webhook_fallback_s"] = str(cfg.fallback_s)
    if cfg.ref:
        fields["webhook_ref"] = cfg.ref
    optional = {"webhook_fallback_s": cfg.fallback_s, "webhook_ref": cfg.ref}
    drop = [name for name, value in optional.items() if value is None]
    with r.pipeline() as pipe:
        pipe.hset(keys.account(account_id), mapping=fields)
        if drop:
            pipe.hdel(keys.account(account_id), *drop)
        pipe.execute()
    return accounts.view(account_id, tenant_id)


def events(tenant_id: str, account_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The account's newest normalised inbound events, newest first."""
    accounts.load(account_id, tenant_id)
    raw = get_redis().lrange(keys.vendor_events(account_id), 0, limit - 1)
    return [orjson.loads(e) for e in raw]


def receive(vendor: str, account_id: str | None, delivery: Delivery) -> dict[str, Any]:
    """Verify, de-duplicate, log and act on one delivery; Unauthorized changes nothing."""
    dialect = dialect_of(vendor)
    try:
        acc_id, acc = _account(vendor, account_id, dialect, delivery)
        dialect.verify(delivery, crypto.unseal(acc["webhook_secret"]), time.time())
    except SignatureError as exc:
        metrics.incr("vendor_webhooks", {"vendor": vendor, "outcome": "refused"})
        raise Unauthorized(
            f"{exc}; sign with the secret registered at POST /v1/accounts/{{id}}/vendor-webhook "
            f"({dialect.signature_header})",
            code="invalid_signature",
        ) from exc
    try:
        batch = dialect.events(delivery)
    except PayloadError as exc:
        raise InvalidInput(str(exc), code="invalid_payload") from exc
    counts = {"accepted": 0, "duplicates": 0, "resumed": 0}
    for event in batch:
        outcome = _handle(acc_id, event)
        counts[outcome] += 1
        if outcome == "resumed":
            counts["accepted"] += 1
        metrics.incr(
            "vendor_webhooks",
            {"vendor": vendor, "outcome": "duplicate" if outcome == "duplicates" else "accepted"},
        )
    return counts


def _account(
    vendor: str, account_id: str | None, dialect: Any, delivery: Delivery
) -> tuple[str, dict[str, str]]:
    """The account the delivery is for, with a secret to check it; else SignatureError (a
    prober learns nothing about which accounts exist)."""
    r = get_redis()
    if account_id is None:
        try:
            ref = dialect.account_ref(delivery)
        except PayloadError:
            ref = None
        account_id = r.get(keys.vendor_ref(vendor, ref)) if ref else None
        if account_id is None:
            raise SignatureError(f"no {vendor} account registered the ref this delivery names")
    acc = r.hgetall(keys.account(account_id))
    if not acc or acc.get("vendor") != vendor or not acc.get("webhook_secret"):
        raise SignatureError(f"no {vendor} webhook secret is registered for that account")
    return account_id, acc


def _handle(account_id: str, event: VendorEvent) -> str:
    """'duplicates' for a delivery seen before, 'resumed' when it woke a job, else 'accepted'."""
    r = get_redis()
    seen = keys.vendor_event_seen(account_id, event.event_id or orjson.dumps(event.data).hex())
    if not r.set(seen, 1, nx=True, ex=DEDUPE_TTL_S):
        return "duplicates"
    try:
        entry = {
            "type": event.type,
            "event_id": event.event_id,
            "ref": event.ref,
            "data": event.data,
            "received_at": now_iso(),
        }
        with r.pipeline() as pipe:
            pipe.lpush(keys.vendor_events(account_id), orjson.dumps(entry))
            pipe.ltrim(keys.vendor_events(account_id), 0, EVENT_LOG_MAX - 1)
            pipe.execute()
        if event.ref and signals.signal(account_id, event.ref, f"vendor webhook {event.type}"):
            return "resumed"
        return "accepted"
    except Exception:
        r.delete(seen)  # not handled: the vendor's retry must not count as a duplicate
        raise
