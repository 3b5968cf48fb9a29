"""Address and URL forms that once got past the SSRF rules, and where a client secret may go.

Only IP literals and names from a table are looked up: no traffic leaves the box.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.kernel import ssrf
from app.kernel.errors import InvalidInput
from app.kernel.settings import Settings, get_settings
from app.kernel.ssrf import check_public_url
from connectors import oauth
from connectors.github import VENDOR as GITHUB
from connectors.hubspot import VENDOR as HUBSPOT
from connectors.salesforce import VENDOR as SALESFORCE
from connectors.shopify import VENDOR as SHOPIFY

FIELDS = ["callback_url", "events_url", "base_url", "token_url", "download_url"]

# IPv6 forms that carry a loopback or private IPv4 address to a translator or tunnel
EMBEDDING = [
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2002:a00:1::]/",  # 6to4 of 10.0.0.1
    "http://[64:ff9b::7f00:1]/",  # NAT64 (well-known prefix) of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[64:ff9b:1::7f00:1]/",  # local-use NAT64: the mapped address is unknown
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::a00:1]/",  # IPv4-compatible 10.0.0.1
]


@pytest.mark.parametrize("url", EMBEDDING)
def test_ipv6_forms_embedding_a_private_ipv4_address_are_refused(url):
    """Refused with the default allow-list too: allow-listing 127.0.0.0/8 admits 127.0.0.1,
    not a 6to4 or NAT64 address a translator would turn into it."""
    assert "127.0.0.0/8" in get_settings().outbound_allow_networks
    with pytest.raises(InvalidInput) as exc:
        check_public_url(url, field="base_url")
    assert exc.value.code == "base_url_not_allowed"


def test_an_embedding_form_passes_when_its_ipv6_network_is_allow_listed(monkeypatch):
    """The operator's explicit choice (say, their own NAT64 for an internal range)."""
    monkeypatch.setattr(get_settings(), "outbound_allow_networks", ["64:ff9b::/96"])
    assert check_public_url("http://[64:ff9b::a00:1]/") is None


def test_6to4_of_a_public_address_is_still_public():
    assert check_public_url("http://[2002:808:808::]/") is None


def test_ipv4_mapped_loopback_is_loopback(monkeypatch):
    """::ffff:127.0.0.1 is the same socket address as 127.0.0.1: allowed exactly when it is."""
    assert check_public_url("http://[::ffff:127.0.0.1]:9/") is None
    monkeypatch.setattr(get_settings(), "outbound_allow_networks", [])
    with pytest.raises(InvalidInput):
        check_public_url("http://[::ffff:127.0.0.1]:9/")


# URLs that parsers read differently (the check and the client could pick different hosts),
# or that carry what is never sent
AMBIGUOUS = [
    "http://127.0.0.1:29230\\@93.184.216.34/",
    "http://93.184.216.34#@127.0.0.1:29230/",
    "http://93.184.216.34/#x",
    "http://user@93.184.216.34/",
    "http://user:pw@93.184.216.34/",
    "http://93.184.216.34\\x",
    "http://93.184.216.34/a b",
    " http://93.184.216.34/",
    "http://93.184.216.34/\t",
    "http://93.184.216.34/\n",
    "http://93.184.216.34/\x00",
    "http://93.184.216.34/\x7f",
    "http://93.184.216.34/caf\u00e9",
    "http://b\u00fccher.example/",
    "http://93.184.216.34/\udfff",
    "http://[fe80::1%25eth0]/",
    "http://93.184.216.34%2f@127.0.0.1/",
]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("url", AMBIGUOUS)
def test_ambiguous_or_unsendable_urls_are_refused_for_every_field(url, field):
    with pytest.raises(InvalidInput) as exc:
        check_public_url(url, field=field)
    assert exc.value.code == f"invalid_{field}"
    assert exc.value.message.startswith(field)


@pytest.mark.parametrize("url", [
    "https://93.184.216.34/a@b?x=%20y&sig=AbC%2F",  # @ in a path and escapes are fine
    "http://127.0.0.1:9/hook",
    "http://[::1]:9/hook",
])
def test_plain_urls_still_pass(url):
    assert check_public_url(url) is None


# ---- where a client secret may go ----

BASE = "http://127.0.0.1:8100/hubspot"


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8100/hubspot/oauth/v1/token",  # the base_url's host
    "http://127.0.0.1:8101/token",  # any port: the base_url reaches that host anyway
    "https://127.0.0.1:8100/token",
])
def test_a_token_url_on_the_accounts_base_url_host_passes(url):
    assert ssrf.check_token_url(url, base_url=BASE, vendor_token_url="/oauth/v1/token") is None


