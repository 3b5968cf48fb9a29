"""Plumbing every vendor router shares: state lookup, latency/fault preamble, request log."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.state import SandboxState

KIND_KEY = "sandbox.kind"  # scope key a route sets to log itself as "token" instead of "api"
SECRET_PARAMS = {"access_token", "refresh_token", "client_secret", "code", "hapikey", "token"}

BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def sandbox_state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def correlation_id() -> str:
    return str(uuid.uuid4())


def mark_token_call(request: Request) -> None:
    request.scope[KIND_KEY] = "token"


async def token_form(request: Request) -> dict[str, Any]:
    """A token request's fields: form-encoded (the OAuth standard) or a JSON object
    (Atlassian and Shopify accept both); anything else reads as empty."""
    raw = (await request.body()).decode("utf-8", "replace")
    if "json" not in request.headers.get("content-type", ""):
        return dict(parse_qsl(raw, keep_blank_values=True))
    try:
        parsed = json.loads(raw or "{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


async def token_call(
    request: Request, vendor: str, unavailable: Callable[[], dict[str, Any]]
) -> Response | None:
    """Every token endpoint's start: log the call as a token call, count it as a refresh,
    then apply the token-only latency and faults, then the general ones (a fault response is
    returned, else None)."""
    mark_token_call(request)
    state = sandbox_state(request)
    state.count_refresh(vendor)
    if state.config.token_latency_ms:
        await asyncio.sleep(state.config.token_latency_ms / 1000)
    if state.take_token_fault():
        return JSONResponse(unavailable(), status_code=503)
    return await preamble(request, unavailable)


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


async def preamble(request: Request, unavailable: Callable[[], dict[str, Any]]) -> Response | None:
    """Apply configured latency (without blocking the loop), then maybe a seeded 502/503.

    Runs before auth, like a real edge/gateway failure; ``unavailable`` builds the vendor's
    own 503 JSON body, while 502s get the HTML page a CDN would serve.
    """
    state = sandbox_state(request)
    if state.config.latency_ms:
        await asyncio.sleep(state.config.latency_ms / 1000)
    status = state.roll_fault()
    if status == 502:
        return HTMLResponse(BAD_GATEWAY_HTML, status_code=502)
    if status == 503:
        return JSONResponse(unavailable(), status_code=503)
    return None


def _redact(query: str) -> str:
    """The log must never hold credentials, even ones a client put in the query string."""
    if not any(p in query for p in SECRET_PARAMS):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "REDACTED" if k in SECRET_PARAMS else v) for k, v in pairs])


class RequestLogMiddleware:
    """Pure ASGI middleware logging every request under a vendor prefix, 404s included."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        vendor = path.split("/", 2)[1] if path.count("/") >= 1 else ""
        if vendor not in self.state.vendors:
            await self.app(scope, receive, send)
            return
        started = time.time()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.state.record(
                {
                    "t": started,
                    "vendor": vendor,
                    "method": scope["method"],
                    "path": path,
                    "query": _redact(scope.get("query_string", b"").decode("latin-1")),
                    "status": status,
                    "kind": scope.get(KIND_KEY, "api"),
                }
            )
