"""SSRF guard for every URL a tenant makes us call: callback URLs and account base URLs.

Checking a URL and then letting the HTTP library resolve its host again leaves a window: a
name that answered with a public address for the check can answer with a private one for the
connection (DNS rebinding). `GuardedAdapter` closes it for webhook deliveries: each new
connection resolves the host once, checks every address, and connects to the checked one.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

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


class _Pinned:
    """A urllib3 connection that connects only to an address `public_addresses` passed.

    urllib3 connects to `_dns_host`; it is swapped for the checked address for the connect
    (TLS still verifies and sends SNI for the real host name, `self.host`)."""

    host: str
    port: int
    _dns_host: str
    field = "callback_url"

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        self._dns_host = public_addresses(name, self.port, field=self.field)[0]
        try:
            return super()._new_conn()  # type: ignore[misc]
        finally:
            self._dns_host = name


class _PinnedHTTP(_Pinned, HTTPConnection):
    pass


class _PinnedHTTPS(_Pinned, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTP


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPS


class GuardedAdapter(HTTPAdapter):
    """Mount on a requests session: its new connections go to checked addresses only (a
    refused one raises `InvalidInput`, before any byte is sent). Behind a proxy from the
    environment the proxy makes the connection, and only `check_public_url` applies."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
