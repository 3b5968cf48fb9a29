"""/v1/pipelines: a source, transform stages and a sink under one id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.auth import principal, tenant_id
from app.api.consent import Decide  # a decision's body, as for a job
from app.services import pipelineapprovals, pipelines
from app.store.apikeys import Principal
from app.work.pipelineplan import PipelineCreate

router = APIRouter(prefix="/v1", tags=["pipelines"])


class Rerun(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    from_stage: int = Field(
        ge=1, le=100, description="The stage to start at (1 = the first after the source)"
    )


@router.post(
    "/pipelines",
    status_code=202,
    summary="Run a pipeline: a source read, transform stages, a sink write",
    responses={422: {"description": "a definition that cannot run, the problem named"}},
)
def create_pipeline(
    spec: PipelineCreate, response: Response, who: Principal = Depends(principal)
) -> dict[str, Any]:
    out = pipelines.create(who, spec)
    response.headers["Location"] = out["location"]
    return out


@router.get("/pipelines", summary="The tenant's newest pipelines, a line each")
def list_pipelines(
    limit: int = Query(50, ge=1, le=500), tenant: str = Depends(tenant_id)
) -> dict[str, Any]:
    return {"pipelines": pipelines.list_pipelines(tenant, limit)}


@router.get("/pipelines/{pipeline_id}", summary="State and per-stage progress")
def get_pipeline(pipeline_id: str, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    """Per stage: records in, out, rejected (and dropped by a filter), its state, times and
    the job working on it; the pipeline's state log."""
    return pipelines.get(tenant, pipeline_id)


@router.post("/pipelines/{pipeline_id}/cancel", summary="Stop every stage")
def cancel_pipeline(pipeline_id: str, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return pipelines.cancel(tenant, pipeline_id)


@router.get("/pipelines/{pipeline_id}/deliveries", summary="Its ending webhook's attempts")
def get_deliveries(pipeline_id: str, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return pipelines.deliveries(tenant, pipeline_id)


@router.get("/pipelines/{pipeline_id}/rejected", summary="Rejected records, with stage and reason")
def list_rejected(
    pipeline_id: str,
    offset: int = Query(0, ge=0, le=10_000_000),
    limit: int = Query(50, ge=1, le=pipelines.REJECTED_PAGE_MAX),
    tenant: str = Depends(tenant_id),
) -> dict[str, Any]:
    return pipelines.rejected(tenant, pipeline_id, offset, limit)


@router.post(
    "/pipelines/{pipeline_id}/retry-rejected",
    status_code=202,
    summary="Run the rejected records again from the stages that rejected them",
)
def retry_rejected(pipeline_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
    return pipelines.retry_rejected(who, pipeline_id)


@router.post(
    "/pipelines/{pipeline_id}/rerun",
    status_code=202,
    summary="A new pipeline from a stage, with the records that entered it here",
)
def rerun(pipeline_id: str, body: Rerun, who: Principal = Depends(principal)) -> dict[str, Any]:
    return pipelines.rerun(who, pipeline_id, body.from_stage)


@router.get("/pipelines/{pipeline_id}/preview", summary="The first records the sink would write")
def preview(
    pipeline_id: str,
    limit: int = Query(pipelineapprovals.PREVIEW_MAX, ge=1, le=pipelineapprovals.PREVIEW_MAX),
    tenant: str = Depends(tenant_id),
) -> dict[str, Any]:
    """For a person deciding on a pipeline held for approval: what the sink would send, as it
    would send it, from the blocks queued before it."""
    return pipelineapprovals.preview(tenant, pipeline_id, limit)


@router.post("/pipelines/{pipeline_id}/approve", summary="Approve a pipeline's writes")
def approve(pipeline_id: str, body: Decide, who: Principal = Depends(principal)) -> dict[str, Any]:
    """Needs the `approve` scope (and, for the key that started it, policy `self_approve`)
    and the binding it shows: every sink job then writes, carrying this approval."""
    return pipelineapprovals.decide(
        who, pipeline_id, "approve", bound=body.binding, reason=body.reason
    )


@router.post("/pipelines/{pipeline_id}/reject", summary="Reject a pipeline's writes (cancelled)")
def reject(pipeline_id: str, body: Decide, who: Principal = Depends(principal)) -> dict[str, Any]:
    return pipelineapprovals.decide(
        who, pipeline_id, "reject", bound=body.binding, reason=body.reason
    )
