"""The MCP server (official `mcp` SDK, low-level `Server`): one tool per registry tool, generated
like `GET /v1/tools` (`app.toolschemas`), plus `job_status`, `job_result`, `job_wait` and
`job_cancel`.

A tool call starts a job and never waits for the vendor. A client that declares the tasks
extension gets a task handle (`app.mcp.tasks`); any other client gets a tool result carrying the
job handle, then fetches the outcome (or cancels the job) with the job tools.
"""

from __future__ import annotations

import os
import sys
import time
from contextvars import ContextVar
from importlib import metadata
from typing import Any

import anyio
from mcp.server.context import ServerRequestContext
from mcp.server.extension import compose_tool_call_handler
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    Tool,
    ToolAnnotations,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.kernel.errors import InvalidInput, ToolqueueError, Unauthorized
from app.kernel.registry import registry
from app.kernel.states import TERMINAL
from app.mcp import calls
from app.mcp.tasks import TasksExtension
from app.services import jobs, toolschemas
from app.store import spool

INSTRUCTIONS = (
    "Every tool except job_status, job_result, job_wait and job_cancel starts a toolqueue job on "
    "a connected SaaS account and answers at once with its handle (or, with the tasks "
    "extension, a task): workers follow the vendor's pagination and rate limits. Fetch the "
    "outcome with job_wait(job_id, budget_s) or job_status/job_result; when job_wait's budget "
    "runs out it returns the records so far with `done: false` and a `continuation`: pass it to "
    "the next job_wait for the rest. job_cancel(job_id) stops a job. A result is at most "
    "131,072 bytes; when it is truncated, job_result(job_id, continuation) starts the job for "
    "the rest."
)
NEXT = (
    "The job runs in the background. job_wait(job_id, budget_s<=60) waits for it and returns the "
    "result (or, when the budget runs out, the records so far and a `continuation` for the next "
    "job_wait); job_status(job_id) shows its state; job_result(job_id) reads the result once it "
    "has ended; job_cancel(job_id) stops it."
)
MCP_CAP = 131072  # a tool result's text, like a result body
WAIT_MORE = "budget spent: call job_wait again with this `continuation` for the records after these"


class JobStatusArgs(BaseModel):
    """A job of this API key's tenant."""

    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(min_length=1, max_length=200, description="From a tool call's handle")


class JobResultArgs(JobStatusArgs):
    continuation: str | None = Field(
        None,
        max_length=200,
        description="The job's `continuation` (from its truncated result): start the job for the "
        "records that follow and return that job's handle instead of this result",
    )
    block: int = Field(0, ge=0, le=1_000_000, description="Export block (delivery `blocks`)")


class JobWaitArgs(JobStatusArgs):
    budget_s: float = Field(
        30, gt=0, le=jobs.MAX_WAIT_S, description="Hard wall-clock budget in seconds (at most 60)"
    )
    continuation: str | None = Field(
        None,
        max_length=200,
        description="The `continuation` of an earlier job_wait that returned `done: false`: "
        "return only the records after the ones it already gave",
    )


async def job_status(tenant: str, args: JobStatusArgs) -> CallToolResult:
    """Small by design (a few hundred bytes): what the agent pays for in context."""
    return calls.text_result(await calls.run_sync(jobs.brief, tenant, args.job_id))


async def job_result(tenant: str, args: JobResultArgs) -> CallToolResult:
    if args.continuation is None:
        return calls.text_result(await calls.run_sync(jobs.result, tenant, args.job_id, args.block))
    job = await calls.run_sync(jobs.get, tenant, args.job_id)
    if job.get("continuation") != args.continuation:
        raise InvalidInput(
            f"that is not job {args.job_id}'s continuation (its truncated result carries it)",
            code="continuation_mismatch",
        )
    req = jobs.JobCreate(continuation=args.continuation)
    return calls.text_result({**await calls.run_sync(jobs.enqueue, tenant, req), "next": NEXT})


