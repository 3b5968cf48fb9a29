"""Zendesk Support double: ticket listings, OAuth refresh and rate headers (:mod:`.reads`);
ticket writes with ``Idempotency-Key`` and the write faults (:mod:`.writes`)."""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.zendesk import reads, writes
from sandbox.zendesk.reads import NAME, ROTATES_REFRESH_TOKENS, decode_cursor, encode_cursor, ticket

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])
for _part in (reads, writes):
    router.include_router(_part.router)

__all__ = ["NAME", "ROTATES_REFRESH_TOKENS", "decode_cursor", "encode_cursor", "router", "ticket"]
