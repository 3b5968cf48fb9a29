"""Clearbit Company API double: `GET /v2/companies/find?domain=` (:mod:`.companies`) over the
companies of :mod:`.data` (the HubSpot double's contact domains, two of them unknown)."""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.clearbit import companies
from sandbox.clearbit.companies import NAME, ROTATES_REFRESH_TOKENS
from sandbox.clearbit.data import PROFILES, UNKNOWN, company, known

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])
router.include_router(companies.router)

__all__ = ["NAME", "PROFILES", "ROTATES_REFRESH_TOKENS", "UNKNOWN", "company", "known", "router"]
