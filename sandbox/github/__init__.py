"""GitHub REST double: repository issues and pulls, `link` paging, x-ratelimit-*, OAuth
refresh.

Records (:mod:`.data`) are a pure function of (repository, number); :mod:`.listing` finds
any page of any filter in O(period + page); :mod:`.issues` serves the listings; every one
passes the gate of :mod:`.http` (latency/fault, User-Agent, auth, the primary and the
optional secondary rate limit, whose knobs live there); :mod:`.oauth` refreshes tokens;
:mod:`.writes` and :mod:`.comments` create and update issues and comments (found again by a
body marker in the listing), under the secondary content-creation limit.
"""

from __future__ import annotations

from fastapi import APIRouter

from sandbox.github import comments, http, issues, oauth, writes
from sandbox.github.data import is_closed, is_pull, labels_of
from sandbox.github.http import NAME
from sandbox.github.listing import descending, issue_segments, pull_segments, select

ROTATES_REFRESH_TOKENS = True  # GitHub App user tokens: every refresh returns a new ghr_

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])
for _part in (issues, oauth, writes, comments):
    router.include_router(_part.router)

__all__ = [
    "NAME",
    "ROTATES_REFRESH_TOKENS",
    "descending",
    "http",
    "is_closed",
    "is_pull",
    "issue_segments",
    "labels_of",
    "pull_segments",
    "router",
    "select",
]
