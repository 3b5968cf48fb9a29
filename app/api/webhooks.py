"""/v1/webhooks (the dead-letter list) and webhook-secret rotation; mounted through the jobs
router (`app.api.jobs`), under its /v1 prefix."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.api.auth import tenant_id
from app.kernel import signing as webhooks
from app.services import jobs
from app.store import tenants

router = APIRouter(tags=["webhooks"])


@router.post(
    "/tenants/me/webhook-secret/rotate",
    summary="A new webhook secret (shown once); the old one also signs during the overlap",
)
def rotate_secret(tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return tenants.rotate_webhook_secret(tenant)


@router.get("/webhooks/dead-letters", summary="Job events whose delivery gave up")
def list_dead_letters(tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return {"dead_letters": webhooks.dead_letters(tenant)}


@router.post(
    "/webhooks/dead-letters/{job_id}/replay",
    status_code=202,
    summary="Send a dead-lettered event again now; it leaves the list once delivered",
)
def replay_dead_letter(job_id: str, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    webhooks.dead_letter(tenant, job_id)  # 404 unless it is in the list
    return jobs.redeliver(tenant, job_id, manual="replay")
