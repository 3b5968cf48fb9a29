"""Bearer API keys: every /v1 route runs as the key's tenant, within the tenant's API limit."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api import throttle
from app.kernel.errors import Unauthorized
from app.store.apikeys import Principal, authenticate

_bearer = HTTPBearer(auto_error=False, description="API key from `toolqueue tenants create`")


def principal(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """Authenticate, then spend one request of the tenant's limit (here, so it is counted once
    per request and only for known tenants: a bad key is a 401 that costs nobody quota)."""
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthorized("send `Authorization: Bearer <api_key>`")
    who = authenticate(creds.credentials)
    quota = throttle.take(who.tenant_id)
    if not quota.allowed:
        raise quota.refusal()
    request.scope[throttle.SCOPE_KEY] = quota.headers()
    return who


def tenant_id(who: Principal = Depends(principal)) -> str:
    """The key's tenant (FastAPI resolves `principal` once per request)."""
    return who.tenant_id
