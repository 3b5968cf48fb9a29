"""`credentials.token_url` receives the client secret: it gets the SSRF rules when registered
and at every refresh's connection, may name only the vendor's or the account's own host (or
an operator-allowed one), and a non-vendor host's words never reach the tenant.

Over the real API (uvicorn, the sandbox, workers) where the default settings serve; in this
process, against the same Redis, where a setting must change (settings are read per process).
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from support import wait_until

from app.kernel.errors import InvalidInput
from app.kernel.settings import get_settings

LEAK = "INTERNAL-SERVICE-SAYS-aws-role-arn-1234"  # what an internal service would answer


class TokenEndpoint:
    """A loopback server that records every request and refuses every POST the way an
    internal service would: a 400 with its own words in `error_description`. GETs (API
    calls) answer 401, so only a refresh can help."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, doc: dict[str, Any]) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append({"method": self.command, "path": self.path, "body": body})
                out = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def do_POST(self) -> None:  # noqa: N802
                self._answer(400, {"error": "invalid_grant", "error_description": LEAK})

            def do_GET(self) -> None:  # noqa: N802
                self._answer(401, {"message": LEAK})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]


@pytest.fixture
def endpoint() -> Iterator[TokenEndpoint]:
    server = TokenEndpoint()
    yield server
    server.server.shutdown()


def resolve_as(monkeypatch: Any, table: dict[str, list[str]]) -> None:
    """socket.getaddrinfo answering the names in `table` with its answers in turn (the last
    repeats), anything else (IP literals) as the real resolver does."""
    real, calls = socket.getaddrinfo, {}

    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host not in table:
            return real(host, port, *args, **kwargs)
        n = calls[host] = calls.get(host, 0) + 1
        addr = table[host][min(n, len(table[host])) - 1]
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (addr, port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


def oauth(token_url: str | None = None, **over: Any) -> dict[str, Any]:
    creds = {"type": "oauth2", "access_token": "at", "refresh_token": "rt", "expires_in": 1,
             "client_id": "cid", "client_secret": "csecret-never-elsewhere"}
    return {**creds, **({"token_url": token_url} if token_url else {}), **over}


def create(tenant: dict[str, str], **body: Any) -> dict[str, Any]:
    """POST /v1/accounts in this process (its settings), as the route does."""
    from app.store.accounts import AccountCreate, create_account

    req = AccountCreate.model_validate({"vendor": "hubspot", "name": "x", **body})
    return create_account(tenant["tenant_id"], req)


# ---- at registration ----

def test_a_token_url_on_loopback_is_refused_at_creation_when_loopback_is_not_allow_listed(
    monkeypatch, tenant, receiver
):
    """The audit's case: TOOLQUEUE_OUTBOUND_ALLOW_NETWORKS='[]' and a token_url on an internal
    service. Even with its host allowed for token endpoints, its address is refused, and the
    service never hears from us."""
    monkeypatch.setattr(get_settings(), "outbound_allow_networks", [])
    monkeypatch.setattr(get_settings(), "token_hosts_allow", ["127.0.0.1"])
    url = receiver.url.replace("/hook", "/latest/meta-data/iam")
    with pytest.raises(InvalidInput) as exc:
        create(tenant, credentials=oauth(url))
    assert exc.value.status == 422 and exc.value.code == "token_url_not_allowed"
    assert "127.0.0.1, a non-public address" in exc.value.message
    monkeypatch.setattr(get_settings(), "token_hosts_allow", [])
    with pytest.raises(InvalidInput) as exc:  # and by default its host is no token host
        create(tenant, credentials=oauth(url))
    assert exc.value.code == "token_url_not_allowed"
    assert "TOOLQUEUE_TOKEN_HOSTS_ALLOW" in exc.value.message
    assert receiver.requests == []


def test_a_token_url_on_a_foreign_host_is_refused_unless_allow_listed(
    api, fresh_sandbox, receiver, monkeypatch, tenant
):
    """The account's base_url is the sandbox on 127.0.0.1; a token_url naming another host
    (here `localhost`, a loopback receiver) is refused over the API with a message that says
    what to do, and accepted once the operator allows the host."""
    base = f"{fresh_sandbox.url}/hubspot"
    foreign = receiver.url.replace("127.0.0.1", "localhost")
    port = urlsplit(fresh_sandbox.url).port
    for url in (foreign, f"http://localhost:{port}/hubspot/oauth/v1/token",
                "http://93.184.216.34/oauth/v1/token"):
        resp = api.post("/v1/accounts", {"vendor": "hubspot", "name": "x", "base_url": base,
                                         "credentials": oauth(url)})
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert body["error"] == "token_url_not_allowed"
        assert "TOOLQUEUE_TOKEN_HOSTS_ALLOW" in body["message"]
        assert "omit token_url" in body["message"]
    # the sandbox's own origin, as the suite's accounts use it, is fine
    assert api.account(fresh_sandbox, token_url=f"{base}/oauth/v1/token")
    with pytest.raises(InvalidInput):  # in this process too, until allowed
        create(tenant, base_url=base, credentials=oauth(foreign))
    monkeypatch.setattr(get_settings(), "token_hosts_allow", ["localhost"])
    assert create(tenant, base_url=base, credentials=oauth(foreign))["account_id"]
    assert receiver.requests == []


def test_re_authorization_checks_the_token_url_too(api, fresh_sandbox, receiver):
    account = api.account(fresh_sandbox)
    foreign = receiver.url.replace("127.0.0.1", "localhost")
    resp = api.post(f"/v1/accounts/{account}/credentials", oauth(foreign))
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == "token_url_not_allowed"
    resp = api.post(f"/v1/accounts/{account}/credentials",
                    oauth("http://127.0.0.1:1\\@93.184.216.34/token"))
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_token_url", resp.text
    assert api.get(f"/v1/accounts/{account}").json()["status"] == "active"
    assert receiver.requests == []


@pytest.mark.parametrize(("field", "url"), [
    ("base_url", "http://127.0.0.1:29230\\@93.184.216.34"),
    ("base_url", "http://93.184.216.34#@127.0.0.1:29230"),
    ("events_url", "http://user@127.0.0.1:9/events"),
    ("events_url", "http://127.0.0.1:9/events#x"),
    ("base_url", "http://[2002:7f00:1::]"),
])
def test_ambiguous_account_urls_are_refused_not_stored(api, field, url):
    body = {"vendor": "hubspot", "name": "x", "credentials": {"type": "bearer", "token": "t"},
            field: url}
    resp = api.post("/v1/accounts", body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] in (f"invalid_{field}", f"{field}_not_allowed")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:29230\\@93.184.216.34/",
    "http://93.184.216.34#@127.0.0.1:29230/",
    "http://user@127.0.0.1:9/hook",
])
def test_ambiguous_callback_urls_are_refused(api, fresh_sandbox, url):
    account = api.account(fresh_sandbox)
    resp = api.post("/v1/jobs", {"tool": "hubspot.contacts.list", "account_id": account,
                                 "callback_url": url})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == "invalid_callback_url"


