"""MCP tool calls as toolqueue jobs: shared by the plain `tools/call` handler and the tasks
extension, so both validate, enqueue and render exactly alike."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from anyio import to_thread
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolResult, TextContent
from pydantic import ValidationError

from app.kernel.errors import InvalidInput, StoreUnavailable, ToolqueueError
from app.kernel.redis import STORE_ERRORS
from app.kernel.registry import registry
from app.services import jobs, toolschemas
from app.store.apikeys import Principal
from connectors.base import Tool

WhoResolver = Callable[[ServerRequestContext[Any, Any]], Principal]
"""Who is calling: the API key, its tenant and scopes (HTTP: set by `app.mcp.http`; stdio:
fixed). Every MCP surface acts as this key, exactly as `/v1` does."""


async def run_sync(fn: Callable[..., Any], *args: Any) -> Any:
    """The job functions use the synchronous Redis client: keep them off the event loop. Redis
    unreachable is `StoreUnavailable`, which a tool call answers as a tool error."""
    try:
        return await to_thread.run_sync(fn, *args)
    except STORE_ERRORS as exc:
        raise StoreUnavailable() from exc


def lookup(name: str) -> Tool | None:
    """A registry tool by its MCP (function-safe) name."""
    tool_name = toolschemas.tool_names().get(name)
    return registry().tools.get(tool_name) if tool_name else None


def visible(who: Principal, tool: Tool) -> bool:
    """May `who` see (and call) `tool`: the same rule as `GET /v1/tools` (`jobs.tools`); a
    tool that is not read-only (a write, or a unified tool that routes to writes) needs the
    `write` scope."""
    return who.may_use(tool.name, writes=not tool.read_only)


def unknown_tool(name: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=f"unknown tool {name!r}; tools/list lists them")


async def start(who: Principal, tool: Tool, arguments: dict[str, Any]) -> dict[str, Any]:
    """Validate a call's arguments (see `app.toolschemas`) and enqueue its job as `who`: its
    scopes, tool and account lists and the policy apply as over HTTP; no vendor call happens
    here. Raises `ToolqueueError` (invalid arguments, unknown account, a 403 refusal, …)."""
    try:
        call = toolschemas.validate_call(tool, arguments)
    except ValidationError as exc:
        raise InvalidInput(explain(exc), code="invalid_arguments") from None
    options = {k: getattr(call, k) for k in toolschemas.OPTIONS if k in call.model_fields_set}
    req = jobs.JobCreate(
        tool=tool.name,
        account_id=call.account_id,  # type: ignore[attr-defined]
        args=arguments.get("args") or {},
        **options,
    )
    job: dict[str, Any] = await run_sync(jobs.enqueue, who.tenant_id, req, who)
    return job


def text_result(payload: bytes | str | dict[str, Any], *, error: bool = False) -> CallToolResult:
    """One text block: the JSON the REST API would answer (a result body is passed through as
    is, so it stays ≤ 131,072 bytes); small dicts also go out as `structuredContent`."""
    if isinstance(payload, dict):
        text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        return CallToolResult(
            content=[TextContent(type="text", text=text)],
            structured_content=payload,
            is_error=error,
        )
    text = payload.decode() if isinstance(payload, bytes) else payload
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=error)


def error_result(exc: ToolqueueError) -> CallToolResult:
    """A refused call is a tool error the model can read and fix, not a protocol error."""
    return text_result(exc.body(), error=True)


def explain(exc: ValidationError) -> str:
    """Pydantic errors as one line the model can act on (first five, dotted locations)."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
