"""The MCP authorization server's hardening, against real API processes and real Redis: dynamic
client registrations keep their secret sealed (read from Redis itself), `keys rotate` re-seals
it and the client still signs in with the official SDK client; /register, /token and failed
sign-ins are rate limited (429, `Retry-After`) per client IP or client_id, another IP or client
unaffected, and the limit refills; the registry is capped.

The limits are tested on an API process of its own with small limits. Its client IP is varied
with `X-Forwarded-For`, which uvicorn honours from loopback (its default `forwarded_allow_ips`,
127.0.0.1 and ::1): the address the limits see is the one a proxy in front would name.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
import redis
import requests
from cryptography.fernet import Fernet, InvalidToken
from mcp.shared.auth import OAuthClientInformationFull
from support import ROOT, free_port, start_api
from test_mcp_oauth import REDIRECT, Memory, Person, mcp_post, oauth_client, signin_form

from app.kernel import keys

WINDOW_S = 6.0  # each limit below: 3 per 6 s (a token every 2 s)
LIMITED_ENV = {
    "TOOLQUEUE_OAUTH_SIGNIN_RATE_LIMIT": "3",
    "TOOLQUEUE_OAUTH_SIGNIN_RATE_WINDOW_S": str(WINDOW_S),
    "TOOLQUEUE_OAUTH_REGISTER_RATE_LIMIT": "3",
    "TOOLQUEUE_OAUTH_REGISTER_RATE_WINDOW_S": str(WINDOW_S),
    "TOOLQUEUE_OAUTH_TOKEN_RATE_LIMIT": "3",
    "TOOLQUEUE_OAUTH_TOKEN_RATE_WINDOW_S": str(WINDOW_S),
    "TOOLQUEUE_OAUTH_MAX_CLIENTS": "1000",
}


READY = "/.well-known/oauth-authorization-server"  # not /healthz: its own db has no workers


@pytest.fixture(scope="module")
def limited(redis_server: Any) -> Iterator[str]:
    """An API process of its own (the session's Redis) whose OAuth limits are 3 per 6 s."""
    proc, url = start_api("api-oauth-limits", str(free_port()), LIMITED_ENV, READY)
    yield url
    proc.stop()


def an_ip() -> str:
    """A client address of its own (TEST-NET-2), so no test shares another's buckets."""
    return f"198.51.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def xff(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


class Hand:
    """The authorization server driven by hand from one client address."""

    def __init__(self, url: str, ip: str, *, confidential: bool = False) -> None:
        self.url, self.ip = url, ip
        self.verifier = secrets.token_urlsafe(48)
        reg = register(url, ip, confidential=confidential)
        assert reg.status_code == 201, reg.text
        self.client = reg.json()
        self.client_id = self.client["client_id"]

    def signin_page(self) -> str:
        import base64
        import hashlib

        sha = hashlib.sha256(self.verifier.encode()).digest()
        params = {"response_type": "code", "client_id": self.client_id, "redirect_uri": REDIRECT,
                  "code_challenge": base64.urlsafe_b64encode(sha).decode().rstrip("="),
                  "code_challenge_method": "S256", "state": "s1",
                  "resource": f"{self.url}/mcp"}  # fmt: skip
        first = requests.get(f"{self.url}/authorize", params=params, allow_redirects=False,
                             timeout=5, headers=xff(self.ip))  # fmt: skip
        assert first.status_code == 302, first.text
        page = requests.get(first.headers["location"], timeout=5, headers=xff(self.ip))
        assert page.status_code == 200, page.text
        return page.text

    def submit(self, page: str, api_key: str, ip: str | None = None) -> requests.Response:
        form = signin_form(self.url, page)
        data = {"request": form["request"], "api_key": api_key, "action": "approve"}
        return requests.post(form["action"], data=data, allow_redirects=False, timeout=5,
                             headers=xff(ip or self.ip))  # fmt: skip

    def code(self, api_key: str) -> str:
        answer = self.submit(self.signin_page(), api_key)
        assert answer.status_code == 302, answer.text
        return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]

    def token(self, code: str) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code, "client_id": self.client_id,
                "redirect_uri": REDIRECT, "code_verifier": self.verifier,
                "resource": f"{self.url}/mcp"}  # fmt: skip
        if "client_secret" in self.client:
            data["client_secret"] = self.client["client_secret"]
        return requests.post(f"{self.url}/token", data=data, timeout=5, headers=xff(self.ip))


