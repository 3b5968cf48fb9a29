"""Outbound webhook rules: which callback URLs are allowed (SSRF guard) and how we sign."""

from __future__ import annotations

import ipaddress
import socket
from datetime import datetime
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from app.errors import InvalidInput
from app.settings import get_settings


def check_callback_url(url: str) -> None:
    """Refuse URLs that are not http(s) or resolve to private, loopback, link-local,
    multicast, reserved or unspecified addresses, unless allow-listed in settings.

    Called at enqueue and again before every attempt, so a DNS change after
    registration cannot bypass it.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            "callback_url must be an absolute http(s) URL", code="invalid_callback_url"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"callback_url host {parts.hostname!r} does not resolve: {exc}",
            code="invalid_callback_url",
        ) from None
    allowed = [ipaddress.ip_network(n, strict=False) for n in get_settings().webhook_allow_networks]
    for info in infos:
        addr = ipaddress.ip_address(info[4][0].split("%")[0])
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        if any(addr in net for net in allowed):
            continue
        if not addr.is_global or addr.is_multicast or addr.is_unspecified or addr.is_reserved:
            raise InvalidInput(
                f"callback_url resolves to {addr}, a non-public address; allow-list its "
                "network in TOOLQUEUE_WEBHOOK_ALLOW_NETWORKS if that is intended",
                code="callback_url_not_allowed",
            )


def sign(secret: str, msg_id: str, timestamp: datetime, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for one attempt."""
    signature = Webhook(secret).sign(msg_id, timestamp, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }
