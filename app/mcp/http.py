"""`/mcp` in the API process: the SDK's streamable HTTP transport behind toolqueue's own auth.

Every HTTP request carries `Authorization: Bearer <api_key>`: the key names the tenant (401
otherwise) and spends one request of the tenant's API limit, like any `/v1` route (429 with
`Retry-After` when spent). The transport runs stateless (no `Mcp-Session-Id` kept in one
process), so any API process behind a load balancer answers any request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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

from app.api import throttle
from app.errors import ToolqueueError, Unauthorized
from app.mcp.server import build_server
from app.tenants import authenticate

TENANT_KEY = "toolqueue.tenant"  # the ASGI scope key the authenticated tenant travels in


def scope_tenant(ctx: ServerRequestContext[Any, Any]) -> str:
    tenant = ctx.request.scope.get(TENANT_KEY) if ctx.request is not None else None
    if not tenant:  # unreachable behind McpHttp; never serve a request as nobody
        raise MCPError(code=INVALID_REQUEST, message="unauthenticated request")
    return str(tenant)


class McpHttp:
    """Pure ASGI: authenticate and throttle, then hand the request to the SDK's transport."""

    def __init__(self, manager: StreamableHTTPSessionManager) -> None:
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scheme, _, key = Headers(scope=scope).get("authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer" or not key.strip():
                raise Unauthorized("send `Authorization: Bearer <api_key>`")
            tenant = await run_in_threadpool(authenticate, key.strip())
            quota = await run_in_threadpool(throttle.take, tenant)
            if not quota.allowed:
                raise quota.refusal()
        except ToolqueueError as exc:
            headers = dict(exc.headers)
            if exc.status == 401:
                headers["WWW-Authenticate"] = "Bearer"
            await JSONResponse(exc.body(), exc.status, headers=headers)(scope, receive, send)
            return
        scope[TENANT_KEY] = tenant
        scope[throttle.SCOPE_KEY] = quota.headers()  # stamped by QuotaHeaders, like /v1
        await self.manager.handle_request(scope, receive, send)


def mount(api: FastAPI, path: str = "/mcp") -> None:
    """Serve MCP at `path` (exactly; POST, GET, DELETE) and run the transport's task group for
    the app's lifetime, around whatever lifespan the app already has."""
    manager = StreamableHTTPSessionManager(app=build_server(scope_tenant), stateless=True)
    api.router.routes.append(Route(path, endpoint=McpHttp(manager)))
    inner = api.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with manager.run(), inner(app) as state:
            yield state

    api.router.lifespan_context = lifespan
