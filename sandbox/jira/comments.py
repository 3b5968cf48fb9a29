"""Jira Cloud issue comments: ``POST /rest/api/3/issue/{key}/comment`` (201, the comment) and
``GET /rest/api/3/issue/{key}/comment`` (the page bean ``startAt``/``maxResults``/``total``/
``comments``, oldest first so the newest is last; ``orderBy=-created`` reverses;
``expand=properties`` adds each comment's ``properties: [{"key","value"}]``).

A comment may carry entity properties on create (``"properties": [{"key","value"}]``), which is
where a client puts its operation marker and looks for it before resending. Seeded issues
take comments too. A body that is not an ADF document is a 400 in Jira's shape, as is an empty
one ("Comment body can not be empty!", the sandbox's wording).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.jira import stored
from sandbox.jira.http import NAME, base_url, error_response, gate, int_param
from sandbox.jira.jql import JqlError
from sandbox.jira.writes import NOT_FOUND, Outcome, commit, invalid, missing, write
from sandbox.jira.writes import _properties as properties_of

router = APIRouter()
DEFAULT_MAX_RESULTS = 5000


def _check(request: Request, key: str, doc: dict[str, Any]) -> Outcome | None:
    if stored.exists(sandbox_state(request), key) is None:
        return missing()
    body = doc.get("body")
    if body is None or body == "":
        return invalid({"comment": "Comment body can not be empty!"})
    if not stored.is_adf(body):
        return invalid({"comment": stored.ADF_HINT})
    if properties_of(doc) is None:
        return invalid({"properties": "Properties must be a list of {key, value} objects."})
    return None


def _new(request: Request, key: str, doc: dict[str, Any]) -> dict[str, Any]:
    state = sandbox_state(request)
    iid, issue_key = stored.exists(state, key) or (key, key)
    cid = str(stored.COMMENT_ID_BASE + state.writes.next_number(f"{NAME}:comments"))
    base, stamp = base_url(request), stored.now()
    comment = {"self": f"{base}/rest/api/3/issue/{iid}/comment/{cid}", "id": cid,
               "author": stored.viewer(base), "body": doc["body"],
               "updateAuthor": stored.viewer(base), "created": stamp, "updated": stamp,
               "jsdPublic": True}  # fmt: skip
    return {"_oid": f"{issue_key}/comment/{cid}", "_issue": issue_key, "comment": comment,
            "properties": properties_of(doc) or {}}  # fmt: skip


@router.post("/rest/api/3/issue/{key}/comment")
async def add_comment(request: Request, key: str) -> Response:
    def execute(doc: dict[str, Any]) -> Outcome:
        obj = _new(request, key, doc)
        commit(request, obj, "create", doc)
        return 201, obj["comment"], True

    return await write(request, lambda doc: _check(request, key, doc), execute)


def _shown(obj: dict[str, Any], expand: bool) -> dict[str, Any]:
    out = dict(obj["comment"])
    if expand:
        out["properties"] = stored.properties_list(obj["properties"])
    return out


@router.get("/rest/api/3/issue/{key}/comment")
async def list_comments(request: Request, key: str) -> Response:
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    state, params = sandbox_state(request), request.query_params
    found = stored.exists(state, key)
    if found is None:
        return error_response(404, [NOT_FOUND], headers)
    try:
        start = int_param(params.get("startAt"), "startAt", 0)
        size = int_param(params.get("maxResults"), "maxResults", DEFAULT_MAX_RESULTS)
    except JqlError as exc:
        return error_response(400, [str(exc)], headers)
    rows = state.writes.select(NAME, lambda o: o.get("_issue") == found[1])
    rows.sort(key=lambda o: int(o["comment"]["id"]), reverse=params.get("orderBy") == "-created")
    expand = "properties" in params.get("expand", "").split(",")
    page = [_shown(o, expand) for o in rows[max(0, start) : max(0, start) + max(0, size)]]
    body = {"startAt": start, "maxResults": size, "total": len(rows), "comments": page}
    return JSONResponse(body, headers=headers)
