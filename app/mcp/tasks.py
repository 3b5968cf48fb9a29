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
`tools/call` returns); `cancelled` → `cancelled` (the message names why: `approval_rejected`,
`approval_expired`, …).

`awaiting_approval` (a write policy holds for a person) → `input_required`, the message
summarising the preview and saying how a person approves. The input the task asks for is an
approval, so it is asked (`inputRequests`: one form-mode `elicitation/create`, keyed by the
binding it decides) only of a client that declared form elicitation *and* whose API key may
decide the job (`approvals.may_decide`: the `approve` scope, the account, and not its own job
unless policy `self_approve`): the agent's client answering is the agent's key approving. Its
`tasks/update` answer goes through `approvals.decide` under the same binding rule as
`POST /v1/jobs/{id}/approve`. Anyone else's task just says `input_required` until a person
decides; then it is `working` again, then `completed` (or `cancelled`).
"""

from __future__ import annotations

import contextlib
import functools
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
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    MissingRequiredClientCapabilityErrorData,
    RequestParams,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field, ValidationError

from app.kernel.errors import Conflict, NotFound, ToolqueueError
from app.kernel.settings import get_settings
from app.kernel.states import TERMINAL
from app.mcp import calls
from app.services import approvals, jobs
from app.store.apikeys import Principal
from app.store.spool import PREVIEW_COUNTS

IDENTIFIER = "io.modelcontextprotocol/tasks"
POLL_MS = 1000
MAX_POLL_MS = 60_000
APPROVAL_INPUT = "approval:"  # an inputRequests key: this prefix, then the binding it decides
ACTIONS = tuple(k for k in PREVIEW_COUNTS if k not in ("ops", "done_ops", "records"))
DECISION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "decision": {
            "type": "string",
            "title": "Decision",
            "description": "approve: make these writes now; reject: cancel the job, nothing "
            "is written",
            "enum": ["approve", "reject"],
        },
        "reason": {
            "type": "string",
            "title": "Reason",
            "description": "Recorded in the audit log",
            "maxLength": approvals.REASON_MAX,
        },
    },
    "required": ["decision"],
}


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
    elif status == "input_required":  # a person may decide any moment: not its expiry
        out["pollIntervalMs"] = POLL_MS
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
        err = job.get("error") or {}
        return (
            "cancelled",
            f"cancelled: {err['code']}: {err.get('message')}" if err else "cancelled",
        )
    if state == "awaiting_approval":
        return "input_required", awaiting_message(job)
    messages = {
        "queued": "queued: the first step has not started yet",
        "running": f"running: {so_far}",
        "waiting_rate_limit": f"waiting_rate_limit: the vendor's rate limit{until}; {so_far}",
        "waiting_vendor": f"waiting_vendor: the vendor's export is running{until}; {so_far}",
        "needs_reauth": f"needs_reauth: account {job['account_id']}'s refresh token was "
        f"rejected; re-authorize the account; {so_far}",
    }
    return "working", messages.get(state, f"{state}: {so_far}")


def awaiting_message(job: dict[str, Any]) -> str:
    """What the write would do, why it waits, until when, and how a person lets it through."""
    a, p, job_id = job.get("approval") or {}, job.get("preview") or {}, job["job_id"]
    counts = ", ".join(f"{p[k]} {k}" for k in ACTIONS if p.get(k)) or "no changes"
    records = f"{p.get('records', 0)} record{'' if p.get('records') == 1 else 's'}"
    return (
        f"awaiting_approval: {job['tool']} on account {job['account_id']} would make {counts} "
        f"({records}; GET /v1/jobs/{job_id}/preview shows each), held by "
        f"{a.get('reason', 'policy')}; cancelled unless decided by {a.get('expires_at')}. A "
        f"person with an `approve`-scoped API key decides: POST /v1/jobs/{job_id}/approve (or "
        f'/reject) with {{"binding": "{a.get("binding")}"}}, or the one-time link sent to the '
        "account's events_url. The key that started the job may not, unless policy "
        "`self_approve` allows it."
    )


def elicits(ctx: ServerRequestContext[Any, Any]) -> bool:
    """This request's client can show a form (an `elicitation: {}` without modes means form)."""
    caps = ctx.session.client_capabilities
    e = caps.elicitation if caps else None
    return e is not None and (e.form is not None or e.url is None)


def approval_request(job: dict[str, Any]) -> dict[str, Any]:
    """The `inputRequests` of a task awaiting approval: one form, keyed by its binding."""
    a = job.get("approval") or {}
    params = ElicitRequestFormParams(
        message=awaiting_message(job).split(" A person", 1)[0]
        + " Approve it, or reject it (nothing is written).",
        requested_schema=DECISION_SCHEMA,
    )
    request = ElicitRequest(params=params).model_dump(by_alias=True, mode="json", exclude_none=True)
    return {f"{APPROVAL_INPUT}{a.get('binding')}": request}


