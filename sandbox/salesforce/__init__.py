"""Salesforce REST double: SOQL query with query locators, Bulk API 2.0 query jobs,
Sforce-Limit-Info, OAuth refresh.

Records (:mod:`.data`) are a pure function of their index; :mod:`.soql` reads a tiny SOQL
subset; :mod:`.query` pages REST queries through locators, :mod:`.bulk` runs bulk query jobs;
every data endpoint passes the gate of :mod:`.http` (latency/fault, auth, the request limit);
:mod:`.oauth` refreshes tokens; :mod:`.writes` upserts by External ID (one record, sObject
Collections), :mod:`.ingest` through Bulk API 2.0 ingest jobs into the same records.
"""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.salesforce import bulk, ingest, oauth, query, writes
from sandbox.salesforce.data import account_id, contact_id
from sandbox.salesforce.http import NAME
from sandbox.salesforce.oauth import ROTATES_REFRESH_TOKENS

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])
for _part in (query, oauth, bulk, writes, ingest):
    router.include_router(_part.router)

__all__ = ["NAME", "ROTATES_REFRESH_TOKENS", "account_id", "contact_id", "router"]
