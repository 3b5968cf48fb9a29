"""The MCP tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663, revision 2026-07-28).

A toolqueue job already is a durable task, so the extension is a thin mapping: a client that
declares the extension on a `tools/call` gets a task handle at once (`resultType: "task"`, the
task id is the job id), polls `tasks/get` (the job's state; the result inline once it succeeded)
and may `tasks/cancel` it. Tasks are the API key's tenant's jobs: another tenant's id is not
found, exactly like a missing one.

Job state → task status: `queued`, `running`, `waiting_rate_limit`, `waiting_vendor` and
`needs_reauth` → `working` (the `statusMessage` says which, and until when); `succeeded` →
`completed` (`result`: the CallToolResult whose text is the result body);
`completed_with_errors` (a write whose vendor rejected some records) → `completed` with the
result body as an `isError` result, so a model never reads it as plain success; `failed` →
`completed` with an `isError` result carrying the job's error (SEP-2663 keeps the task status
`failed` for protocol faults: a tool that failed is the same `isError` result a live
`tools/call` returns); `cancelled` → `cancelled`. toolqueue never asks for input, so
`input_required` does not occur.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from mcp_types import (
    INVALID_PARAMS,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    CallToolRequestParams,
    ClientCapabilities,
    MissingRequiredClientCapabilityErrorData,
    RequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from app.kernel.errors import Conflict, NotFound, ToolqueueError
from app.kernel.settings import get_settings
from app.kernel.states import TERMINAL
from app.mcp import calls
from app.services import jobs

IDENTIFIER = "io.modelcontextprotocol/tasks"
POLL_MS = 1000
MAX_POLL_MS = 60_000


class TaskParams(RequestParams):
    """`{"taskId"}` of tasks/get, tasks/cancel and tasks/update (aliases are camelCase)."""

    task_id: str = Field(min_length=1, max_length=200)


class UpdateParams(TaskParams):
    input_responses: dict[str, Any] = Field(default_factory=dict)


def declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """The extension is opt-in per request (2026-07-28 per-request capabilities)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    caps = ctx.session.client_capabilities
    return bool(caps and caps.extensions and IDENTIFIER in caps.extensions)


def _require(ctx: ServerRequestContext[Any, Any]) -> None:
    if not declared(ctx):
        data = MissingRequiredClientCapabilityErrorData(
            required_capabilities=ClientCapabilities(extensions={IDENTIFIER: {}})
        )
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message=f"declare the {IDENTIFIER} extension in this request's capabilities",
            data=data.model_dump(by_alias=True, mode="json", exclude_none=True),
        )


def task(job: dict[str, Any]) -> dict[str, Any]:
    """The Task fields of a job view (`app.jobs.view`), without the inline result."""
    status, message = _status(job)
    out: dict[str, Any] = {
        "taskId": job["job_id"],
        "status": status,
        "statusMessage": message,
        "createdAt": job["created_at"],
        "lastUpdatedAt": job["updated_at"] or job["created_at"],
        "ttlMs": get_settings().spool_ttl_s * 1000,
    }
    if status == "working":
        out["pollIntervalMs"] = _poll_ms(job)
    return out


def _status(job: dict[str, Any]) -> tuple[str, str]:
    state, progress = job["status"], job["progress"]
    so_far = f"{progress['pages']} pages, {progress['records']} records so far"
    until = f" until {job['retry_at']}" if job.get("retry_at") else ""
    if state == "succeeded":
        more = "; truncated: the result carries a `continuation`" if job["truncated"] else ""
        return "completed", f"succeeded: {progress['records']} records{more}"
    if state in ("failed", "completed_with_errors"):
        err = job.get("error") or {}
        return "completed", f"{state}: {err.get('code')}: {err.get('message')}"
    if state == "cancelled":
        return "cancelled", "cancelled"
    messages = {
        "queued": "queued: the first step has not started yet",
        "running": f"running: {so_far}",
        "waiting_rate_limit": f"waiting_rate_limit: the vendor's rate limit{until}; {so_far}",
        "waiting_vendor": f"waiting_vendor: the vendor's export is running{until}; {so_far}",
        "needs_reauth": f"needs_reauth: account {job['account_id']}'s refresh token was "
        f"rejected; re-authorize the account; {so_far}",
    }
    return "working", messages.get(state, f"{state}: {so_far}")


