"""SSRF guard for every URL a tenant makes us call: callback URLs and account base URLs.

A URL is checked when it is registered and before each use; `pinned` also checks, at connect
time, the very address each new connection goes to, so DNS rebinding between the check and the
connection gets nowhere (webhook deliveries, vendor requests and the proxy all use it).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from app.errors import InvalidInput
from app.settings import get_settings
from connectors.pinning import AddressCheck, pin


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
    except ValueError as exc:
        raise InvalidInput(f"{field} has a bad port: {exc}", code=f"invalid_{field}") from None
    public_addresses(parts.hostname, port, field=field)


def public_addresses(host: str, port: int, *, field: str = "callback_url") -> list[str]:
    """Every address `host` resolves to, if all are public or allow-listed; else refused."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError, UnicodeError) as exc:
        raise InvalidInput(
            f"{field} host {host!r} does not resolve: {exc}", code=f"invalid_{field}"
        ) from None
    allowed = [
        ipaddress.ip_network(n, strict=False) for n in get_settings().outbound_allow_networks
    ]
    out = []
    for info in infos:
        text = str(info[4][0])
        addr = ipaddress.ip_address(text.split("%")[0])
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        if not any(addr in net for net in allowed) and (
            not addr.is_global or addr.is_multicast or addr.is_unspecified or addr.is_reserved
        ):
            raise InvalidInput(
                f"{field} resolves to {addr}, a non-public address; allow-list its "
                "network in TOOLQUEUE_OUTBOUND_ALLOW_NETWORKS if that is intended",
                code=f"{field}_not_allowed",
            )
        out.append(text)
    return out


def connect_check(field: str) -> AddressCheck:
    """`public_addresses` for a connection about to open. A name that does not resolve (now) is
    a network error, an OSError that HTTP clients retry like a refused connection; a refused
    address raises `InvalidInput`."""

    def check(host: str, port: int) -> list[str]:
        try:
            return public_addresses(host, port, field=field)
        except InvalidInput as exc:
            if exc.code == f"invalid_{field}":
                raise OSError(exc.message) from None
            raise

    return check


def pinned(session: Any, field: str, **adapter_kwargs: Any) -> None:
    """Make the session's new connections go only to addresses these rules allow, checked at
    connect time (`connectors.pinning`); a refusal raises `InvalidInput` before any request."""
    pin(session, connect_check(field), **adapter_kwargs)
