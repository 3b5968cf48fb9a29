"""/v1/accounts: connect a vendor account; secrets go in, never come out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app import accounts
from app.api.auth import tenant_id

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.post("/accounts", status_code=201, summary="Connect a vendor account")
def create_account(req: accounts.AccountCreate, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return accounts.create_account(tenant, req)


@router.get("/accounts/{account_id}", summary="Account status (never its secrets)")
def get_account(account_id: str, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return accounts.view(account_id, tenant)
