"""HTTP connections that go only to addresses a check allowed.

Checking a URL, then letting the HTTP library resolve its host again, leaves a window: a name
that answered with a public address for the check can answer with a private one for the
connection (DNS rebinding). A `PinnedAdapter` closes it: each new connection resolves the host
once, asks `check` for the addresses it may use (the check raises to refuse), and connects to
the first. TLS still verifies the certificate and sends SNI for the host name. A refusal is
raised before any byte is sent. Behind a proxy from the environment the proxy connects, and
only checks made before the request apply.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

AddressCheck = Callable[[str, int], list[str]]  # (host, port) -> usable addresses, or raise


class _Pinned:
    """Mixin over urllib3 2.x's connections: they connect to `_dns_host`, which is swapped
    for the checked address during the connect."""

    port: int
    _dns_host: str
    address_check: AddressCheck

    def _new_conn(self) -> socket.socket:
        name = self._dns_host
        self._dns_host = type(self).address_check(name, self.port)[0]
        try:
            # a mixin: urllib3's connection class comes next in the MRO, unknown to mypy here
            conn: socket.socket = super()._new_conn()  # type: ignore[misc]
            return conn
        finally:
            self._dns_host = name


class PinnedAdapter(HTTPAdapter):
    """A requests transport adapter whose new connections go through `check`."""

    def __init__(self, check: AddressCheck, **kwargs: Any) -> None:
        attrs = {"address_check": staticmethod(check)}
        http = type("PinnedHTTPConnection", (_Pinned, HTTPConnection), attrs)
        https = type("PinnedHTTPSConnection", (_Pinned, HTTPSConnection), attrs)
        self._pools = {
            "http": type("PinnedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("PinnedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools


def pin(session: Any, check: AddressCheck, **kwargs: Any) -> None:
    """Mount one `PinnedAdapter` for both schemes of a requests session."""
    adapter = PinnedAdapter(check, **kwargs)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