def register(url: str, ip: str, *, confidential: bool = False, **extra: Any) -> requests.Response:
    client = {"redirect_uris": [REDIRECT], "client_name": "limits",
              "token_endpoint_auth_method": "client_secret_post" if confidential else "none",
              "grant_types": ["authorization_code", "refresh_token"], **extra}  # fmt: skip
    return requests.post(f"{url}/register", json=client, timeout=5, headers=xff(ip))


def stored_fields(r: Any, client_id: str) -> dict[str, str]:
    key = keys.oauth_client(client_id)
    assert r.type(key) == "hash"
    fields: dict[str, str] = r.hgetall(key)
    return fields


def test_a_registered_clients_secret_is_sealed_at_rest_and_the_sdk_client_signs_in(
    api: Any, api_url: str, r: Any
) -> None:
    from app.kernel.crypto import unseal

    person, storage = Person(api_url, api.tenant["api_key"]), Memory()

    async def main() -> None:
        async with oauth_client(api_url, person, storage) as client:
            assert "job_status" in {t.name for t in (await client.list_tools()).tools}

    anyio.run(main)
    assert storage.client is not None and storage.tokens is not None
    secret = storage.client.client_secret
    assert secret and storage.client.token_endpoint_auth_method == "client_secret_post"
    fields = stored_fields(r, storage.client.client_id)
    assert set(fields) == {"doc", "sealed_secret"}
    assert all(secret not in value for value in fields.values())  # nowhere in clear
    assert "client_secret" not in json.loads(fields["doc"])
    assert unseal(fields["sealed_secret"]) == secret
    # used, it lives as long as its refresh token; the cap's index knows it until then
    ttl = r.ttl(keys.oauth_client(storage.client.client_id))
    assert 30 * 86400 - 60 < ttl <= 30 * 86400
    expiry = r.zscore(keys.oauth_clients(), storage.client.client_id)
    assert abs(expiry - (time.time() + ttl)) < 60


def test_an_unused_registration_expires_in_a_day_and_oversized_metadata_is_refused(
    api_url: str, r: Any
) -> None:
    ip = an_ip()
    made = register(api_url, ip, confidential=True)
    assert made.status_code == 201, made.text
    client_id = made.json()["client_id"]
    assert 86400 - 60 < r.ttl(keys.oauth_client(client_id)) <= 86400
    huge = register(api_url, ip, client_name="x" * 9000)
    assert huge.status_code == 400 and huge.json()["error"] == "invalid_client_metadata"
    assert "8192 bytes" in huge.json()["error_description"]


def test_a_registration_kept_whole_by_an_older_version_still_works_and_gets_sealed(
    api: Any, api_url: str, r: Any
) -> None:
    from app.kernel.crypto import reseal_all
    from app.store import oauth as store

    other = Hand(api_url, an_ip(), confidential=True)  # sealed: `keys rotate` counts it
    hand = Hand(api_url, an_ip(), confidential=True)
    key = keys.oauth_client(hand.client_id)
    whole = {**json.loads(r.hget(key, "doc")), "client_secret": hand.client["client_secret"]}
    r.delete(key)
    r.set(key, json.dumps(whole), ex=5000)  # as the first release stored it
    assert reseal_all()["oauth_clients"] >= 1  # the sealed ones; the string one is skipped
    assert r.type(key) == "string"

    tokens = hand.token(hand.code(api.tenant["api_key"]))  # /authorize reads it: sealed now
    assert tokens.status_code == 200, tokens.text
    fields = stored_fields(r, hand.client_id)
    assert hand.client["client_secret"] not in json.dumps(fields)
    assert mcp_post(api_url, tokens.json()["access_token"]).status_code == 200

    other_key = keys.oauth_client(other.client_id)
    whole = {**json.loads(r.hget(other_key, "doc")), "client_secret": other.client["client_secret"]}
    r.delete(other_key)
    r.set(other_key, json.dumps(whole), ex=5000)
    assert store.seal_legacy_clients() >= 1
    assert other.client["client_secret"] not in json.dumps(stored_fields(r, other.client_id))
    assert 4900 < r.ttl(other_key) <= 5000  # its remaining life, not a new one


