"""Signing in to /mcp with OAuth, against the real API: the official SDK client's auth flow
(discovery from the 401, dynamic registration, PKCE, the authorize step, the token exchange),
then tools over the same client; and the authorization server's refusals, over plain HTTP.

The browser step is driven over HTTP here (GET the authorize URL, submit the sign-in form, take
the code from the redirect); tests/browser/test_browser_mcp_signin.py does it in Chromium.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import requests
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.shared.auth import AuthorizationCodeResult
from mcpoauthkit import Memory, body, provider, signed_in
from support import HOME

REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the test takes the code itself


class Person:
    """The browser step: opens the authorize URL, pastes `api_key` into the sign-in page,
    presses Approve, and reads the code off the redirect to the client."""

    def __init__(self, api_url: str, api_key: str) -> None:
        self.api_url = api_url
        self.api_key = api_key
        self.url = ""
        self.pages: list[str] = []
        self.locations: list[str] = []

    async def redirect(self, url: str) -> None:
        self.url = url

    async def callback(self) -> AuthorizationCodeResult:
        query = await anyio.to_thread.run_sync(self.sign_in, self.url)
        return AuthorizationCodeResult(code=query["code"][0], state=query.get("state", [None])[0])

    def sign_in(self, url: str, action: str = "approve") -> dict[str, list[str]]:
        with requests.Session() as s:
            page = s.get(url, timeout=10)
            assert page.status_code == 200, page.text
            self.pages.append(page.text)
            form = signin_form(self.api_url, page.text)
            answer = s.post(
                form["action"],
                data={"request": form["request"], "api_key": self.api_key, "action": action},
                allow_redirects=False,
                timeout=10,
            )
        assert answer.status_code == 302, answer.text
        self.locations.append(answer.headers["location"])
        assert answer.headers["location"].startswith(REDIRECT + "?")
        return parse_qs(urlsplit(answer.headers["location"]).query)


def signin_form(api_url: str, page: str) -> dict[str, str]:
    """The sign-in form's stable parts: its action, the hidden request id, the input and
    button ids a browser test clicks."""
    assert 'id="api_key"' in page and 'id="approve"' in page and 'id="deny"' in page
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    rid = re.search(r'name="request" value="([^"]+)"', page)
    assert action and rid, page
    return {"action": api_url + action.group(1), "request": rid.group(1)}


def sdk_auth(api_url: str, person: Person, storage: Memory) -> OAuthClientProvider:
    return provider(api_url, REDIRECT, storage, person.redirect, person.callback)


def oauth_client(
    api_url: str, person: Person, storage: Memory, auth: OAuthClientProvider | None = None
) -> AbstractAsyncContextManager[Client]:
    return signed_in(api_url, auth or sdk_auth(api_url, person, storage))


def test_sign_in_with_the_sdk_client_then_list_and_call_tools(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    account = api.account(fresh_sandbox)
    person, storage = Person(api_url, api.tenant["api_key"]), Memory()
    started: list[str] = []

    async def main() -> None:
        async with oauth_client(api_url, person, storage) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            assert {"hubspot_contacts_list", "job_status", "job_approve"} <= tools
            call = {"account_id": account, "fields": ["id"], "max_pages": 1}
            handle = body(await client.call_tool("hubspot_contacts_list", call))
            started.append(handle["job_id"])
            out = body(await client.call_tool("job_wait", {"job_id": handle["job_id"]}))
            assert out["status"] == "succeeded" and out["record_count"] == 100
            status = body(await client.call_tool("job_status", {"job_id": handle["job_id"]}))
            assert status["status"] == "succeeded"

    anyio.run(main)
    assert storage.client is not None and storage.tokens is not None  # registered, signed in
    tokens = storage.tokens
    assert tokens.access_token.startswith("tqa_") and tokens.refresh_token
    assert set((tokens.scope or "").split()) == {"read", "write", "approve"}
    assert tokens.expires_in == 3600
    query = parse_qs(urlsplit(person.locations[0]).query)
    assert set(query) == {"code", "state"}  # the code, nothing else, on the way back
    page = person.pages[0]
    assert "test agent &lt;b&gt;" in page and "<b>" not in page.split("<main>")[1]
    # the job runs as the key that signed in: the tenant's API sees it
    assert api.get(f"/v1/jobs/{started[0]}").json()["status"] == "succeeded"
    secrets_seen = (api.tenant["api_key"], tokens.access_token, tokens.refresh_token,
                    query["code"][0], storage.client.client_secret or "-")  # fmt: skip
    log = (HOME / "logs" / "api.log").read_text(errors="replace")
    for secret in secrets_seen:
        assert secret not in log
        assert secret not in page


def test_the_sdk_client_refreshes_an_expired_token_without_a_second_sign_in(
    api: Any, api_url: str
) -> None:
    person, storage = Person(api_url, api.tenant["api_key"]), Memory()
    auth = sdk_auth(api_url, person, storage)

    async def main() -> None:
        async with oauth_client(api_url, person, storage, auth) as client:
            assert "job_status" in {t.name for t in (await client.list_tools()).tools}
        first = storage.tokens
        assert first is not None and first.refresh_token
        auth.context.update_token_expiry(first.model_copy(update={"expires_in": -1}))
        async with oauth_client(api_url, person, storage, auth) as client:
            assert "job_status" in {t.name for t in (await client.list_tools()).tools}
        second = storage.tokens
        assert second is not None and second.access_token != first.access_token
        assert second.refresh_token != first.refresh_token
        assert mcp_post(api_url, first.access_token).status_code == 401  # rotated away
        assert mcp_post(api_url, second.access_token).status_code == 200

    anyio.run(main)
    assert len(person.locations) == 1  # one browser step; the second session refreshed


def test_discovery_starts_from_the_401(api_url: str) -> None:
    resp = requests.post(f"{api_url}/mcp", json={}, timeout=5)
    assert resp.status_code == 401
    prm_url = f"{api_url}/.well-known/oauth-protected-resource/mcp"
    assert resp.headers["www-authenticate"] == f'Bearer resource_metadata="{prm_url}"'
    prm = requests.get(prm_url, timeout=5).json()
    assert prm["resource"] == f"{api_url}/mcp"
    assert prm["scopes_supported"] == ["read", "write", "approve"]
    issuer = prm["authorization_servers"][0].rstrip("/")
    assert issuer == api_url
    asm = requests.get(f"{api_url}/.well-known/oauth-authorization-server", timeout=5).json()
    assert asm["code_challenge_methods_supported"] == ["S256"]
    assert asm["registration_endpoint"] == f"{api_url}/register"
    assert asm["authorization_endpoint"] == f"{api_url}/authorize"
    assert asm["token_endpoint"] == f"{api_url}/token"
    schema = requests.get(f"{api_url}/openapi.json", timeout=5).json()
    assert not {"/token", "/authorize", "/register", "/oauth/signin"} & set(schema["paths"])


class Flow:
    """The authorization server driven by hand: register, authorize with PKCE, sign in."""

    def __init__(self, api_url: str, api_key: str, scope: str = "read write approve") -> None:
        self.url = api_url
        self.api_key = api_key
        client = {
            "redirect_uris": [REDIRECT],
            "client_name": "hand",
            "token_endpoint_auth_method": "none",  # a public client: PKCE is its proof
            "scope": scope,
            "grant_types": ["authorization_code", "refresh_token"],
        }
        reg = requests.post(f"{api_url}/register", json=client, timeout=5)
        assert reg.status_code == 201, reg.text
        self.client_id = reg.json()["client_id"]
        self.verifier = secrets.token_urlsafe(48)
        self.scope = scope

    def challenge(self) -> str:
        sha = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(sha).decode().rstrip("=")

    def authorize(self, **extra: str) -> requests.Response:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT,
            "code_challenge": self.challenge(),
            "code_challenge_method": "S256",
            "state": "s1",
            "scope": self.scope,
            "resource": f"{self.url}/mcp",
            **extra,
        }
        url = f"{self.url}/authorize"
        return requests.get(url, params=params, allow_redirects=False, timeout=5)

    def signin_page(self) -> str:
        first = self.authorize()
        assert first.status_code == 302, first.text
        assert first.headers["location"].startswith(f"{self.url}/oauth/signin?request=")
        page = requests.get(first.headers["location"], timeout=5)
        assert page.status_code == 200
        return page.text

    def submit(self, page: str, api_key: str, action: str = "approve") -> requests.Response:
        form = signin_form(self.url, page)
        data = {"request": form["request"], "api_key": api_key, "action": action}
        return requests.post(form["action"], data=data, allow_redirects=False, timeout=5)

    def code(self) -> str:
        answer = self.submit(self.signin_page(), self.api_key)
        assert answer.status_code == 302, answer.text
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        assert query["state"] == ["s1"]
        return query["code"][0]

    def token(self, code: str, verifier: str | None = None, **extra: str) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code, "client_id": self.client_id,
                "redirect_uri": REDIRECT, "code_verifier": verifier or self.verifier,
                "resource": f"{self.url}/mcp", **extra}  # fmt: skip
        return requests.post(f"{self.url}/token", data=data, timeout=5)

    def refresh(self, refresh_token: str) -> requests.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": self.client_id}  # fmt: skip
        return requests.post(f"{self.url}/token", data=data, timeout=5)


def mcp_post(api_url: str, token: str, method: str = "tools/list") -> requests.Response:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-11-25"}  # fmt: skip
    rpc = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {}}
    return requests.post(f"{api_url}/mcp", json=rpc, headers=headers, timeout=10)


def rpc_result(resp: requests.Response) -> dict[str, Any]:
    """The JSON-RPC result of a /mcp answer, sent as JSON or as one SSE event."""
    text = resp.text
    if resp.headers["content-type"].startswith("text/event-stream"):
        text = next(line[5:] for line in text.splitlines() if line.startswith("data:"))
    out: dict[str, Any] = json.loads(text)["result"]
    return out


def test_codes_are_single_use_and_bound_to_the_pkce_verifier_and_redirect(
    api: Any, api_url: str
) -> None:
    flow = Flow(api_url, api.tenant["api_key"])
    code = flow.code()
    wrong = flow.token(code, verifier=secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    moved = flow.token(code, redirect_uri="http://127.0.0.1:9/elsewhere")
    assert moved.status_code == 400 and moved.json()["error"] == "invalid_request"
    good = flow.token(code)
    assert good.status_code == 200, good.text
    assert good.headers["cache-control"] == "no-store"
    assert mcp_post(api_url, good.json()["access_token"]).status_code == 200
    again = flow.token(code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # a replayed code may be a stolen one: what its first exchange gave ends too
    assert mcp_post(api_url, good.json()["access_token"]).status_code == 401
    assert flow.refresh(good.json()["refresh_token"]).json()["error"] == "invalid_grant"

    unregistered = flow.authorize(redirect_uri="http://127.0.0.1:9/elsewhere")
    assert unregistered.status_code == 400 and "location" not in unregistered.headers
    plain = flow.authorize(code_challenge_method="plain")
    assert plain.status_code == 302 and "error=invalid_request" in plain.headers["location"]
    other_resource = flow.authorize(resource="https://elsewhere.example/mcp")
    assert "error=invalid_target" in other_resource.headers["location"]


def test_the_sign_in_page_refuses_unknown_keys_without_echoing_them(api: Any, api_url: str) -> None:
    flow = Flow(api_url, api.tenant["api_key"])
    page = flow.signin_page()
    assert api.tenant["api_key"] not in page and 'type="password"' in page
    unknown = requests.get(f"{api_url}/oauth/signin", params={"request": "nope"}, timeout=5)
    assert unknown.status_code == 400 and unknown.headers["cache-control"] == "no-store"
    assert unknown.headers["x-frame-options"] == "DENY"
    bogus = "tq_" + secrets.token_urlsafe(32)
    refused = flow.submit(page, bogus)
    assert refused.status_code == 401 and bogus not in refused.text
    assert 'id="api_key"' in refused.text  # the form again, to try once more
    denied = flow.submit(page, "", action="deny")
    assert denied.status_code == 302
    assert parse_qs(urlsplit(denied.headers["location"]).query) == {
        "error": ["access_denied"], "state": ["s1"]}  # fmt: skip
    spent = flow.submit(page, api.tenant["api_key"])  # the request was answered (denied)
    assert spent.status_code == 400 and "expired" in spent.text


def test_bad_expired_and_revoked_tokens_get_a_401_naming_the_metadata(
    api: Any, api_url: str, redis_server: Any
) -> None:
    from app.kernel import keys
    from app.kernel.crypto import digest
    from app.kernel.redis import get_redis
    from app.store import apikeys

    prm = f'resource_metadata="{api_url}/.well-known/oauth-protected-resource/mcp"'
    for token in ("tqa_" + secrets.token_urlsafe(32), "tq_nope"):
        resp = mcp_post(api_url, token)
        assert resp.status_code == 401
        assert resp.headers["www-authenticate"] == f'Bearer error="invalid_token", {prm}'

    flow = Flow(api_url, api.tenant["api_key"])
    expiring = flow.token(flow.code()).json()["access_token"]
    assert mcp_post(api_url, expiring).status_code == 200
    get_redis().pexpire(keys.oauth_access(digest(expiring)), 1)  # its TTL runs out
    anyio.run(anyio.sleep, 0.05)
    assert mcp_post(api_url, expiring).status_code == 401

    key = apikeys.create(api.tenant["tenant_id"], name="for oauth", scopes=["read"])
    flow = Flow(api_url, str(key["api_key"]))
    tokens = flow.token(flow.code()).json()
    assert tokens["scope"] == "read"  # what was asked for that the key holds
    listed = mcp_post(api_url, tokens["access_token"])
    assert listed.status_code == 200
    names = {t["name"] for t in rpc_result(listed)["tools"]}
    assert "job_status" in names and "hubspot_contacts_archive" not in names  # no write tools
    admin = apikeys.full(api.tenant["tenant_id"])
    apikeys.revoke(api.tenant["tenant_id"], str(key["key_id"]), admin)
    revoked = mcp_post(api_url, tokens["access_token"])
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["www-authenticate"]
    again = flow.refresh(tokens["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_refresh_rotates_both_tokens(api: Any, api_url: str) -> None:
    flow = Flow(api_url, api.tenant["api_key"])
    first = flow.token(flow.code()).json()
    second = flow.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    new = second.json()
    assert new["access_token"] != first["access_token"]
    assert new["refresh_token"] != first["refresh_token"]
    assert mcp_post(api_url, new["access_token"]).status_code == 200
    assert mcp_post(api_url, first["access_token"]).status_code == 401  # the old pair is spent
    reused = flow.refresh(first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    # (the SDK's revocation handler wants a client_secret field, empty for a public client)
    form = {"token": new["refresh_token"], "client_id": flow.client_id, "client_secret": ""}
    revoke = requests.post(f"{api_url}/revoke", data=form, timeout=5)
    assert revoke.status_code == 200, revoke.text
    assert mcp_post(api_url, new["access_token"]).status_code == 401  # revoking one ends both


def test_a_token_of_another_tenant_sees_nothing_of_this_one(
    api: Any, other_api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, max_pages=1)
    theirs, storage = Person(api_url, other_api.tenant["api_key"]), Memory()

    async def main() -> None:
        async with oauth_client(api_url, theirs, storage) as other:
            status = await other.call_tool("job_status", {"job_id": job["job_id"]})
            assert status.is_error and body(status)["error"] == "job_not_found"
            call = {"account_id": account, "max_pages": 1}
            started = await other.call_tool("hubspot_contacts_list", call)
            assert started.is_error and "not_found" in body(started)["error"]

    anyio.run(main)
    assert api.wait(job["job_id"])["status"] == "succeeded"
    assert other_api.get(f"/v1/jobs/{job['job_id']}").status_code == 404
    assert [j["job_id"] for j in other_api.get("/v1/jobs").json()["jobs"]] == []
