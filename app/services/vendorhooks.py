"""Inbound vendor webhooks: per-account signing secrets, verification, de-duplication, the
account's event log, and the completion signals that resume waiting jobs.

A delivery either names its account in the URL (`/v1/vendor-webhooks/{vendor}/{account_id}`)
or in its payload (the shop domain, portal id or GitHub installation the account registered as
its `ref`). A ref is nobody's to own: accounts of up to `MAX_REF_CLAIMS` tenants (one account
each) may claim the same one, and a delivery by ref goes to the claimants whose secret verifies
it, every claimant's secret tried. Nothing is read from a delivery's payload, beyond finding
whose secrets to check it with, until its signature verified.
"""

from __future__ import annotations

import secrets
import time
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.kernel import crypto, keys, metrics
from app.kernel.errors import Conflict, InvalidInput, NotFound, Unauthorized
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.timefmt import now_iso
from app.store import accounts
from app.work import signals
from connectors.inbound import DIALECTS, Delivery, PayloadError, SignatureError, VendorEvent

DEDUPE_TTL_S = 7 * 86_400  # vendors retry for up to 48 h (Shopify), 3 days (HubSpot)
EVENT_LOG_MAX = 1000
MAX_REF_CLAIMS = 20  # accounts (one per tenant) a ref routes to: each delivery tries them all
REF_MAX_LEN = 200  # VendorWebhookConfig.ref's: a longer ref in a delivery names nobody
_NOBODYS_SECRET = secrets.token_urlsafe(32)


class ClaimReply(StrEnum):
    """ref_claim.lua's replies; any other reply is the tenant's account holding the claim."""

    OK = "ok"  # claimed, or already this account's
    FULL = "full"  # MAX_REF_CLAIMS tenants claim the ref already


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
    if cfg.ref:  # claimed before the old one is let go: a refused claim changes nothing
        _claim(vendor, cfg.ref, tenant_id, account_id)
    if old_ref and old_ref != cfg.ref:
        release = [tenant_id, account_id]
        run_script(source("ref_release"), [keys.vendor_ref(vendor, old_ref)], release)
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


def _claim(vendor: str, ref: str, tenant_id: str, account_id: str) -> None:
    claim = [tenant_id, account_id, MAX_REF_CLAIMS]
    held = str(run_script(source("ref_claim"), [keys.vendor_ref(vendor, ref)], claim))
    per_account = f"/v1/vendor-webhooks/{vendor}/{account_id}"
    if held == ClaimReply.FULL:
        raise Conflict(
            f"{MAX_REF_CLAIMS} accounts already receive {vendor} webhooks for {ref!r}, the most "
            f"one ref routes to: point the vendor at the per-account URL {per_account}",
            code="webhook_ref_full",
        )
    if held != ClaimReply.OK:
        raise Conflict(
            f"your account {held} already receives {vendor} webhooks for {ref!r}: set its "
            f"vendor webhook without `ref` first, or use the per-account URL {per_account}",
            code="webhook_ref_taken",
        )


def events(tenant_id: str, account_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """The account's newest normalised inbound events, newest first."""
    accounts.load(account_id, tenant_id)
    raw = get_redis().lrange(keys.vendor_events(account_id), 0, limit - 1)
    return [orjson.loads(e) for e in raw]


def receive(vendor: str, account_id: str | None, delivery: Delivery) -> dict[str, Any]:
    """Verify, de-duplicate, log and act on one delivery; Unauthorized changes nothing."""
    dialect = dialect_of(vendor)
    try:
        if account_id is None:
            verified = _verified_by_ref(vendor, dialect, delivery)
        else:
            acc = _hooked(vendor, account_id, get_redis().hgetall(keys.account(account_id)))
            dialect.verify(delivery, crypto.unseal(acc["webhook_secret"]), time.time())
            verified = [account_id]
    except SignatureError as exc:
        metrics.incr("vendor_webhooks", {"vendor": vendor, "outcome": "refused"})
        raise Unauthorized(
            f"{exc}; sign with the secret registered at PUT /v1/accounts/{{id}}/vendor-webhook "
            f"({dialect.signature_header})",
            code="invalid_signature",
        ) from exc
    try:
        batch = dialect.events(delivery)
    except PayloadError as exc:
        raise InvalidInput(str(exc), code="invalid_payload") from exc
    counts = {"accepted": 0, "duplicates": 0, "resumed": 0}
    for acc_id, event in ((a, e) for a in verified for e in batch):
        outcome = _handle(acc_id, event)
        counts[outcome] += 1
        if outcome == "resumed":
            counts["accepted"] += 1
        metrics.incr(
            "vendor_webhooks",
            {"vendor": vendor, "outcome": "duplicate" if outcome == "duplicates" else "accepted"},
        )
    return counts


def _hooked(vendor: str, account_id: str, acc: dict[str, str]) -> dict[str, str]:
    """The account, if it takes `vendor`'s webhooks; else SignatureError (a prober learns
    nothing about which accounts exist)."""
    if not acc or acc.get("vendor") != vendor or not acc.get("webhook_secret"):
        raise SignatureError(f"no {vendor} webhook secret is registered for that account")
    return acc


def _verified_by_ref(vendor: str, dialect: Any, delivery: Delivery) -> list[str]:
    """The accounts claiming the delivery's ref whose secret verifies it. Every claimant's
    secret is tried (each check constant-time), and a failure reads as it would for a ref
    nobody claimed: a prober learns neither whether the ref is claimed nor by how many."""
    try:
        ref = dialect.account_ref(delivery)
    except PayloadError:
        ref = None
    r = get_redis()
    claims = (
        sorted(r.hvals(keys.vendor_ref(vendor, ref))) if ref and len(ref) <= REF_MAX_LEN else []
    )
    with r.pipeline(transaction=False) as pipe:
        for acc_id in claims:
            pipe.hgetall(keys.account(acc_id))
        found = pipe.execute() if claims else []
    now, verified = time.time(), []
    for acc_id, acc in zip(claims, found, strict=True):
        try:
            dialect.verify(
                delivery, crypto.unseal(_hooked(vendor, acc_id, acc)["webhook_secret"]), now
            )
        except SignatureError:
            continue
        verified.append(acc_id)
    if not verified:
        # why a secret nobody holds fails: what a failed claimant would say, claimed or not
        dialect.verify(delivery, _NOBODYS_SECRET, now)
        raise SignatureError(f"{dialect.signature_header} does not match")
    return verified


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
            pipe.expire(keys.vendor_events(account_id), DEDUPE_TTL_S)  # a quiet account's too
            pipe.execute()
        if event.ref and signals.signal(account_id, event.ref, f"vendor webhook {event.type}"):
            return "resumed"
        return "accepted"
    except Exception:
        r.delete(seen)  # not handled: the vendor's retry must not count as a duplicate
        raise
