"""Project search: ``GET /rest/api/3/project/search``, the classic page bean (``startAt``,
``maxResults``, ``total``, ``isLast``, ``values``, ``nextPage``). ``orderBy`` key/name (±)
is honoured; other valid values sort by key."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

from sandbox.common import sandbox_state
from sandbox.jira.data import project
from sandbox.jira.http import base_url, error_response, gate, int_param
from sandbox.jira.jql import JqlError

DEFAULT_MAX_RESULTS = 50
MAX_RESULTS = 100
ORDER_BY = re.compile(
    r"^[+-]?(category|key|name|owner|issueCount|lastIssueUpdatedDate|archivedDate|"
    r"deletedDate)$"
)
BAD_ORDER = (
    "Invalid orderBy value '{order}'. Valid values are category, key, name, owner, "
    "issueCount, lastIssueUpdatedDate, archivedDate and deletedDate, optionally prefixed "
    "with + or -."
)
KEYS_WITH_NEXT = ("self", "nextPage", "maxResults", "startAt", "total", "isLast", "values")

router = APIRouter()


def _window(params: QueryParams) -> tuple[int, int, bool]:
    """(startAt, maxResults, descending) of a project search (``JqlError``: a 400)."""
    start = int_param(params.get("startAt"), "startAt", 0)
    size = int_param(params.get("maxResults"), "maxResults", DEFAULT_MAX_RESULTS)
    if start < 0 or size < 0:
        raise JqlError("startAt and maxResults must not be negative.")
    order = params.get("orderBy", "key")
    if not ORDER_BY.match(order):
        raise JqlError(BAD_ORDER.format(order=order))
    return start, min(size, MAX_RESULTS), order.startswith("-") and order[1:] in ("key", "name")


@router.get("/rest/api/3/project/search")
async def project_search(request: Request) -> Response:
    """Classic page bean; ``orderBy`` key/name (±) honoured, other valid values sort by key."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    params = request.query_params
    try:
        start, size, descending = _window(params)
    except JqlError as exc:
        return error_response(400, [str(exc)], headers)
    total = sandbox_state(request).config.volume("jira.projects")
    stop = min(total, start + size)
    base = base_url(request)
    values = [project(base, total - k if descending else k + 1) for k in range(start, stop)]
    query = [(k, v) for k, v in params.multi_items() if k not in ("startAt", "maxResults")]
    link = f"{base}/rest/api/3/project/search?"
    body: dict[str, Any] = {
        "self": link + urlencode([*query, ("maxResults", size), ("startAt", start)]),
        "maxResults": size,
        "startAt": start,
        "total": total,
        "isLast": stop >= total,
        "values": values,
    }
    if stop < total:
        body["nextPage"] = link + urlencode([*query, ("maxResults", size), ("startAt", stop)])
        body = {k: body[k] for k in KEYS_WITH_NEXT}
    return JSONResponse(body, headers=headers)
