"""Rate limits of toolqueue's authorization server (app.mcp.oauth), on the API's own limiter:
the token bucket of `throttle_take.lua` (refilled from Redis `TIME`, shared by every API
process) and its `Quota` (`Retry-After` and the `ratelimit-*` trio, rounded up).

- `/register`: `oauth_register_rate_limit` per client IP per window (registrations are kept,
  so they are the costly request), and at most `oauth_max_clients` kept at once.
- `/token`: `oauth_token_rate_limit` per `client_id` (a runaway client's refresh loop, a code
  or secret guessed at).
- the sign-in page: `oauth_signin_rate_limit` failed sign-ins (an API key that is no key) per
  client IP. A right key never counts: the bucket is spent after a failure, and the failure
  that empties it leaves a lock for `Retry-After`, which the next attempt checks before any key
  is looked at. A wrong key names no tenant (keys are random, looked up by digest), so there is
  no per-tenant count to keep; a right one needs none.

Refusals: `/register` and `/token` answer 429 with the OAuth error JSON
`{"error": "too_many_requests", "error_description": …}` (the code the MCP TypeScript SDK's auth
server sends, `TooManyRequestsError`, after RFC 6585; OAuth itself has none for a 429), the
sign-in page a 429 page. The Python SDK's client takes any non-2xx from /register or /token as a
failure: it raises (`OAuthRegistrationError`, `OAuthTokenError`), and a refused refresh makes it
drop its tokens and sign in again, so these limits sit far above what a real client sends.

The client IP is the ASGI scope's, which uvicorn takes from `X-Forwarded-For` only when the
peer is in `--forwarded-allow-ips` (`FORWARDED_ALLOW_IPS`; default loopback): behind a proxy,
list the proxy there, or every client counts as the proxy's address.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from anyio import to_thread
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.throttle import Quota
from app.kernel import keys
from app.kernel.crypto import digest
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.settings import get_settings
from app.store import oauth as store

Who = Callable[[Scope, bytes], str]  # whose bucket a request spends, from its scope and body


def policy(kind: str) -> tuple[int, float]:
    """(limit, window in s) of a kind of request; a limit of 0 is no limit."""
    s = get_settings()
    return {
        "register": (s.oauth_register_rate_limit, s.oauth_register_rate_window_s),
        "token": (s.oauth_token_rate_limit, s.oauth_token_rate_window_s),
        "signin": (s.oauth_signin_rate_limit, s.oauth_signin_rate_window_s),
    }[kind]


def take(kind: str, who: str) -> Quota:
    """Spend one token of `who`'s bucket of `kind` (one EVALSHA). The script's first key is
    where a tenant's overrides would be; the bucket itself is passed there, whose fields
    (tokens, at) are never overrides, so the settings apply."""
    bucket = keys.oauth_limit(kind, digest(who))
    reply: Any = run_script(source("throttle_take"), [bucket, bucket], list(policy(kind)))
    allowed, limit, window, tokens = reply
    return Quota(bool(allowed), int(limit), float(window), float(tokens))


def client_ip(scope: Scope, body: bytes = b"") -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


def form_client_id(scope: Scope, body: bytes) -> str:
    """The `client_id` of a /token form (the SDK's authenticator requires it there, whatever
    the client's auth method)."""
    try:
        found = parse_qs(body.decode("utf-8", "replace"), max_num_fields=50).get("client_id")
    except ValueError:  # more fields than any token request has
        return ""
    return found[0] if found else ""


def signin_wait(ip: str) -> int:
    """Seconds `ip` must wait before it may try an API key again (0: now)."""
    with get_redis().pipeline(transaction=False) as p:
        p.pttl(keys.oauth_signin_lock(digest(ip)))
        (ms,) = p.execute()
    return math.ceil(ms / 1000) if ms > 0 else 0


def signin_failed(ip: str) -> Quota:
    """Count a failed sign-in of `ip`; the one that spends its last leaves the lock."""
    quota = take("signin", ip)
    if quota.limit and (not quota.allowed or quota.remaining == 0):
        wait_ms = quota.retry_after_s * 1000
        get_redis().set(keys.oauth_signin_lock(digest(ip)), "1", px=wait_ms)
    return quota


def signin_refusal_headers(wait_s: int) -> dict[str, str]:
    limit, _ = policy("signin")
    return {"retry-after": str(max(1, wait_s)), "ratelimit-limit": str(limit),
            "ratelimit-remaining": "0", "ratelimit-reset": str(max(1, wait_s))}  # fmt: skip


def oauth_error(status: int, error: str, description: str, headers: dict[str, str]) -> Response:
    """An OAuth error body (RFC 6749 §5.2's shape), readable cross-origin like the SDK's own."""
    extra = {"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*", **headers}
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers=extra)


def too_many(kind: str, quota: Quota) -> Response:
    what = {"register": "client registrations from this address", "token": "token requests "
            "of this client"}[kind]  # fmt: skip
    text = f"too many {what}: {quota.limit} per {quota.window_s:g} s; retry in "
    return oauth_error(429, "too_many_requests", f"{text}{quota.retry_after_s} s", quota.headers())


async def _body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole request body (BodyLimit, outside, bounds it), and its messages to replay."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    return b"".join(m.get("body", b"") for m in messages), messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def again() -> Message:
        return messages.pop(0) if messages else await receive()

    return again


class Limited:
    """Pure ASGI around one of the SDK's endpoints: a POST spends a token of its bucket
    first and is refused with a 429 when there is none (preflights pass)."""

    def __init__(self, app: ASGIApp, kind: str, who: Who, *, reads_body: bool = False) -> None:
        self.app, self.kind, self.who, self.reads_body = app, kind, who, reads_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, messages = await _body(receive) if self.reads_body else (b"", [])
        quota = await to_thread.run_sync(take, self.kind, self.who(scope, body))
        refusal = too_many(self.kind, quota) if not quota.allowed else await self.refusal()
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive) if messages else receive, send)

    async def refusal(self) -> Response | None:
        """A refusal past the rate limit (none here)."""
        return None


class Registrations(Limited):
    """`/register`: per client IP, and no new registration while `oauth_max_clients` are kept."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, "register", client_ip)

    async def refusal(self) -> Response | None:
        wait = await to_thread.run_sync(store.clients_full)
        if wait is None:
            return None
        cap = get_settings().oauth_max_clients
        text = f"this server keeps at most {cap} client registrations; retry later"
        return oauth_error(503, "temporarily_unavailable", text, {"retry-after": str(
            math.ceil(wait))})  # fmt: skip


def token_limited(app: ASGIApp) -> ASGIApp:
    return Limited(app, "token", form_client_id, reads_body=True)
