"""The SSRF guard classifies resolved addresses; a refused address gets no traffic (the only
server these tests send to listens on loopback)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
import requests

from app.kernel.errors import InvalidInput
from app.kernel.ssrf import check_public_url, pinned
from connectors.pinning import PinnedAdapter


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/hook", "http://172.16.0.1/hook", "http://192.168.1.1/hook",
    "http://169.254.169.254/latest", "http://[fd00::1]/hook", "http://0.0.0.0/hook",
    "http://[::ffff:10.0.0.1]/hook", "http://224.0.0.1/hook",
])
def test_private_addresses_refused(url):
    with pytest.raises(InvalidInput) as exc:
        check_public_url(url)
    assert exc.value.code == "callback_url_not_allowed"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "/relative",
                                 "http://host.invalid/x"])
def test_bad_urls_refused(url):
    with pytest.raises(InvalidInput) as exc:
        check_public_url(url)
    assert exc.value.code == "invalid_callback_url"


def test_loopback_allowed_by_default_allow_list():
    """The default allow-list admits loopback (the sandbox and local receivers): no error."""
    for url in ("http://127.0.0.1:9/hook", "http://[::1]:9/hook"):
        assert check_public_url(url) is None


def test_loopback_refused_when_not_allow_listed(monkeypatch):
    from app.kernel import settings

    monkeypatch.setattr(settings.get_settings(), "outbound_allow_networks", [])
    with pytest.raises(InvalidInput):
        check_public_url("http://127.0.0.1:9/hook")


def test_ipv6_loopback_refused_when_not_allow_listed(monkeypatch):
    from app.kernel import settings

    monkeypatch.setattr(settings.get_settings(), "outbound_allow_networks", [])
    with pytest.raises(InvalidInput) as exc:
        check_public_url("http://[::1]:9/hook")
    assert exc.value.code == "callback_url_not_allowed"


# ---- names: resolution is replaced by a table, so no lookup or traffic leaves the box ----

REAL_GETADDRINFO = socket.getaddrinfo


def resolve_as(monkeypatch, table):
    """socket.getaddrinfo answering names in `table` (a name -> list of answers, used in turn;
    the last one repeats), anything else (IP literals) as the real resolver does."""
    calls: dict[str, int] = {}

    def fake(host, port, *args, **kwargs):
        if host not in table:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        n = calls[host] = calls.get(host, 0) + 1
        addr = table[host][min(n, len(table[host])) - 1]
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (addr, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return calls


@pytest.mark.parametrize("addr", ["10.1.2.3", "192.168.0.7", "169.254.169.254", "fd00::5"])
def test_hostname_resolving_to_a_private_address_refused(monkeypatch, addr):
    resolve_as(monkeypatch, {"intranet.example": [addr]})
    with pytest.raises(InvalidInput) as exc:
        check_public_url("https://intranet.example/hook")
    assert exc.value.code == "callback_url_not_allowed"
    assert addr in exc.value.message


def test_hostname_with_one_private_answer_among_public_ones_refused(monkeypatch):
    def answers(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (a, port))
                for a in ("93.184.216.34", "10.0.0.9")]

    monkeypatch.setattr(socket, "getaddrinfo", answers)
    with pytest.raises(InvalidInput):
        check_public_url("https://mixed.example/hook")


@pytest.fixture
def loopback(receiver):
    """The suite's loopback receiver (tests/conftest.py), answering 204."""
    receiver.status = 204
    return receiver


def hosts(rec) -> list[str]:
    """The Host header of every request the receiver got."""
    return [r["headers"]["host"] for r in rec.requests]


def guarded_session():
    session = requests.Session()
    session.trust_env = False
    pinned(session, "callback_url")
    return session