# ---- at refresh ----

def test_a_refused_refresh_on_a_non_vendor_host_shows_no_text_from_it(api, endpoint):
    """The account's base_url and token_url are one loopback server (allowed by the suite's
    default allow-list, and not a HubSpot host). Its refusal's words reach neither the
    proxy's 409, nor the account view, nor a parked job."""
    proxied, jobbed = (
        api.post("/v1/accounts", {"vendor": "hubspot", "name": n, "base_url": endpoint.url,
                                  "credentials": oauth(f"{endpoint.url}/oauth/token")})
        for n in ("proxied", "jobbed")
    )
    assert proxied.status_code == 201 and jobbed.status_code == 201, proxied.text
    proxied, jobbed = proxied.json()["account_id"], jobbed.json()["account_id"]

    resp = api.get(f"/v1/proxy/{proxied}/crm/v3/objects/contacts")
    assert resp.status_code == 409 and resp.json()["error"] == "needs_reauth", resp.text
    assert LEAK not in resp.text
    assert "(HTTP 400, invalid_grant)" in resp.json()["message"]
    view = api.get(f"/v1/accounts/{proxied}")
    assert view.json()["status"] == "needs_reauth" and LEAK not in view.text
    assert "rejected" in view.json()["needs_reauth_reason"]

    job = api.call(account_id=jobbed, args={"limit": 10})
    done = api.wait(job["job_id"], states=("needs_reauth", "failed", "succeeded"))
    assert done["status"] == "needs_reauth", done
    for text in (api.get(f"/v1/jobs/{job['job_id']}").text,
                 api.get(f"/v1/accounts/{jobbed}").text):
        assert LEAK not in text and "HTTP 400" in text
    assert len(endpoint.posts()) == 2  # each account refreshed once, at its token_url


def test_a_vendor_hosts_refusal_keeps_its_words(sandbox):
    """The same grant against a token endpoint the vendor documents passes its description
    on (HubSpot's words help a tenant); from any other host only the status."""
    from connectors import oauth as grant
    from connectors.errors import AuthRejected

    url = f"{sandbox.url}/hubspot/oauth/v1/token"
    with pytest.raises(AuthRejected) as vendor:
        grant.refresh(url, "dead", "cid", "csecret", vendor_text=True)
    assert "missing or invalid refresh token" in vendor.value.message
    with pytest.raises(AuthRejected) as other:
        grant.refresh(url, "dead", "cid", "csecret")
    assert other.value.message == (
        "refresh token rejected by the token endpoint (HTTP 400, BAD_REFRESH_TOKEN); "
        "re-authorize the account with new credentials")


