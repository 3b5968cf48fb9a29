"""The ASGI app: `uvicorn app.api.main:app`."""

from __future__ import annotations

from fastapi import FastAPI

from app.api import (
    accounts,
    connect,
    consent,
    errors,
    health,
    jobs,
    metrics,
    pipelines,
    proxy,
    vendorhooks,
)
from app.api.bodies import JsonBodies
from app.api.limits import BodyLimit
from app.api.outage import StoreOutage
from app.api.throttle import QuotaHeaders
from app.kernel.registry import registry
from app.kernel.settings import get_settings
from app.mcp.http import PATH as MCP_PATH
from app.mcp.http import mount as mount_mcp
from connectors import logredact


def create_app() -> FastAPI:
    registry()  # a bad connector spec stops the API at start, naming the file and field
    logredact.install("uvicorn.access", "uvicorn.error", "urllib3.connectionpool")
    api = FastAPI(
        title="toolqueue",
        version="0.1.0",
        description="Call-now, fetch-later SaaS API jobs for AI agents.",
    )
    errors.install(api)
    api.include_router(health.router)
    api.include_router(metrics.router)  # /metrics: Prometheus text, aggregate labels only
    api.include_router(jobs.router)
    api.include_router(accounts.router)
    api.include_router(connect.router)  # OAuth apps, connect sessions and pages
    api.include_router(consent.router)  # approvals, previews, policy, keys, audit
    api.include_router(pipelines.router)
    api.include_router(proxy.router)
    api.include_router(vendorhooks.router)  # signed by the vendor, not by an API key
    mount_mcp(api)  # /mcp: the MCP server (streamable HTTP), same API keys and limits
    # the tenant's `ratelimit-*` headers on every authenticated answer (a 429 carries its own)
    api.add_middleware(QuotaHeaders)
    # the last added runs first: Redis errors anywhere -> 503, then size, then JSON shape
    settings = get_settings()
    api.add_middleware(
        JsonBodies,
        max_depth=settings.max_json_depth,
        jsonrpc_paths=[MCP_PATH],
        passthrough=(proxy.PREFIX,),
    )
    api.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    api.add_middleware(StoreOutage)
    return api


app = create_app()
