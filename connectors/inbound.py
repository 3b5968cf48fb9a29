"""Vendors' inbound webhook dialects: how each signs a delivery, which account it is for, and
what its events mean in toolqueue's terms.

Signatures are checked on the raw body bytes exactly as received (re-serialised JSON would
not match) and compared in constant time. Normalised event types: `export.completed`,
`export.failed` (an async job the vendor ran), `record.created|updated|deleted`, and
`vendor.<topic>` for anything else.

Nothing from a payload but scalars (ids, names, states) is kept: a structure where a vendor
sends an id is a `PayloadError`, so no signed payload, however odd, can crash what stores
or answers its events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

# HubSpot's documented window for X-HubSpot-Request-Timestamp; also the Standard Webhooks one
TIMESTAMP_TOLERANCE_S = 300.0
_EPOCH_MS = re.compile(r"[0-9]{1,16}")  # ASCII digits only (int() also takes "+1", "١٢")
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Delivery:
    """One inbound POST as received; header names lower-case."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise PayloadError(f"the body is not JSON ({exc})") from exc


@dataclass(frozen=True)
class VendorEvent:
    type: str
    event_id: str  # the same for the vendor's retries of one event: duplicates share it
    ref: str | None = None  # the async work it ends (a waiting job's `Page.await_ref`)
    data: dict[str, Any] = field(default_factory=dict)


class SignatureError(Exception):
    """The delivery is not provably the vendor's: missing, malformed, wrong or stale."""


class PayloadError(Exception):
    """Signed, but not a payload this dialect understands."""


@dataclass(frozen=True)
class Dialect:
    verify: Callable[[Delivery, str, float], None]  # (delivery, secret, now) or SignatureError
    account_ref: Callable[[Delivery], str | None]  # names the account (shop, portal, …)
    events: Callable[[Delivery], list[VendorEvent]]
    signature_header: str


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _header(delivery: Delivery, name: str) -> str:
    value = delivery.headers.get(name, "").strip()
    if not value:
        raise SignatureError(f"missing {name} header")
    return value


