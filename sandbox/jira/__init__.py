"""Jira Cloud REST v3 double: enhanced JQL search, paginated project search, 3LO refresh.

Records (:mod:`.data`) are a pure function of their index; :mod:`.jql` evaluates a tiny JQL
subset; :mod:`.search` pages issues by ``nextPageToken`` (no total), :mod:`.projects` pages
projects in the classic page bean; every data endpoint passes the gate of :mod:`.http`
(latency/fault, auth, the burst budget with X-RateLimit-* headers); :mod:`.oauth` refreshes
tokens; :mod:`.writes` and :mod:`.comments` create issues and comments (marked by entity
properties), move issues through a small workflow, and count every effect.
"""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.jira import comments, oauth, projects, search, writes
from sandbox.jira.http import NAME
from sandbox.jira.search import decode_token, encode_token

ROTATES_REFRESH_TOKENS = True  # Atlassian 3LO refresh tokens rotate on every refresh

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])
for _part in (search, projects, oauth, writes, comments):
    router.include_router(_part.router)

__all__ = ["NAME", "ROTATES_REFRESH_TOKENS", "decode_token", "encode_token", "router"]
