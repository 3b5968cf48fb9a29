"""Stripe double: customers and charges lists (:mod:`.reads`), customer writes with
``Idempotency-Key`` and the write faults (:mod:`.writes`), Stripe's error shapes, and Stripe
Connect's OAuth consent page and token endpoint (:mod:`.oauth`)."""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.stripe import oauth, reads, writes
from sandbox.stripe.reads import (
    CHARGE,
    CUSTOMER,
    NAME,
    ROTATES_REFRESH_TOKENS,
    Kind,
    charge,
    customer,
)

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])
for _part in (reads, writes, oauth):
    router.include_router(_part.router)

__all__ = [
    "CHARGE",
    "CUSTOMER",
    "NAME",
    "ROTATES_REFRESH_TOKENS",
    "Kind",
    "charge",
    "customer",
    "router",
]