def _scalar(value: Any, what: str) -> Scalar:
    """A payload value we keep: a JSON scalar, never a structure."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise PayloadError(f"{what} must be a string or a number, not a JSON {_kind(value)}")


def _text(value: Any, what: str) -> str:
    return str(_scalar(value, what))


def _kind(value: Any) -> str:
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "value"


def _same(expected: bytes, given: str, decode: Callable[[str], bytes]) -> bool:
    try:
        return hmac.compare_digest(expected, decode(given))
    except (ValueError, TypeError):
        return False


# ---- Shopify: base64 HMAC-SHA256 of the body ----------------------------------------------


def _shopify_verify(delivery: Delivery, secret: str, now: float) -> None:
    given = _header(delivery, "x-shopify-hmac-sha256")
    if not _same(_hmac(secret, delivery.body), given, lambda v: base64.b64decode(v, validate=True)):
        raise SignatureError("X-Shopify-Hmac-Sha256 does not match the body")


_SHOPIFY_RECORD = {
    "create": "record.created",
    "update": "record.updated",
    "delete": "record.deleted",
}


def _shopify_events(delivery: Delivery) -> list[VendorEvent]:
    topic = delivery.headers.get("x-shopify-topic", "")
    doc = delivery.json()
    if not isinstance(doc, dict):
        raise PayloadError("a Shopify webhook body is a JSON object")
    event_id = delivery.headers.get("x-shopify-event-id") or delivery.headers.get(
        "x-shopify-webhook-id", ""
    )
    if topic == "bulk_operations/finish":
        status = _text(doc.get("status", ""), "status").lower()
        error_code = _scalar(doc.get("error_code"), "error_code")
        data = {"status": status, "error_code": error_code, "topic": topic}
        kind = "export.completed" if status == "completed" else "export.failed"
        ref = _text(doc.get("admin_graphql_api_id", ""), "admin_graphql_api_id")
        return [VendorEvent(kind, event_id, ref, data)]
    obj, _, action = topic.partition("/")
    kind = _SHOPIFY_RECORD.get(action, f"vendor.{topic}")
    data = {"object": obj, "id": _scalar(doc.get("id"), "id"), "topic": topic}
    return [VendorEvent(kind, event_id, None, data)]


SHOPIFY = Dialect(
    verify=_shopify_verify,
    account_ref=lambda d: d.headers.get("x-shopify-shop-domain") or None,
    events=_shopify_events,
    signature_header="X-Shopify-Hmac-Sha256",
)


# ---- GitHub: sha256=<hex HMAC-SHA256 of the body> -----------------------------------------


def _github_verify(delivery: Delivery, secret: str, now: float) -> None:
    given = _header(delivery, "x-hub-signature-256")
    scheme, _, hexdigest = given.partition("=")
    if scheme != "sha256" or not _same(_hmac(secret, delivery.body), hexdigest, bytes.fromhex):
        raise SignatureError("X-Hub-Signature-256 does not match the body")


def _github_ref(delivery: Delivery) -> str | None:
    doc = delivery.json()
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("installation"), dict) and doc["installation"].get("id") is not None:
        return _text(doc["installation"]["id"], "installation.id")
    repo = doc.get("repository")
    return _text(repo.get("full_name"), "repository.full_name") if isinstance(repo, dict) else None


_GITHUB_ACTIONS = {
    "opened": "record.created",
    "created": "record.created",
    "deleted": "record.deleted",
}
_GITHUB_OBJECTS = {"issues": "issue", "pull_request": "pull_request", "issue_comment": "comment"}


def _github_events(delivery: Delivery) -> list[VendorEvent]:
    name = delivery.headers.get("x-github-event", "")
    doc = delivery.json()
    if not isinstance(doc, dict):
        raise PayloadError("a GitHub webhook body is a JSON object")
    event_id = delivery.headers.get("x-github-delivery", "")
    action = _text(doc.get("action", ""), "action")
    obj = _GITHUB_OBJECTS.get(name)
    if obj is None:
        return [VendorEvent(f"vendor.{name}", event_id, None, {"action": action})]
    found = doc.get(obj)
    item: dict[str, Any] = found if isinstance(found, dict) else {}
    kind = _GITHUB_ACTIONS.get(action, "record.updated")
    data = {
        "object": obj,
        "id": _scalar(item.get("id"), f"{obj}.id"),
        "number": _scalar(item.get("number"), f"{obj}.number"),
        "action": action,
    }
    return [VendorEvent(kind, event_id, None, data)]


GITHUB = Dialect(
    verify=_github_verify,
    account_ref=_github_ref,
    events=_github_events,
    signature_header="X-Hub-Signature-256",
)


# ---- HubSpot: signature v3 over method + URI + body + timestamp ---------------------------


def _hubspot_verify(delivery: Delivery, secret: str, now: float) -> None:
    given = _header(delivery, "x-hubspot-signature-v3")
    stamp = _header(delivery, "x-hubspot-request-timestamp")
    if not _EPOCH_MS.fullmatch(stamp):
        raise SignatureError("X-HubSpot-Request-Timestamp is not epoch milliseconds")
    sent = int(stamp) / 1000
    if abs(now - sent) > TIMESTAMP_TOLERANCE_S:
        raise SignatureError(
            f"X-HubSpot-Request-Timestamp is {now - sent:.0f}s off (more than "
            f"{TIMESTAMP_TOLERANCE_S:.0f}s): stale or replayed"
        )
    message = delivery.method.upper().encode() + delivery.url.encode() + delivery.body
    expected = _hmac(secret, message + stamp.encode())
    if not _same(expected, given, lambda v: base64.b64decode(v, validate=True)):
        raise SignatureError("X-HubSpot-Signature-v3 does not match the request")


def _hubspot_batch(delivery: Delivery) -> list[dict[str, Any]]:
    doc = delivery.json()
    if not isinstance(doc, list) or not all(isinstance(e, dict) for e in doc):
        raise PayloadError("a HubSpot webhook body is a JSON array of event objects")
    return doc


_HUBSPOT_KINDS = {
    "creation": "record.created",
    "propertyChange": "record.updated",
    "deletion": "record.deleted",
}


def _hubspot_events(delivery: Delivery) -> list[VendorEvent]:
    out = []
    for e in _hubspot_batch(delivery):
        sub = _text(e.get("subscriptionType", ""), "subscriptionType")
        obj, _, change = sub.partition(".")
        data = {"object": obj, "id": _scalar(e.get("objectId"), "objectId"), "subscription": sub}
        if change == "propertyChange":
            data["property"] = _scalar(e.get("propertyName"), "propertyName")
        kind = _HUBSPOT_KINDS.get(change, f"vendor.{sub}")
        out.append(VendorEvent(kind, _text(e.get("eventId", ""), "eventId"), None, data))
    return out


def _hubspot_ref(delivery: Delivery) -> str | None:
    batch = _hubspot_batch(delivery)
    if not batch or batch[0].get("portalId") is None:
        return None
    return _text(batch[0]["portalId"], "portalId")


HUBSPOT = Dialect(
    verify=_hubspot_verify,
    account_ref=_hubspot_ref,
    events=_hubspot_events,
    signature_header="X-HubSpot-Signature-v3",
)

DIALECTS: dict[str, Dialect] = {"shopify": SHOPIFY, "github": GITHUB, "hubspot": HUBSPOT}