def test_guarded_connection_goes_to_the_address_it_checked(monkeypatch, loopback):
    """`hook.test` exists only in the table: the request arrives because the connection used
    the checked address, not a second lookup of the name."""
    calls = resolve_as(monkeypatch, {"hook.test": ["127.0.0.1"]})
    port = urlsplit(loopback.url).port
    resp = guarded_session().post(f"http://hook.test:{port}/h", data=b"{}", timeout=5)
    assert resp.status_code == 204
    assert hosts(loopback) == [f"hook.test:{port}"]  # the Host header keeps the name
    assert calls["hook.test"] == 1


def test_rebinding_after_the_check_is_refused_before_connecting(monkeypatch, loopback):
    """The name answers public for the attempt's check, loopback for the connection: the
    connection is refused and nothing reaches the (loopback) server."""
    from app.kernel import settings

    monkeypatch.setattr(settings.get_settings(), "outbound_allow_networks", [])
    resolve_as(monkeypatch, {"rebind.test": ["93.184.216.34", "127.0.0.1"]})
    url = f"http://rebind.test:{urlsplit(loopback.url).port}/h"
    check_public_url(url)  # the first answer is public
    with pytest.raises(InvalidInput) as exc:
        guarded_session().post(url, data=b"{}", timeout=5)
    assert exc.value.code == "callback_url_not_allowed"
    assert hosts(loopback) == []


def test_every_delivery_attempt_checks_the_url_again(monkeypatch):
    """A callback accepted while its name was public, moved to a private address later: the
    attempt is refused without a request (the check precedes signing and sending)."""
    from app.work import deliveries as webhooks

    resolve_as(monkeypatch, {"moved.test": ["10.0.0.5"]})
    outcome = webhooks._post("http://moved.test/hook", "callback_url", "t", "msg_1",
                             datetime.now(UTC), b"{}")
    assert outcome.status is None
    assert "10.0.0.5, a non-public address" in outcome.error
    assert isinstance(webhooks._session().get_adapter("https://x.example/"), PinnedAdapter)


def test_vendor_requests_and_the_proxy_connect_only_to_checked_addresses(
    monkeypatch, loopback
):
    """An account's base_url passed the rules when connected; if its name (or a download
    link's) resolves inwards later, the vendor request fails `address_refused` and the proxy
    answers `base_url_not_allowed`, with nothing sent."""
    from app.kernel import settings
    from app.services import proxy
    from app.work import steps  # installs the vendor connection check
    from connectors import http
    from connectors.errors import VendorError
    from connectors.hubspot import VENDOR

    assert steps._vendor_addresses("127.0.0.1", 1) == ["127.0.0.1"]  # loopback allow-listed
    monkeypatch.setattr(settings.get_settings(), "outbound_allow_networks", [])
    monkeypatch.setattr(http, "_session", None)  # fresh pools: no kept-alive connection
    monkeypatch.setattr(proxy, "_session", None)
    resolve_as(monkeypatch, {"crm.vendor.test": ["127.0.0.1"]})
    port = urlsplit(loopback.url).port
    vendor = http.VendorHttp(VENDOR, f"http://crm.vendor.test:{port}", lambda f: "t")
    with pytest.raises(VendorError) as err:
        vendor.request("POST", "/crm/v3/objects/contacts/search", json={})
    assert err.value.code == "address_refused" and "127.0.0.1" in err.value.message
    with pytest.raises(InvalidInput) as exc:
        proxy.session().post(f"http://crm.vendor.test:{port}/x", timeout=5)
    assert exc.value.code == "base_url_not_allowed"
    assert hosts(loopback) == []


def test_a_name_that_does_not_resolve_at_connect_time_is_a_network_error(monkeypatch):
    """Not a refusal: DNS may be down for a moment, so the vendor request is a Transient
    (retried with backoff), not a failed job."""
    from app.work import steps  # noqa: F401 - installs the vendor connection check
    from connectors import http
    from connectors.errors import Transient
    from connectors.hubspot import VENDOR

    monkeypatch.setattr(http, "_session", None)

    def down(host, port, *args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", down)
    vendor = http.VendorHttp(VENDOR, "http://crm.vendor.test:9", lambda f: "t")
    with pytest.raises(Transient):
        vendor.request("GET", "/crm/v3/objects/contacts")