def _poll_ms(job: dict[str, Any]) -> int:
    """A waiting job answers nothing new before `retry_at`: suggest polling then."""
    retry_at = job.get("retry_at")
    if not retry_at:
        return POLL_MS
    left_s = datetime.fromisoformat(retry_at.replace("Z", "+00:00")).timestamp() - time.time()
    return int(min(MAX_POLL_MS, max(POLL_MS, left_s * 1000)))


async def detailed(tenant: str, job: dict[str, Any]) -> dict[str, Any]:
    """A `tasks/get` answer: the Task plus its `result` or `error` once the job ended."""
    out = task(job)
    # a write's result lists every record's outcome: the rejected ones' reasons included
    if job["status"] == "succeeded" or (job["status"] in TERMINAL and job.get("writes")):
        body = await calls.run_sync(jobs.result, tenant, job["job_id"])
        failed = job["status"] != "succeeded"
        out["result"] = calls.text_result(body, error=failed).model_dump(
            by_alias=True, mode="json", exclude_none=True
        )
    elif job["status"] == "failed":
        out["result"] = calls.text_result(job, error=True).model_dump(  # its `error` says why
            by_alias=True, mode="json", exclude_none=True
        )
    return out


class TasksExtension(Extension):
    """Task-augmented `tools/call` for the registry's tools, plus tasks/get, /cancel, /update.

    The job_* tools and unknown names pass through to the plain handler (`call_next`).
    """

    identifier = IDENTIFIER

    def __init__(self, tenant_of: calls.TenantResolver) -> None:
        self.tenant_of = tenant_of

    def methods(self) -> Sequence[MethodBinding]:
        return (
            MethodBinding("tasks/get", TaskParams, self._get),
            MethodBinding("tasks/cancel", TaskParams, self._cancel),
            MethodBinding("tasks/update", UpdateParams, self._update),
        )

    async def intercept_tool_call(
        self,
        params: CallToolRequestParams,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> HandlerResult:
        tool = calls.lookup(params.name) if declared(ctx) else None
        if tool is None:
            return await call_next(ctx)
        tenant = self.tenant_of(ctx)
        try:
            handle = await calls.start(tenant, tool, params.arguments or {})
        except ToolqueueError as exc:
            return calls.error_result(exc)
        # the record exists once enqueue returns, so tasks/get resolves this id (SEP-2663)
        job = await calls.run_sync(jobs.get, tenant, handle["job_id"])
        return {"resultType": "task", **task(job)}

    async def _load(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> dict[str, Any]:
        _require(ctx)
        try:
            job: dict[str, Any] = await calls.run_sync(jobs.get, self.tenant_of(ctx), task_id)
        except NotFound:
            raise MCPError(code=INVALID_PARAMS, message=f"task {task_id!r} not found") from None
        return job

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        job = await self._load(ctx, params.task_id)
        return await detailed(self.tenant_of(ctx), job)

    async def _cancel(
        self, ctx: ServerRequestContext[Any, Any], params: TaskParams
    ) -> dict[str, Any]:
        job = await self._load(ctx, params.task_id)
        # a job that ends meanwhile stays ended: cancellation is best-effort, an ack regardless
        if job["status"] not in TERMINAL:
            with contextlib.suppress(Conflict):
                await calls.run_sync(jobs.cancel, self.tenant_of(ctx), params.task_id)
        return {}

    async def _update(
        self, ctx: ServerRequestContext[Any, Any], params: UpdateParams
    ) -> dict[str, Any]:
        await self._load(ctx, params.task_id)
        return {}  # no task ever asks for input: every response is for an unknown key
