"""Bearer API keys: every /v1 route runs as the key's tenant."""

from __future__ import annotations

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.errors import Unauthorized
from app.tenants import authenticate

_bearer = HTTPBearer(auto_error=False, description="API key from `toolqueue tenants create`")


def tenant_id(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> str:
    if creds is None or creds.scheme.lower() != "bearer":
        raise Unauthorized("send `Authorization: Bearer <api_key>`")
    return authenticate(creds.credentials)