def cli(env: dict[str, str], *argv: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "app.cli", *argv], cwd=ROOT, text=True,
                          capture_output=True, timeout=60, env={**os.environ, **env})  # fmt: skip
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def test_keys_rotate_reseals_client_secrets_and_the_client_signs_in_under_the_new_key(
    redis_server: Any,
) -> None:
    """On a Redis database of its own (rotation re-seals everything in it), with an API
    process that knows key A, then one that knows only B."""
    url = os.environ["TOOLQUEUE_REDIS_URL"].rsplit("/", 1)[0] + "/6"
    raw = redis.Redis.from_url(url, decode_responses=True)
    raw.flushdb()
    a, b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    port = str(free_port())
    tenant = cli({"TOOLQUEUE_REDIS_URL": url, "TOOLQUEUE_SECRET_KEY": a}, "tenants", "create", "r")
    proc, api_url = start_api("api-oauth-rotate-a", port,
                              {"TOOLQUEUE_REDIS_URL": url, "TOOLQUEUE_SECRET_KEY": a},
                              READY)  # fmt: skip
    person, storage = Person(api_url, str(tenant["api_key"])), Memory()

    async def session() -> None:
        async with oauth_client(api_url, person, storage) as client:
            assert "job_status" in {t.name for t in (await client.list_tools()).tools}

    try:
        anyio.run(session)
    finally:
        proc.stop()
    client = storage.client
    assert isinstance(client, OAuthClientInformationFull) and client.client_secret
    sealed = raw.hget(keys.oauth_client(client.client_id), "sealed_secret")
    assert sealed and Fernet(a).decrypt(sealed.encode())

    rotated = cli({"TOOLQUEUE_REDIS_URL": url, "TOOLQUEUE_SECRET_KEY": f"{b},{a}"}, "keys",
                  "rotate")  # fmt: skip
    assert rotated["oauth_clients"] == 1
    resealed = raw.hget(keys.oauth_client(client.client_id), "sealed_secret")
    assert resealed and resealed != sealed
    assert json.loads(Fernet(b).decrypt(resealed.encode())) == client.client_secret
    with pytest.raises(InvalidToken):
        Fernet(a).decrypt(resealed.encode())

    only_b = {"TOOLQUEUE_REDIS_URL": url, "TOOLQUEUE_SECRET_KEY": b}
    proc, again_url = start_api("api-oauth-rotate-b", port, only_b, READY)
    assert again_url == api_url  # the same issuer: the SDK keeps its registration
    storage.tokens = None  # a full sign-in again: the token exchange sends the client secret
    try:
        anyio.run(session)
    finally:
        proc.stop()
    assert len(person.locations) == 2 and storage.tokens is not None
    assert storage.client is not None and storage.client.client_id == client.client_id
    assert raw.keys(keys.oauth_client("*")) == [keys.oauth_client(client.client_id)]
    raw.flushdb()