# job_wait's request (set by on_call_tool): its progress notifications go back on that request
_CALL: ContextVar[ServerRequestContext[Any, Any] | None] = ContextVar("mcp_call", default=None)
PROGRESS_EVERY_S = 2.0  # under common clients' request timeouts (OpenAI Agents SDK: 5 s)


async def job_wait(tenant: str, args: JobWaitArgs) -> CallToolResult:
    """Long-poll (the job's state channel, no polling) until the job ends or the budget is spent;
    then the result body (with `continuation`: the records after it, a block at a time), or the
    job's current state, `progress` and the records spooled so far with `done: false` and the
    `continuation` to pass next. Every body is one spool block's records under the cap.

    A call carrying `_meta.progressToken` hears `notifications/progress` every
    PROGRESS_EVERY_S while it waits (progress: seconds waited of the budget, which only grows as
    the spec wants; message: the job's state and progress), so a client that resets its timeout
    on progress can wait longer than that timeout."""
    after = args.continuation
    if after is not None and after.startswith(spool.CONTINUATION_PREFIX):
        raise InvalidInput(
            "that is a job continuation from a truncated result: job_result(job_id, "
            "continuation) starts the job for the records after it; job_wait takes the "
            "`continuation` of an earlier job_wait",
            code="invalid_continuation",
        )
    jobs.parse_after(after)  # a malformed one fails now, not after the wait
    started = time.monotonic()
    deadline, call = started + args.budget_s, _CALL.get()
    job = await calls.run_sync(jobs.get, tenant, args.job_id)
    while job["status"] not in TERMINAL and (left := deadline - time.monotonic()) > 0:
        if call is not None:
            await _progress(call, job, time.monotonic() - started, args.budget_s)
        await jobs.changed(args.job_id, job["status"], min(left, PROGRESS_EVERY_S))
        job = await calls.run_sync(jobs.get, tenant, args.job_id)
    if job["status"] in TERMINAL and after is None:
        return calls.text_result(await calls.run_sync(jobs.result, tenant, args.job_id))
    body, done = await calls.run_sync(jobs.partial, tenant, args.job_id, after or "p:0.0")
    if after is None and done:  # it ended between the two reads: the result, as if in time
        return calls.text_result(await calls.run_sync(jobs.result, tenant, args.job_id))
    if not done:  # the hint to follow the continuation, when it still fits
        extra = b',"next":' + spool.dumps(WAIT_MORE).encode()
        if len(body) + len(extra) <= MCP_CAP:
            body = body[:-1] + extra + b"}"
    return calls.text_result(body)


async def _progress(
    call: ServerRequestContext[Any, Any], job: dict[str, Any], waited: float, budget: float
) -> None:
    """One `notifications/progress` on the waiting request (a no-op without a progressToken)."""
    p = job["progress"]
    message = (
        f"job {job['status']}: {p['pages']} pages, {p['records']} records so far; "
        f"{budget - waited:.0f}s of the wait left"
    )
    await call.session.report_progress(waited, budget, message)


async def job_cancel(tenant: str, args: JobStatusArgs) -> CallToolResult:
    return calls.text_result(await calls.run_sync(jobs.cancel, tenant, args.job_id))


JOB_TOOLS: dict[str, tuple[type[BaseModel], Any, str]] = {
    "job_status": (
        JobStatusArgs,
        job_status,
        "A toolqueue job's state, progress, `retry_at` and the latest reason (a few hundred "
        "bytes), its `error` once failed and `continuation` once truncated.",
    ),
    "job_result": (
        JobResultArgs,
        job_result,
        "A finished job's result body (at most 131,072 bytes; `truncated` with a `continuation` "
        "when there is more). With `continuation`: start the job for the records that follow "
        "and return its handle.",
    ),
    "job_wait": (
        JobWaitArgs,
        job_wait,
        "Wait for a job with a hard wall-clock budget (at most 60 s): its result once it has "
        "ended, else its current state, progress and the records so far with `done: false` and "
        "a `continuation`: call again with it for the records that follow. The call lasts up to "
        "budget_s: keep budget_s under your client's request timeout (the OpenAI Agents SDK's "
        "is 5 s), or send `_meta.progressToken` and reset that timeout on progress: a progress "
        "notification (the job's state and progress) comes every 2 s while it waits.",
    ),
    "job_cancel": (
        JobStatusArgs,
        job_cancel,
        "Cancel a running toolqueue job (no further vendor calls); returns its state. A job "
        "that already succeeded or failed cannot be cancelled.",
    ),
}
assert set(JOB_TOOLS) == toolschemas.RESERVED_NAMES


