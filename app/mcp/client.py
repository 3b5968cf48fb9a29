"""A Python agent's side of the tasks extension: connect to toolqueue's `/mcp`, declare
`io.modelcontextprotocol/tasks`, and read task handles (`tasks/get`, `tasks/cancel`).

mcp 2.3 ships the `Extension` interfaces but no tasks client, so this is the small one an
agent (and `toolqueue demo`, and the tests) needs: `connect(api_url, api_key)` yields an SDK
`Client`; with `resolve=True` a task handle is polled to its result transparently, otherwise
`call_tool(..., allow_claimed=True)` returns the `CreateTaskResult` for the caller to poll.
A task that is `input_required` (a write awaiting approval) is polled on until a person
decides; if it asks this client (`inputRequests`: only when the client has an elicitation
callback and its key may approve), the callback answers it once through `tasks/update`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import httpx2
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp.client.session import ClientRequestContext, ClientSession, ElicitationFnT
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolResult,
    ElicitRequest,
    ErrorData,
    Request,
    RequestParams,
    Result,
)
from pydantic import ConfigDict, TypeAdapter

TASKS = "io.modelcontextprotocol/tasks"
# Task answers are read as plain JSON objects. The SDK's `send_request` takes a TypeAdapter as
# well as a model, but its TypeVar is bound to BaseModel, hence the `type-var` ignores below.
RAW = TypeAdapter(dict[str, Any])


class CreateTaskResult(Result):
    """SEP-2663's CreateTaskResult (`resultType: "task"`), as a client claims it."""

    model_config = ConfigDict(extra="allow")

    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    status_message: str | None = None
    created_at: str
    last_updated_at: str
    ttl_ms: int | None
    poll_interval_ms: int | None = None


class TaskIdParams(RequestParams):
    task_id: str


class GetTask(Request[TaskIdParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: TaskIdParams
    name_param = "taskId"  # SEP-2663: Mcp-Name carries the task id


class CancelTask(Request[TaskIdParams, Literal["tasks/cancel"]]):
    method: Literal["tasks/cancel"] = "tasks/cancel"
    params: TaskIdParams
    name_param = "taskId"


class UpdateParams(TaskIdParams):
    input_responses: dict[str, Any]


class UpdateTask(Request[UpdateParams, Literal["tasks/update"]]):
    method: Literal["tasks/update"] = "tasks/update"
    params: UpdateParams
    name_param = "taskId"


async def get_task(client: Client, task_id: str) -> dict[str, Any]:
    request = GetTask(params=TaskIdParams(task_id=task_id))
    return await client.session.send_request(request, RAW)  # type: ignore[type-var]


async def cancel_task(client: Client, task_id: str) -> dict[str, Any]:
    request = CancelTask(params=TaskIdParams(task_id=task_id))
    return await client.session.send_request(request, RAW)  # type: ignore[type-var]


async def update_task(
    session: ClientSession, task_id: str, responses: dict[str, Any]
) -> dict[str, Any]:
    """`tasks/update`: answers to a task's `inputRequests`, by key."""
    request = UpdateTask(params=UpdateParams(task_id=task_id, input_responses=responses))
    return await session.send_request(request, RAW)  # type: ignore[type-var]


async def answer_inputs(session: ClientSession, task: dict[str, Any], done: set[str]) -> None:
    """Answer the task's elicitations not answered yet through the session's elicitation
    callback, and send the answers with `tasks/update`."""
    responses: dict[str, Any] = {}
    for key, raw in (task.get("inputRequests") or {}).items():
        if key in done or raw.get("method") != "elicitation/create":
            continue
        request = ElicitRequest.model_validate(raw)
        ctx = ClientRequestContext(session=session, request_id=key)
        answer = await session.dispatch_input_request(ctx, request)
        if isinstance(answer, ErrorData):
            raise MCPError.from_error_data(answer)
        responses[key] = answer.model_dump(by_alias=True, mode="json", exclude_none=True)
        done.add(key)
    if responses:
        await update_task(session, task["taskId"], responses)


class TasksClient(ClientExtension):
    """Declares the extension; a claimed task handle is polled to its end at the server's
    `pollIntervalMs` (at most `max_poll_s` apart), as `Client.call_tool` resolves claims."""

    identifier = TASKS

    def __init__(self, timeout_s: float = 600.0, max_poll_s: float = 0.5) -> None:
        self.timeout_s = timeout_s
        self.max_poll_s = max_poll_s

    def claims(self) -> Sequence[ResultClaim[Any]]:
        async def resolve(handle: CreateTaskResult, ctx: ClaimContext) -> CallToolResult:
            deadline, answered = time.monotonic() + self.timeout_s, set[str]()
            while True:
                request = GetTask(params=TaskIdParams(task_id=handle.task_id))
                task = await ctx.session.send_request(request, RAW)  # type: ignore[type-var]
                if task["status"] == "completed":
                    return CallToolResult.model_validate(task["result"])
                waiting = task["status"] in ("working", "input_required")
                if not waiting or time.monotonic() > deadline:
                    raise RuntimeError(f"task {handle.task_id} ended {task['status']}: {task}")
                if task["status"] == "input_required":
                    await answer_inputs(ctx.session, task, answered)
                await anyio.sleep(min(task.get("pollIntervalMs", 200) / 1000, self.max_poll_s))

        return (ResultClaim(result_type="task", model=CreateTaskResult, resolve=resolve),)


@asynccontextmanager
async def connect(
    api_url: str,
    api_key: str,
    *,
    tasks: bool = True,
    mode: str = "auto",
    elicitation: ElicitationFnT | None = None,
) -> AsyncIterator[Client]:
    """An SDK client on `<api_url>/mcp` as the API key (streamable HTTP); with `elicitation`
    it declares the elicitation capability and answers through that callback."""
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {api_key}"}, timeout=httpx2.Timeout(30, read=120)
    )
    transport = streamable_http_client(f"{api_url}/mcp", http_client=http)
    extensions = [TasksClient()] if tasks else None
    client = Client(transport, extensions=extensions, mode=mode, elicitation_callback=elicitation)
    async with http, client:
        yield client