def test_the_refresh_connects_only_to_a_checked_address(monkeypatch, r, receiver):
    """DNS rebinding: the token host answers public when the token_url is checked and loopback
    (not allow-listed) when the refresh connects. The POST, client secret and all, never
    leaves: the refresh is refused before connecting and the account needs new credentials."""
    from pydantic import SecretStr

    from app.kernel.ssrf import check_public_url
    from app.store import tokens
    from app.store.accounts import OAuth2Credentials
    from connectors import oauth as grant
    from connectors.errors import AuthRejected, Transient
    from connectors.pinning import PinnedAdapter

    monkeypatch.setattr(get_settings(), "outbound_allow_networks", [])
    monkeypatch.setattr(grant, "_session", None, raising=False)  # fresh pools
    resolve_as(monkeypatch, {"idp.rebind.test": ["93.184.216.34", "127.0.0.1"]})
    url = f"http://idp.rebind.test:{urlsplit(receiver.url).port}/token"
    check_public_url(url, field="token_url")  # the first answer is public
    creds = OAuth2Credentials(type="oauth2", access_token=SecretStr("at"),
                              refresh_token=SecretStr("rt"), client_id="cid",
                              client_secret=SecretStr("csecret"), token_url=url, expires_in=1)
    account = "acc_rebind_" + secrets.token_hex(4)
    tokens.store_initial(account, creds, "https://api.hubapi.com", "/oauth/v1/token")
    with pytest.raises((AuthRejected, Transient)) as exc:
        tokens.get_access_token(account, force=True)
    assert receiver.requests == []  # nothing reached the loopback service
    assert exc.type is AuthRejected and "the token endpoint was not called" in exc.value.message
    assert "127.0.0.1, a non-public address" in exc.value.message
    assert isinstance(grant.session().get_adapter(url), PinnedAdapter)
    assert tokens.status(account)["status"] == "needs_reauth"
    assert receiver.requests == []


# ---- credentials must be sendable ----

UNSENDABLE = ["\udfff", "t\u00f6ken", "tok en", "tok\ten", "tok\nen", "tok\x00en", "tok\x7fen",
              "\u00a0tok", ""]


@pytest.mark.parametrize("value", UNSENDABLE)
@pytest.mark.parametrize("field", ["token", "access_token", "refresh_token", "client_id",
                                   "client_secret"])
def test_unsendable_credentials_are_refused_at_the_boundary(api, field, value):
    if field == "token":
        creds: dict[str, Any] = {"type": "bearer", "token": value}
    else:
        creds = {**oauth(), field: value}
    resp = api.post("/v1/accounts", {"vendor": "hubspot", "name": "x", "credentials": creds})
    assert resp.status_code == 422, resp.text
    body = resp.json()  # a lone surrogate is refused for any string (`invalid_string`)
    assert body["error"] in ("invalid_request", "invalid_string") and field in body["message"]
    assert any(w in body["message"] for w in ("visible ASCII", "empty", "surrogate"))


def test_unsendable_credentials_are_refused_on_re_authorization(api, fresh_sandbox):
    account = api.account(fresh_sandbox)
    for token in ("\udfff", "t\u00f6ken", "tok en"):
        resp = api.post(f"/v1/accounts/{account}/credentials", {"type": "bearer", "token": token})
        assert resp.status_code == 422 and "token" in resp.json()["message"], resp.text
    assert api.get(f"/v1/accounts/{account}").json()["status"] == "active"


@pytest.mark.parametrize("token", [
    "00D5g000004ABCD!AQ4AQH0dMHZfz972Szo6dDWdoNN0a3sJ.Pp_Uv2rj9FWDQ6U.AnZkLb",  # Salesforce
    "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",  # Slack
    "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",  # Shopify
    "gho_16C7e42F292c6912E7710c838347Ae178B4a",  # GitHub
    "CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQAf3xBKmlwHjX7OIpuIFEavB2-qYAGQsF4",  # HubSpot
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl+/=~",  # JWT-like, base64 padding
])
def test_real_vendor_token_shapes_pass(api, token):
    resp = api.post("/v1/accounts", {"vendor": "hubspot", "name": "x",
                                     "credentials": {"type": "bearer", "token": token}})
    assert resp.status_code == 201, resp.text


def test_an_allowed_token_url_still_refreshes(api, fresh_sandbox):
    """The suite's own form (token_url on the base_url's origin) keeps working end to end."""
    account = api.account(fresh_sandbox, expires_in=1,
                          token_url=f"{fresh_sandbox.url}/hubspot/oauth/v1/token")
    resp = api.get(f"/v1/proxy/{account}/crm/v3/objects/contacts", params={"limit": 1})
    assert resp.status_code == 200, resp.text
    wait_until(lambda: api.get(f"/v1/accounts/{account}").json()["refresh_count"] == 1, 10)