def list_tools() -> list[Tool]:
    """The registry's tools under their function-safe names (the registry name is the title),
    then the job tools: a connector added once appears here, in /v1/tools and its formats."""
    out = [
        Tool(
            name=toolschemas.safe_name(t.name),
            title=t.name,
            description=toolschemas.description(t),
            input_schema=toolschemas.input_schema(t),
            annotations=ToolAnnotations.model_validate(t.hints),
        )
        for t in registry().tools.values()
    ]
    for name, (model, _, description) in JOB_TOOLS.items():
        out.append(
            Tool(
                name=name,
                description=description,
                input_schema=toolschemas.inline_refs(model.model_json_schema()),
                annotations=job_tool_annotations(name),
            )
        )
    return out


def job_tool_annotations(name: str) -> ToolAnnotations:
    """The job tools touch only toolqueue (closed world); job_cancel ends a job for good (not an
    additive update), and cancelling it again changes nothing more."""
    return ToolAnnotations(
        read_only_hint=name != "job_cancel",
        destructive_hint=name == "job_cancel",
        idempotent_hint=True,
        open_world_hint=False,
    )


def build_server(tenant_of: calls.TenantResolver) -> Server[Any]:
    """One server for every tenant: each request's tenant comes from `tenant_of`."""

    async def on_list_tools(
        ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=list_tools())

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams
    ) -> CallToolResult:
        tenant, arguments = tenant_of(ctx), params.arguments or {}
        _CALL.set(ctx)  # job_wait reports progress on this request
        try:
            if params.name in JOB_TOOLS:
                model, handler, _ = JOB_TOOLS[params.name]
                try:
                    args = model.model_validate(arguments)
                except ValidationError as exc:
                    raise InvalidInput(calls.explain(exc), code="invalid_arguments") from None
                result: CallToolResult = await handler(tenant, args)
                return result
            tool = calls.lookup(params.name)
            if tool is None:
                raise calls.unknown_tool(params.name)
            handle = await calls.start(tenant, tool, arguments)
        except ToolqueueError as exc:
            return calls.error_result(exc)
        return calls.text_result({**handle, "next": NEXT})

    server: Server[Any] = Server(
        "toolqueue",
        version=_version(),
        instructions=INSTRUCTIONS,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )
    # SEP-2133 extensions as MCPServer applies them, on the low-level server (whose tools
    # are generated, not decorated functions): methods, capability ad, tools/call wrapper
    tasks = TasksExtension(tenant_of)
    for binding in tasks.methods():
        server.add_request_handler(binding.method, binding.params_type, binding.handler)
    server.extensions[tasks.identifier] = tasks.settings()
    server.add_request_handler(
        "tools/call", CallToolRequestParams, compose_tool_call_handler([tasks], on_call_tool)
    )
    return server


def _version() -> str:
    try:
        return metadata.version("toolqueue")
    except metadata.PackageNotFoundError:
        return "0"


def run_stdio() -> None:
    """`toolqueue mcp --stdio`: serve one tenant, the owner of `TOOLQUEUE_API_KEY`, on
    stdin/stdout (logs go to stderr)."""
    from app.store.tenants import authenticate

    try:
        tenant = authenticate(os.environ.get("TOOLQUEUE_API_KEY", ""))
    except Unauthorized:
        sys.exit("error: set TOOLQUEUE_API_KEY to a toolqueue API key (toolqueue tenants create)")
    server = build_server(lambda ctx: tenant)

    async def serve() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(serve)
