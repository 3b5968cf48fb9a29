"""The SSRF guard classifies resolved addresses; no traffic is sent anywhere."""

from __future__ import annotations

import pytest

from app.errors import InvalidInput
from app.ssrf import check_public_url


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
    from app import settings

    monkeypatch.setattr(settings.get_settings(), "outbound_allow_networks", [])
    with pytest.raises(InvalidInput):
        check_public_url("http://127.0.0.1:9/hook")
