"""SSRF guard for every URL a tenant makes us call: callback, events, base and token URLs.

A URL is checked when it is registered and before each use; `pinned` also checks, at connect
time, the very address each new connection goes to, so DNS rebinding between the check and the
connection gets nowhere (webhook deliveries, vendor requests, token refreshes and the proxy all
use it). `check_token_url` adds where client secrets may go at all.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit

from app.kernel.errors import InvalidInput
from app.kernel.settings import get_settings
from connectors.pinning import AddressCheck, pin

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# host (a name, an IPv4 literal or a bracketed IPv6 literal) and an optional port: nothing
# else, so no parser can read another host out of it (no userinfo, zone id or escapes)
_NETLOC = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # well-known prefix: the IPv4 is the low 32 bits
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # local use: where the IPv4 sits varies
_COMPAT = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible ::a.b.c.d


def check_public_url(url: str, *, field: str = "callback_url") -> None:
    """Refuse URLs that are not strict absolute http(s) URLs (`strict_url`) or resolve to
    private, loopback, link-local, multicast, reserved or unspecified addresses (also inside
    6to4, NAT64, Teredo or IPv4-compatible IPv6), unless allow-listed in settings.

    Callback URLs are checked at enqueue and again before every delivery attempt, so a
    DNS change after registration cannot bypass it; account URLs when connected.
    """
    host, port = strict_url(url, field=field)
    public_addresses(host, port, field=field)


def strict_url(url: str, *, field: str) -> tuple[str, int]:
    """(host, port) of an absolute http(s) URL that every parser reads the same way: visible
    ASCII only, no backslash, no userinfo, no fragment. Parsers disagree on those
    (`http://a\\@b/`, `http://a#@b/`), so a check could pass one host and a client call
    another."""

    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"{field} {why}", code=f"invalid_{field}")

    for i, ch in enumerate(url):
        if not 0x21 <= ord(ch) <= 0x7E:
            raise bad(
                f"has a space, control or non-ASCII character at position {i}: percent-encode "
                "it (host names in punycode)"
            )
    if "\\" in url:
        raise bad("contains a backslash: use `/`")
    if "#" in url:
        raise bad("has a fragment (`#…`): remove it, it is never sent")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad("must be an absolute http(s) URL")
    if "@" in parts.netloc:
        raise bad("has user info (`user@host`): give only the host, credentials go elsewhere")
    if not _NETLOC.fullmatch(parts.netloc):
        raise bad(f"has a malformed host {parts.netloc!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise bad(f"has a bad port: {exc}") from None
    return parts.hostname, port


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
        refused = refusal(ipaddress.ip_address(text.split("%")[0]), allowed)
        if refused:
            raise InvalidInput(
                f"{field} resolves to {refused}, a non-public address; allow-list its "
                "network in TOOLQUEUE_OUTBOUND_ALLOW_NETWORKS if that is intended",
                code=f"{field}_not_allowed",
            )
        out.append(text)
    return out


def refusal(addr: IPAddress, allowed: list[Any]) -> str | None:
    """None if `addr` may be connected to; else how to name it in the refusal.

    IPv4-mapped IPv6 is the IPv4 address itself (same socket address), so it is judged as
    one, allow-list included. The other forms that embed an IPv4 address (6to4, NAT64,
    Teredo, IPv4-compatible) reach it through a translator or tunnel: they pass only if the
    IPv6 address is public and every embedded IPv4 address is public too. An allow-listed
    IPv4 network does not extend to them; allow-list the IPv6 network itself for that."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if any(addr.version == net.version and addr in net for net in allowed):
        return None
    for inner in _embedded_ipv4(addr):
        if not _public(inner):
            return f"{addr} (which embeds {inner})"
    if not _public(addr) or (isinstance(addr, ipaddress.IPv6Address) and addr in _NAT64_LOCAL):
        return str(addr)
    return None


def _public(addr: IPAddress) -> bool:
    return addr.is_global and not (addr.is_multicast or addr.is_unspecified or addr.is_reserved)


def _embedded_ipv4(addr: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (6to4, NAT64, Teredo server and client,
    IPv4-compatible); none for IPv4 or plain IPv6."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return []
    if addr.sixtofour:
        return [addr.sixtofour]
    if addr.teredo:
        return list(addr.teredo)
    if addr in _NAT64 or addr in _COMPAT:
        return [ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)]
    return []


def check_token_url(url: str, *, base_url: str, vendor_token_url: str) -> None:
    """A token endpoint a tenant names receives the account's client secret, so beyond the
    SSRF rules it must be on the vendor's documented token host (an absolute
    `Vendor.token_url`), on the account's own base_url host, or on a host the operator
    allow-listed in TOOLQUEUE_TOKEN_HOSTS_ALLOW. Any port (the base_url already reaches that
    host), but https where the matching URL is https: the secret is not sent in clear where
    the tenant or vendor chose TLS. Refused before any DNS lookup."""
    host, port = strict_url(url, field="token_url")
    scheme = urlsplit(url).scheme
    mine = [base_url] + ([vendor_token_url] if vendor_token_url.startswith("http") else [])
    same = [urlsplit(u).scheme for u in mine if urlsplit(u).hostname == host]
    if same and all(s == "https" for s in same) and scheme != "https":
        raise InvalidInput(
            f"token_url must be https, as the {host} URL it shares a host with is",
            code="token_url_not_allowed",
        )
    if not same and not token_host_allowed(host):
        raise InvalidInput(
            f"token_url's host {host} is neither the vendor's token host nor the account's "
            f"base_url host ({urlsplit(base_url).hostname}), the only places a client secret "
            "is sent; omit token_url to use the vendor's, or ask the operator to add "
            f"{host} to TOOLQUEUE_TOKEN_HOSTS_ALLOW",
            code="token_url_not_allowed",
        )
    public_addresses(host, port, field="token_url")


def token_host_allowed(host: str) -> bool:
    """`host` is in TOOLQUEUE_TOKEN_HOSTS_ALLOW (an entry `*.example.com` covers subdomains)."""
    for entry in get_settings().token_hosts_allow:
        if host == entry or (entry.startswith("*.") and host.endswith(entry[1:])):
            return True
    return False


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