def test_failed_sign_ins_are_limited_per_ip_a_right_key_never_counts(
    limited: str, tenant: dict[str, str]
) -> None:
    ip, other_ip = an_ip(), an_ip()
    hand = Hand(limited, an_ip())
    page = hand.signin_page()
    bogus = "tq_" + secrets.token_urlsafe(32)
    for left in ("2", "1", "0"):
        failed = hand.submit(page, bogus, ip)
        assert failed.status_code == 401, failed.text
        assert failed.headers["ratelimit-limit"] == "3"
        assert failed.headers["ratelimit-remaining"] == left
    refused = hand.submit(page, tenant["api_key"], ip)  # even the right key, now
    assert refused.status_code == 429
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 2
    assert "Too many failed sign-ins" in refused.text and 'id="api_key"' in refused.text
    assert tenant["api_key"] not in refused.text and bogus not in refused.text

    assert hand.submit(page, bogus, other_ip).status_code == 401  # another address: its own
    for _ in range(4):  # right keys are no failures: more than the limit, all signed in
        assert hand.submit(hand.signin_page(), tenant["api_key"], other_ip).status_code == 302

    time.sleep(wait)  # a token back: one more try, then the lock again
    assert hand.submit(page, bogus, ip).status_code == 401
    assert hand.submit(page, bogus, ip).status_code == 429
    time.sleep(WINDOW_S)  # the whole bucket back
    assert [hand.submit(page, bogus, ip).status_code for _ in range(4)] == [401, 401, 401, 429]
    time.sleep(int(hand.submit(page, bogus, ip).headers["retry-after"]))
    assert hand.submit(page, tenant["api_key"], ip).status_code == 302  # the request answered


def test_registrations_are_limited_per_ip(limited: str, r: Any) -> None:
    ip, other_ip = an_ip(), an_ip()
    assert [register(limited, ip).status_code for _ in range(3)] == [201, 201, 201]
    refused = register(limited, ip)
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_requests"
    assert "client registrations" in refused.json()["error_description"]
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["access-control-allow-origin"] == "*"
    assert refused.headers["cache-control"] == "no-store"
    preflight = requests.options(f"{limited}/register", timeout=5, headers={
        **xff(ip), "Origin": "https://inspector.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200  # preflights are no registrations
    assert register(limited, other_ip).status_code == 201
    time.sleep(WINDOW_S)
    assert [register(limited, ip).status_code for _ in range(4)] == [201, 201, 201, 429]


def test_token_requests_are_limited_per_client(limited: str, tenant: dict[str, str]) -> None:
    ip = an_ip()
    hand, other = Hand(limited, ip), Hand(limited, an_ip())
    code = hand.code(tenant["api_key"])
    for _ in range(3):
        wrong = requests.post(f"{limited}/token", timeout=5, headers=xff(ip), data={
            "grant_type": "authorization_code", "code": "nope", "client_id": hand.client_id,
            "redirect_uri": REDIRECT, "code_verifier": hand.verifier})  # fmt: skip
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    refused = hand.token(code)  # the right code too: the client is out of requests
    assert refused.status_code == 429
    assert refused.json()["error"] == "too_many_requests"
    assert "token requests of this client" in refused.json()["error_description"]
    assert 1 <= int(refused.headers["retry-after"]) <= 2
    assert refused.headers["ratelimit-remaining"] == "0"
    theirs = other.token(other.code(tenant["api_key"]))  # another client, the same limits
    assert theirs.status_code == 200, theirs.text

    time.sleep(WINDOW_S)
    tokens = hand.token(code)  # the code was never exchanged: it still works
    assert tokens.status_code == 200, tokens.text
    assert mcp_post(limited, tokens.json()["access_token"]).status_code == 200


def test_registrations_are_capped(limited: str, r: Any) -> None:
    index = keys.oauth_clients()
    r.zremrangebyscore(index, "-inf", time.time())
    fill = {f"fill-{i}": time.time() + 50 for i in range(1000 - r.zcard(index))}
    if fill:
        r.zadd(index, fill)
    try:
        full = register(limited, an_ip())
        assert full.status_code == 503
        assert full.json()["error"] == "temporarily_unavailable"
        assert "at most 1000 client registrations" in full.json()["error_description"]
        assert 1 <= int(full.headers["retry-after"]) <= 50
    finally:
        if fill:
            r.zrem(index, *fill)
    assert register(limited, an_ip()).status_code == 201
