"""`/mcp` in the API process: the SDK's streamable HTTP transport behind toolqueue's own auth.

Every HTTP request carries `Authorization: Bearer <api_key>` or an OAuth access token a person
signed in for (app.mcp.oauth): the key, or the token's key narrowed to its scopes (a 401 with
`WWW-Authenticate: Bearer resource_metadata=…` otherwise), is the `Principal` the request runs
as (its tenant, scopes, tool and account lists), and spends one request of the tenant's API
limit, like any `/v1` route (429 with `Retry-After` when spent). The transport runs stateless
(no `Mcp-Session-Id` kept in one process), so any API process behind a load balancer answers
any request.

While Redis is unreachable no key can be checked: a `tools/call` gets a tool error
`store_unavailable` (the model reads it and retries later; it says nothing about any tenant),
any other request a 503 with `Retry-After` and a JSON-RPC error whose `data` is that error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_REQUEST
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from app.api import errors, throttle
from app.kernel.errors import StoreUnavailable, ToolqueueError, Unauthorized
from app.kernel.redis import STORE_ERRORS
from app.mcp import calls, oauth
from app.mcp.server import build_server
from app.store.apikeys import Principal

PATH = "/mcp"
WHO_KEY = "toolqueue.principal"  # the ASGI scope key the authenticated API key travels in


def scope_who(ctx: ServerRequestContext[Any, Any]) -> Principal:
    who = ctx.request.scope.get(WHO_KEY) if ctx.request is not None else None
    if not isinstance(who, Principal):  # unreachable behind McpHttp; never serve as nobody
        raise MCPError(code=INVALID_REQUEST, message="unauthenticated request")
    return who


class McpHttp:
    """Pure ASGI: authenticate and throttle, then hand the request to the SDK's transport."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scheme, _, key = Headers(scope=scope).get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not key.strip():
                raise Unauthorized("send `Authorization: Bearer <api_key or access token>`")
            who = await run_in_threadpool(oauth.principal, key.strip(), scope["path"])
            quota = await run_in_threadpool(throttle.take, who.tenant_id)
            if not quota.allowed:
                raise quota.refusal()
        except ToolqueueError as exc:
            await _refuse(exc, bool(key.strip()), scope, receive, send)
            return
        except STORE_ERRORS:
            await _store_unavailable(scope, receive, send)
            return
        scope[WHO_KEY] = who
        scope[throttle.SCOPE_KEY] = quota.headers()  # stamped by QuotaHeaders, like /v1
        await self.manager.handle_request(scope, receive, send)


async def _refuse(
    exc: ToolqueueError, sent: bool, scope: Scope, receive: Receive, send: Send
) -> None:
    """The error; a 401 names the protected-resource metadata (RFC 9728 §5.1), which is where
    an MCP client starts its OAuth sign-in, and says `invalid_token` when a bearer was sent."""
    response = errors.response(exc)
    if exc.status == 401:
        challenge = [f'resource_metadata="{oauth.resource_metadata_url(scope["path"])}"']
        if sent:
            challenge.insert(0, 'error="invalid_token"')
        response.headers["WWW-Authenticate"] = "Bearer " + ", ".join(challenge)
    await response(scope, receive, send)


async def _store_unavailable(scope: Scope, receive: Receive, send: Send) -> None:
    """A tool error for a `tools/call` (what a model can act on), else a JSON-RPC error."""
    message = _message(await _body(receive))
    exc = StoreUnavailable()
    rpc_id = message.get("id")
    if message.get("method") == "tools/call" and isinstance(rpc_id, str | int):
        result = calls.error_result(exc).model_dump(by_alias=True, mode="json", exclude_none=True)
        body = {"jsonrpc": "2.0", "id": rpc_id, "result": result}
        response = JSONResponse(body, headers=dict(exc.headers))
    else:
        response = errors.jsonrpc_response(exc, rpc_id if isinstance(rpc_id, str | int) else None)
    await response(scope, receive, send)


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _message(body: bytes) -> dict[str, Any]:
    """The JSON-RPC request as sent (app.api.bodies has checked it), or {}."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def mount(api: FastAPI, path: str = PATH) -> None:
    """Serve MCP at `path` (exactly; POST, GET, DELETE) and run the transport's task group for
    the app's lifetime, around whatever lifespan the app already has."""
    manager = StreamableHTTPSessionManager(app=build_server(scope_who), stateless=True)
    api.router.routes.append(Route(path, endpoint=McpHttp(manager)))
    oauth.mount(api, path)  # /mcp as an OAuth protected resource, toolqueue as its server
    inner = api.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with manager.run(), inner(app) as state:
            yield state

    api.router.lifespan_context = lifespan
