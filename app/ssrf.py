"""SSRF guard for every URL a tenant makes us call: callback URLs and account base URLs."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from app.errors import InvalidInput
from app.settings import get_settings


def check_public_url(url: str, *, field: str = "callback_url") -> None:
    """Refuse URLs that are not http(s) or resolve to private, loopback, link-local,
    multicast, reserved or unspecified addresses, unless allow-listed in settings.

    Callback URLs are checked at enqueue and again before every delivery attempt, so a
    DNS change after registration cannot bypass it; account base URLs when connected.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{field} must be an absolute http(s) URL", code=f"invalid_{field}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"{field} host {parts.hostname!r} does not resolve: {exc}",
            code=f"invalid_{field}",
        ) from None
    allowed = [
        ipaddress.ip_network(n, strict=False) for n in get_settings().outbound_allow_networks
    ]
    for info in infos:
        addr = ipaddress.ip_address(info[4][0].split("%")[0])
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        if any(addr in net for net in allowed):
            continue
        if not addr.is_global or addr.is_multicast or addr.is_unspecified or addr.is_reserved:
            raise InvalidInput(
                f"{field} resolves to {addr}, a non-public address; allow-list its "
                "network in TOOLQUEUE_OUTBOUND_ALLOW_NETWORKS if that is intended",
                code=f"{field}_not_allowed",
            )
