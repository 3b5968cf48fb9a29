"""/v1/jobs and /v1/tools."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from starlette.concurrency import run_in_threadpool

from app.api import webhooks
from app.api.auth import principal, tenant_id
from app.kernel.states import TERMINAL, JobState
from app.services import jobs, toolschemas
from app.store.apikeys import Principal

router = APIRouter(prefix="/v1", tags=["jobs"])

# the webhook routes ride on this router: app/api/main.py stays untouched
router.include_router(webhooks.router)

JOB_ID = {"max_length": 200}


@router.get("/tools", summary="Every tool, with the JSON schema of its args")
def list_tools(
    format: toolschemas.Format | None = Query(
        None,
        description="`openai` (Chat Completions `tools`) or `anthropic` (Messages `tools`): "
        "function definitions whose arguments are a POST /v1/jobs body without `tool`",
    ),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    """Only the tools this API key may call."""
    if format is None:
        return {"tools": jobs.tools(who)}
    # `tool_names` maps a function name back to the tool to POST /v1/jobs
    defs = toolschemas.definitions(format, who)
    shown = {d.get("name") or d["function"]["name"] for d in defs}
    names = {k: v for k, v in toolschemas.tool_names().items() if k in shown}
    return {"format": format, "tools": defs, "tool_names": names}


@router.post("/jobs", status_code=202, summary="Call a tool now; fetch the result later")
def create_job(
    req: jobs.JobCreate, response: Response, who: Principal = Depends(principal)
) -> dict[str, Any]:
    job = jobs.enqueue(who.tenant_id, req, who)
    response.headers["Location"] = f"/v1/jobs/{job['job_id']}"
    return job


@router.get("/jobs", summary="The tenant's newest jobs, a line each")
def list_jobs(
    state: JobState | None = Query(None, description="Only jobs in this state"),
    limit: int = Query(50, ge=1, le=500),
    tenant: str = Depends(tenant_id),
) -> dict[str, Any]:
    return {"jobs": jobs.list_jobs(tenant, state, limit)}


@router.get("/jobs/{job_id}/deliveries", summary="Webhook attempts: time, status, latency")
def get_deliveries(job_id: str, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return jobs.deliveries(tenant, job_id)


@router.post(
    "/jobs/{job_id}/deliveries/redeliver",
    status_code=202,
    summary="Send the ended job's webhook again now (same webhook-id, fresh timestamp)",
    responses={409: {"description": "not ended, or no callback_url"}},
)
def redeliver(job_id: str, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return jobs.redeliver(tenant, job_id)


@router.get("/jobs/{job_id}", summary="State, progress, history; `wait` long-polls")
async def get_job(
    job_id: str,
    wait: float = Query(
        0,
        ge=0,
        le=jobs.MAX_WAIT_S,
        description="Seconds to hold the answer until the job changes state (0–60)",
    ),
    tenant: str = Depends(tenant_id),
) -> dict[str, Any]:
    job = await run_in_threadpool(jobs.get, tenant, job_id)
    if wait and job["status"] not in TERMINAL and await jobs.changed(job_id, job["status"], wait):
        job = await run_in_threadpool(jobs.get, tenant, job_id)
    return job


@router.get("/jobs/{job_id}/history", summary="The job's whole state log, a page at a time")
def get_history(
    job_id: str,
    offset: int = Query(0, ge=0, le=10_000_000, description="Entries to skip, oldest first"),
    limit: int = Query(100, ge=1, le=jobs.HISTORY_PAGE_MAX),
    tenant: str = Depends(tenant_id),
) -> dict[str, Any]:
    """A job view carries only its newest entries (`history`, `history_total`); this is the
    rest, with `next_offset` while there is more. Alike consecutive entries (a run of pacing
    waits, of polls) are one entry with `count` and `last_at`."""
    return jobs.history(tenant, job_id, offset, limit)


@router.get(
    "/jobs/{job_id}/result",
    summary="The result body (≤ 131,072 bytes), or export block `block`",
    description="Without `after`: the ended job's result body (or export block `block`); "
    "409 `job_not_finished` while it runs.\n\n"
    "With `after` (a partial read, also while the job runs): the records spooled so far "
    "after that point, at most one block of them, with `done`, the job's `progress` and its "
    "current `status`. Start with `after=p:0.0`; while `done` is false, pass the body's "
    "`continuation` (`p:<block>.<run>`) as the next `after`. When `done` is true the job has "
    "ended and every record has been read (a `continuation` there is the job's own: POST it "
    "to /v1/jobs for the records after a truncated result). `block` is ignored with `after`; "
    "a malformed `after` is a 422 `invalid_continuation`.",
    responses={
        200: {"content": {"application/json": {}}},
        409: {"description": "not finished (without `after`)"},
    },
)
def get_result(
    job_id: str,
    block: int = Query(0, ge=0, le=1_000_000),
    after: str | None = Query(
        None,
        description="A partial cursor `p:<block>.<run>` (`p:0.0`: from the start): read the "
        "records spooled so far after it, while the job runs",
    ),
    tenant: str = Depends(tenant_id),
) -> Response:
    if after is not None:
        body, _ = jobs.partial(tenant, job_id, after)
        return Response(body, media_type="application/json")
    return Response(jobs.result(tenant, job_id, block), media_type="application/json")


@router.post("/jobs/{job_id}/cancel", summary="Stop further steps")
def cancel_job(job_id: str, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return jobs.cancel(tenant, job_id)
