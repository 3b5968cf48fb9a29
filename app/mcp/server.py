"""The MCP server (official `mcp` SDK, low-level `Server`): one tool per registry tool, generated
like `GET /v1/tools` (`app.toolschemas`), plus `job_status`, `job_result`, `job_wait` and
`job_cancel`, for keys with the `approve` scope `job_approve` and `job_reject`, and the pipeline
tools (`app.mcp.pipelinetools`: `pipeline_run`, `pipeline_status`, …).

Every request runs as the caller's API key (`app.store.apikeys.Principal`): `tools/list` shows
what the key may call, and a call is enqueued as that key, so its scopes, tool and account
lists and the policy apply exactly as over `/v1` (a refusal is a tool error the model reads).

A tool call starts a job and never waits for the vendor. A client that declares the tasks
extension gets a task handle (`app.mcp.tasks`); any other client gets a tool result carrying the
job handle, then fetches the outcome (or cancels the job) with the job tools.
"""

from __future__ import annotations

import functools
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
from app.mcp.pipelinetools import PIPELINE_HINTS, PIPELINE_TOOLS
from app.mcp.tasks import TasksExtension
from app.services import approvals, jobs, toolschemas
from app.store import spool
from app.store.apikeys import Principal

INSTRUCTIONS = (
    "Every tool except the job_* and pipeline_* tools starts a toolqueue job on "
    "a connected SaaS account and answers at once with its handle (or, with the tasks "
    "extension, a task): workers follow the vendor's pagination and rate limits. Fetch the "
    "outcome with job_wait(job_id, budget_s) or job_status/job_result; when job_wait's budget "
    "runs out it returns the records so far with `done: false` and a `continuation`: pass it to "
    "the next job_wait for the rest. job_cancel(job_id) stops a job. A result is at most "
    "131,072 bytes; when it is truncated, job_result(job_id, continuation) starts the job for "
    "the rest. A write the account's policy holds for a person waits in `awaiting_approval` "
    "(task status input_required) with its preview summary; nothing is written until a person "
    "with an approve-scoped key approves it. pipeline_run wires a source read, transform "
    "stages and a sink write under one id and answers at once; follow it with "
    "pipeline_status, and pipeline_rejected / pipeline_retry_rejected once it ends partly_done."
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


async def job_status(who: Principal, args: JobStatusArgs) -> CallToolResult:
    """Small by design (a few hundred bytes): what the agent pays for in context."""
    return calls.text_result(await calls.run_sync(jobs.brief, who.tenant_id, args.job_id))


async def job_result(who: Principal, args: JobResultArgs) -> CallToolResult:
    tenant = who.tenant_id
    if args.continuation is None:
        return calls.text_result(await calls.run_sync(jobs.result, tenant, args.job_id, args.block))
    job = await calls.run_sync(jobs.get, tenant, args.job_id)
    if job.get("continuation") != args.continuation:
        raise InvalidInput(
            f"that is not job {args.job_id}'s continuation (its truncated result carries it)",
            code="continuation_mismatch",
        )
    req = jobs.JobCreate(continuation=args.continuation)
    started = await calls.run_sync(jobs.enqueue, tenant, req, who)
    return calls.text_result({**started, "next": NEXT})


# job_wait's request (set by on_call_tool): its progress notifications go back on that request
_CALL: ContextVar[ServerRequestContext[Any, Any] | None] = ContextVar("mcp_call", default=None)
PROGRESS_EVERY_S = 2.0  # under common clients' request timeouts (OpenAI Agents SDK: 5 s)


async def job_wait(who: Principal, args: JobWaitArgs) -> CallToolResult:
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
    tenant = who.tenant_id
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


async def job_cancel(who: Principal, args: JobStatusArgs) -> CallToolResult:
    return calls.text_result(await calls.run_sync(jobs.cancel, who.tenant_id, args.job_id))


class JobDecideArgs(JobStatusArgs):
    binding: str | None = Field(
        None,
        max_length=64,
        description="The job's `approval.binding` you reviewed (job_status shows it): the "
        "decision applies only if the job is still exactly what was previewed",
    )
    reason: str = Field(
        "", max_length=approvals.REASON_MAX, description="Recorded in the audit log"
    )


async def job_approve(who: Principal, args: JobDecideArgs) -> CallToolResult:
    return await _decide(who, args, "approve")


async def job_reject(who: Principal, args: JobDecideArgs) -> CallToolResult:
    return await _decide(who, args, "reject")


async def _decide(
    who: Principal, args: JobDecideArgs, decision: approvals.Decision
) -> CallToolResult:
    """`POST /v1/jobs/{id}/approve|reject` as a tool: the same rules (the `approve` scope, the
    job's account, not the key's own job unless policy `self_approve`, the binding)."""
    decide = functools.partial(approvals.decide, bound=args.binding, reason=args.reason)
    view = await calls.run_sync(decide, who, who.tenant_id, args.job_id, decision)
    return calls.text_result(view)


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
# only for keys holding the `approve` scope: the fallback for clients without elicitation
DECIDE_TOOLS: dict[str, tuple[type[BaseModel], Any, str]] = {
    "job_approve": (
        JobDecideArgs,
        job_approve,
        "Approve a toolqueue job awaiting approval (status `awaiting_approval`, or task status "
        "`input_required`): it resumes and makes the writes its preview showed. Pass the "
        "`approval.binding` you reviewed. Needs an `approve`-scoped key; the key that started "
        "the job may approve it only if the policy allows self-approval.",
    ),
    "job_reject": (
        JobDecideArgs,
        job_reject,
        "Reject a toolqueue job awaiting approval, with a reason: it ends `cancelled` "
        "(`approval_rejected`) and nothing is written.",
    ),
}
assert set(JOB_TOOLS) | set(DECIDE_TOOLS) | set(PIPELINE_TOOLS) == toolschemas.RESERVED_NAMES


def own_tools(who: Principal | None) -> dict[str, tuple[type[BaseModel], Any, str]]:
    """The server's own tools `who` gets (None: all of them). Every key gets the pipeline
    tools: what a pipeline needs depends on its definition, which `pipeline_run` checks."""
    if who is None or "approve" in who.scopes:
        return {**JOB_TOOLS, **DECIDE_TOOLS, **PIPELINE_TOOLS}
    return {**JOB_TOOLS, **PIPELINE_TOOLS}


def list_tools(who: Principal | None = None) -> list[Tool]:
    """The registry's tools `who` may call, under their function-safe names (the registry name
    is the title), then the job tools: a connector added once appears here, in /v1/tools and
    its formats, and each key sees what it sees there (None: everything)."""
    out = [
        Tool(
            name=toolschemas.safe_name(t.name),
            title=t.name,
            description=toolschemas.description(t),
            input_schema=toolschemas.input_schema(t),
            annotations=ToolAnnotations.model_validate(t.hints),
        )
        for t in registry().tools.values()
        if who is None or calls.visible(who, t)
    ]
    for name, (model, _, description) in own_tools(who).items():
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
    """The job tools touch only toolqueue (closed world); job_cancel and job_reject end a job
    for good (not an additive update), and doing it again changes nothing more. job_approve
    releases the job's vendor writes (open world; destructive as the writes it lets through).
    The pipeline tools' are `PIPELINE_HINTS`."""
    if name in PIPELINE_HINTS:
        return PIPELINE_HINTS[name]
    return ToolAnnotations(
        read_only_hint=name not in ("job_cancel", "job_approve", "job_reject"),
        destructive_hint=name in ("job_cancel", "job_approve", "job_reject"),
        idempotent_hint=True,
        open_world_hint=name == "job_approve",
    )


def build_server(who_of: calls.WhoResolver) -> Server[Any]:
    """One server for every tenant: each request's API key comes from `who_of`."""

    async def on_list_tools(
        ctx: ServerRequestContext[Any, Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=list_tools(who_of(ctx)))

    async def on_call_tool(
        ctx: ServerRequestContext[Any, Any], params: CallToolRequestParams
    ) -> CallToolResult:
        who, arguments = who_of(ctx), params.arguments or {}
        _CALL.set(ctx)  # job_wait reports progress on this request
        mine = own_tools(who)
        try:
            if params.name in mine:
                model, handler, _ = mine[params.name]
                try:
                    args = model.model_validate(arguments)
                except ValidationError as exc:
                    raise InvalidInput(calls.explain(exc), code="invalid_arguments") from None
                result: CallToolResult = await handler(who, args)
                return result
            tool = calls.lookup(params.name)
            if tool is None:
                raise calls.unknown_tool(params.name)
            handle = await calls.start(who, tool, arguments)
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
    tasks = TasksExtension(who_of)
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
    """`toolqueue mcp --stdio`: serve as `TOOLQUEUE_API_KEY` (its tenant, scopes and policy) on
    stdin/stdout (logs go to stderr)."""
    from app.store.apikeys import authenticate

    try:
        who = authenticate(os.environ.get("TOOLQUEUE_API_KEY", ""))
    except Unauthorized:
        sys.exit("error: set TOOLQUEUE_API_KEY to a toolqueue API key (toolqueue tenants create)")
    server = build_server(lambda ctx: who)

    async def serve() -> None:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())

    anyio.run(serve)