def decision_of(response: Any) -> tuple[approvals.Decision | None, str]:
    """An elicitation answer as a decision: accept → its `decision`, decline → reject,
    cancel → none (the task keeps waiting)."""
    try:
        answer = ElicitResult.model_validate(response)
    except ValidationError as exc:
        raise MCPError(code=INVALID_PARAMS, message=f"not an elicitation result: {exc}") from None
    content = answer.content or {}
    reason = str(content.get("reason") or "")
    if answer.action == "cancel":
        return None, reason
    if answer.action == "decline":
        return "reject", reason or "declined in an MCP elicitation"
    reason = reason or "answered an MCP elicitation"
    if content.get("decision") == "approve":
        return "approve", reason
    if content.get("decision") == "reject":
        return "reject", reason
    raise MCPError(code=INVALID_PARAMS, message='`decision` must be "approve" or "reject"')


def _poll_ms(job: dict[str, Any]) -> int:
    """A waiting job answers nothing new before `retry_at`: suggest polling then."""
    retry_at = job.get("retry_at")
    if not retry_at:
        return POLL_MS
    left_s = datetime.fromisoformat(retry_at.replace("Z", "+00:00")).timestamp() - time.time()
    return int(min(MAX_POLL_MS, max(POLL_MS, left_s * 1000)))


async def detailed(
    who: Principal, job: dict[str, Any], ctx: ServerRequestContext[Any, Any] | None = None
) -> dict[str, Any]:
    """A `tasks/get` answer: the Task plus its `result` or `error` once the job ended, or the
    approval asked of a client that can answer it and whose key may give it."""
    tenant = who.tenant_id
    out = task(job)
    if (
        out["status"] == "input_required"
        and ctx is not None
        and elicits(ctx)
        and await calls.run_sync(approvals.may_decide, who, tenant, job["job_id"])
    ):
        out["inputRequests"] = approval_request(job)
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

    def __init__(self, who_of: calls.WhoResolver) -> None:
        self.who_of = who_of

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
        who = self.who_of(ctx)
        try:
            handle = await calls.start(who, tool, params.arguments or {})
        except ToolqueueError as exc:
            return calls.error_result(exc)
        # the record exists once enqueue returns, so tasks/get resolves this id (SEP-2663)
        job = await calls.run_sync(jobs.get, who.tenant_id, handle["job_id"])
        return {"resultType": "task", **task(job)}

    async def _load(self, ctx: ServerRequestContext[Any, Any], task_id: str) -> dict[str, Any]:
        _require(ctx)
        try:
            job: dict[str, Any] = await calls.run_sync(
                jobs.get, self.who_of(ctx).tenant_id, task_id
            )
        except NotFound:
            raise MCPError(code=INVALID_PARAMS, message=f"task {task_id!r} not found") from None
        return job

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> dict[str, Any]:
        job = await self._load(ctx, params.task_id)
        return await detailed(self.who_of(ctx), job, ctx)

    async def _cancel(
        self, ctx: ServerRequestContext[Any, Any], params: TaskParams
    ) -> dict[str, Any]:
        job = await self._load(ctx, params.task_id)
        # a job that ends meanwhile stays ended: cancellation is best-effort, an ack regardless
        if job["status"] not in TERMINAL:
            with contextlib.suppress(Conflict):
                await calls.run_sync(jobs.cancel, self.who_of(ctx).tenant_id, params.task_id)
        return {}

    async def _update(
        self, ctx: ServerRequestContext[Any, Any], params: UpdateParams
    ) -> dict[str, Any]:
        """Answers to the approval a task asked for (`approval:<binding>`), decided as this
        request's key, bound to that binding; a response for any other key is ignored."""
        await self._load(ctx, params.task_id)
        who = self.who_of(ctx)
        for key, response in params.input_responses.items():
            if not key.startswith(APPROVAL_INPUT):
                continue
            decision, reason = decision_of(response)
            if decision is None:
                continue
            bound = key[len(APPROVAL_INPUT) :]
            decide = functools.partial(approvals.decide, bound=bound, reason=reason)
            try:
                await calls.run_sync(decide, who, who.tenant_id, params.task_id, decision)
            except ToolqueueError as exc:  # refused (403) or no longer applies (409)
                raise MCPError(code=INVALID_PARAMS, message=exc.message, data=exc.body()) from None
        return {}
