"""``/_sandbox``: unauthenticated controls for tests and the demo (never vendor-shaped)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from sandbox.common import sandbox_state
from sandbox.state import SandboxState

router = APIRouter(prefix="/_sandbox", tags=["sandbox"])


class MintRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: str
    client_id: str
    client_secret: str
    expires_in: int | None = None  # access-token lifetime; default: live token_ttl_s


class StaticTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: str
    token: str


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vendor: str
    refresh_token: str | None = None  # omitted: every refresh token of the vendor
    access_tokens: bool = False  # also every access token of the vendor (a deauthorization)


def _known(state: SandboxState, vendor: str) -> str:
    if vendor not in state.vendors:
        raise HTTPException(422, f"unknown vendor {vendor!r}; known: {list(state.vendors)}")
    return vendor


@router.get("/config")
def get_config(request: Request) -> dict[str, Any]:
    return sandbox_state(request).config.model_dump()


@router.post("/config")
def update_config(request: Request, changes: dict[str, Any] = Body(...)) -> dict[str, Any]:
    """Partial update of the live config; unknown keys and bad values are a 422."""
    try:
        return sandbox_state(request).update_config(changes).model_dump()
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        errors = exc.errors(include_url=False) if hasattr(exc, "errors") else str(exc)
        raise HTTPException(422, errors) from exc


@router.post("/reset")
def reset(request: Request) -> dict[str, bool]:
    """Clear log, rate windows, counters and every token (static ones too); keep config."""
    sandbox_state(request).reset()
    return {"ok": True}


@router.get("/requests")
def list_requests(
    request: Request, since: float | None = None, vendor: str | None = None
) -> list[dict[str, Any]]:
    return sandbox_state(request).requests(since, vendor)


@router.delete("/requests")
def clear_requests(request: Request) -> dict[str, bool]:
    sandbox_state(request).clear_requests()
    return {"ok": True}


@router.get("/stats")
def stats(request: Request) -> dict[str, Any]:
    """Counters: `requests`, `rate_limited`, per vendor `refresh_calls` (every token-endpoint
    call, faults included) and `refresh_reuse` (a rotated-out refresh token presented again)."""
    return sandbox_state(request).stats()


@router.post("/tokens")
def mint(request: Request, body: MintRequest) -> dict[str, Any]:
    """Create an account: registers the client and returns a fresh token pair."""
    state = sandbox_state(request)
    issued = state.mint(
        _known(state, body.vendor), body.client_id, body.client_secret, body.expires_in
    )
    return {
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "expires_in": issued.expires_in,
    }


@router.post("/static-token")
def static_token(request: Request, body: StaticTokenRequest) -> dict[str, bool]:
    """Register a never-expiring access token (private-app style)."""
    state = sandbox_state(request)
    state.add_static(_known(state, body.vendor), body.token)
    return {"ok": True}


@router.post("/revoke")
def revoke(request: Request, body: RevokeRequest) -> dict[str, int]:
    state = sandbox_state(request)
    vendor = _known(state, body.vendor)
    revoked = {"revoked": state.revoke(vendor, body.refresh_token)}
    if body.access_tokens:
        revoked["revoked_access"] = state.revoke_access(vendor)
    return revoked
