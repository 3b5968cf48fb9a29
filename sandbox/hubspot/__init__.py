"""HubSpot CRM v3 double: contacts/companies/deals list and search, async CSV exports, OAuth
refresh; contact writes (:mod:`.writes`: batch upsert by email, create, update, archive) and
the reads that see them (:mod:`.reads`: one contact by id, batch read by id or email).

Records are a pure function of their index (:mod:`.data`); every endpoint passes the same
gate (:mod:`.http`: latency/fault, auth, scopes, then the rate limit). List calls
(:mod:`.lists`) share one rolling budget per portal and carry X-HubSpot-RateLimit-* headers;
search (:mod:`.search`) has its own per-second budget and a 10,000-result ceiling; exports
(:mod:`.exports`) move one state per status read; :mod:`.oauth` refreshes tokens.
"""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.hubspot import exports, oauth, reads, writes
from sandbox.hubspot.data import OBJECTS, company, contact, deal
from sandbox.hubspot.http import NAME
from sandbox.hubspot.lists import encode_after, list_endpoint
from sandbox.hubspot.search import search_endpoint

ROTATES_REFRESH_TOKENS = False  # HubSpot keeps the refresh token across refreshes

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])
router.include_router(writes.router)  # before the list routes: /batch/upsert is not an {id}
router.include_router(reads.router)
for _kind in OBJECTS.values():
    router.add_api_route(f"/crm/v3/objects/{_kind.name}", list_endpoint(_kind), methods=["GET"])
    router.add_api_route(
        f"/crm/v3/objects/{_kind.name}/search", search_endpoint(_kind), methods=["POST"]
    )
router.include_router(oauth.router)
router.include_router(exports.router)

_encode_after = encode_after  # the name the tests imported from the single-file module

__all__ = [
    "NAME",
    "ROTATES_REFRESH_TOKENS",
    "company",
    "contact",
    "deal",
    "encode_after",
    "router",
]
