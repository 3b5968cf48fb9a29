"""/v1/accounts: connect a vendor account; secrets go in, never come out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from app.api.auth import tenant_id
from app.services import reauthorize as reauth
from app.store import accounts

router = APIRouter(prefix="/v1", tags=["accounts"])


@router.post("/accounts", status_code=201, summary="Connect a vendor account")
def create_account(req: accounts.AccountCreate, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return accounts.create_account(tenant, req)


@router.get("/accounts/{account_id}", summary="Account status (never its secrets)")
def get_account(account_id: str, tenant: str = Depends(tenant_id)) -> dict[str, Any]:
    return accounts.view(account_id, tenant)


@router.post(
    "/accounts/{account_id}/credentials",
    summary="Re-authorize an account: new credentials; its parked jobs resume",
    description="The body is a `credentials` object as in `POST /v1/accounts` (`oauth2` or "
    "`bearer`). The account becomes `active` (an active account's credentials are simply "
    "rotated), an `account.reactivated` event goes out if it needed re-authorization, and "
    "every job parked in `needs_reauth` resumes from its checkpoint.",
)
def post_credentials(
    account_id: str,
    credentials: Annotated[accounts.Credentials, Body()],
    tenant: str = Depends(tenant_id),
) -> dict[str, Any]:
    return reauth.reauthorize(tenant, account_id, credentials)
