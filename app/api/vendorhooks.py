"""Inbound vendor webhooks (no API key: the vendor's signature is the credential) and their
per-account setup."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from app.api.auth import tenant_id
from app.kernel.settings import get_settings
from app.services import vendorhooks
from connectors.inbound import Delivery

router = APIRouter(prefix="/v1", tags=["vendor webhooks"])

RECEIVED: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, wrong or stale signature, or no secret for the account"},
    404: {"description": "toolqueue takes no webhooks from this vendor"},
}


async def _delivery(request: Request) -> Delivery:
    public = get_settings().public_url
    url = str(request.url)
    if public:  # signatures over the URL use the one the vendor called, not the proxied one
        query = f"?{request.url.query}" if request.url.query else ""
        url = public.rstrip("/") + request.url.path + query
    headers = {k.lower(): v for k, v in request.headers.items()}
    return Delivery(request.method, url, headers, await request.body())


@router.post(
    "/vendor-webhooks/{vendor}/{account_id}",
    summary="A vendor's webhook for one account: verified, de-duplicated, acted on",
    responses=RECEIVED,
)
async def receive_for_account(vendor: str, account_id: str, request: Request) -> dict[str, Any]:
    delivery = await _delivery(request)
    return await run_in_threadpool(vendorhooks.receive, vendor, account_id, delivery)


@router.post(
    "/vendor-webhooks/{vendor}",
    summary="A vendor's webhook for the accounts claiming the `ref` its payload names",
    description="Every account that claimed the ref (up to 20, one per tenant) has its secret "
    "tried; the delivery goes to the ones whose secret verifies it, and a delivery none "
    "verifies is refused (401) the same way whether or not anyone claimed the ref.",
    responses=RECEIVED,
)
async def receive(vendor: str, request: Request) -> dict[str, Any]:
    delivery = await _delivery(request)
    return await run_in_threadpool(vendorhooks.receive, vendor, None, delivery)


@router.put(
    "/accounts/{account_id}/vendor-webhook",
    summary="Set the secret the vendor signs this account's webhooks with; the account view",
    description="Async vendor jobs (Shopify bulk operations) of an account with a secret are "
    "resumed by the vendor's completion webhook and polled only as a fallback.",
)
def configure(
    account_id: str, cfg: vendorhooks.VendorWebhookConfig, tenant: str = Depends(tenant_id)
) -> dict[str, Any]:
    return vendorhooks.configure(tenant, account_id, cfg)


@router.get("/accounts/{account_id}/vendor-events", summary="The account's inbound events")
def list_events(
    account_id: str,
    limit: int = Query(100, ge=1, le=vendorhooks.EVENT_LOG_MAX),
    tenant: str = Depends(tenant_id),
) -> dict[str, Any]:
    return {"events": vendorhooks.events(tenant, account_id, limit)}