def test_a_token_url_on_the_vendors_documented_token_host_passes(monkeypatch):
    checked = []
    monkeypatch.setattr("app.kernel.ssrf.public_addresses", lambda h, p, field: checked.append(h))
    ssrf.check_token_url("https://github.com/login/oauth/access_token", base_url=BASE,
                    vendor_token_url=GITHUB.token_url)
    assert checked == ["github.com"]  # and the address rules still apply


@pytest.mark.parametrize("url", [
    "http://localhost:8100/hubspot/oauth/v1/token",  # another name for the same address
    "http://[::1]:8100/hubspot/oauth/v1/token",
    "http://93.184.216.34/latest/meta-data/iam",
    "https://github.com/login/oauth/access_token",  # another vendor's token host
])
def test_a_token_url_on_a_foreign_host_is_refused(url):
    with pytest.raises(InvalidInput) as exc:
        ssrf.check_token_url(url, base_url=BASE, vendor_token_url=HUBSPOT.token_url)
    assert exc.value.code == "token_url_not_allowed"
    assert "TOOLQUEUE_TOKEN_HOSTS_ALLOW" in exc.value.message


@pytest.mark.parametrize(("base", "url"), [
    ("https://acme.my.salesforce.com", "http://acme.my.salesforce.com/services/oauth2/token"),
    ("https://api.atlassian.com/ex/jira/1", "http://auth.atlassian.com/oauth/token"),
])
def test_a_token_url_does_not_drop_tls_its_host_uses(base, url):
    with pytest.raises(InvalidInput) as exc:
        ssrf.check_token_url(url, base_url=base,
                             vendor_token_url="https://auth.atlassian.com/oauth/token")
    assert exc.value.code == "token_url_not_allowed" and "https" in exc.value.message


@pytest.mark.parametrize(("allow", "url"), [
    (["localhost"], "http://localhost:8100/token"),
    (["*.idp.example"], "https://login.idp.example/token"),
    (["127.0.0.1"], "http://127.0.0.1:9999/token"),
])
def test_an_operator_allow_listed_token_host_passes(monkeypatch, allow, url):
    monkeypatch.setattr(get_settings(), "token_hosts_allow", allow)
    monkeypatch.setattr("app.kernel.ssrf.public_addresses", lambda h, p, field: [])
    assert ssrf.check_token_url(url, base_url=BASE, vendor_token_url="/oauth/v1/token") is None


def test_a_wildcard_entry_does_not_cover_a_look_alike(monkeypatch):
    monkeypatch.setattr(get_settings(), "token_hosts_allow", ["*.idp.example"])
    with pytest.raises(InvalidInput):
        ssrf.check_token_url("https://evilidp.example/token", base_url=BASE, vendor_token_url="")


def test_token_hosts_allow_takes_host_names_only():
    assert Settings(token_hosts_allow=["Auth.Example.com", "[::1]"]).token_hosts_allow == [
        "auth.example.com", "::1"]
    for bad in ["https://auth.example.com", "auth.example.com/x", "auth.example.com:443"]:
        with pytest.raises(ValidationError):
            Settings(token_hosts_allow=[bad])


# ---- whose words a refusal may carry ----

@pytest.mark.parametrize(("vendor", "url", "documented"), [
    (GITHUB, "https://github.com/login/oauth/access_token", True),
    (HUBSPOT, "https://api.hubapi.com/oauth/v1/token", True),
    (SHOPIFY, "https://acme.myshopify.com/admin/oauth/access_token", True),
    (SALESFORCE, "https://acme--dev.my.salesforce.com/services/oauth2/token", True),
    (SHOPIFY, "https://evil.example/.myshopify.com/admin/oauth/access_token", False),
    (SHOPIFY, "https://a.b.myshopify.com/admin/oauth/access_token", False),
    (SHOPIFY, "http://acme.myshopify.com/admin/oauth/access_token", False),
    (GITHUB, "https://github.com:8443/login/oauth/access_token", False),
    (HUBSPOT, "http://127.0.0.1:8100/hubspot/oauth/v1/token", False),
    (HUBSPOT, "https://github.com/login/oauth/access_token", False),
])
def test_vendor_hosts_are_the_documented_ones(vendor, url, documented):
    assert oauth.on_vendor_host(url, vendor.base_url, vendor.token_url) is documented
