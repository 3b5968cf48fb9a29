"""GitHub issue comments: ``POST /repos/{o}/{r}/issues/{n}/comments`` (``{"body"}`` → 201, the
comment; a content-creating request, so it passes the secondary content limit of
:mod:`.writes`) and ``GET /repos/{o}/{r}/issues/{n}/comments`` (oldest first, ``page``/
``per_page`` with a ``link`` header). Seeded issues take comments; their seeded comment count
has no bodies, so only written comments are listed. A missing body is 422 ``missing_field``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.github.http import DOCS, NAME, error, gate
from sandbox.github.issues import DEFAULT_PER_PAGE, MAX_PER_PAGE, _int, _link
from sandbox.github.writes import (
    Outcome,
    api_base,
    commit,
    current,
    invalid,
    not_found,
    now,
    viewer,
    write,
)

router = APIRouter()
COMMENT_DOC = f"{DOCS}/issues/comments#create-an-issue-comment"
LIST_DOC = f"{DOCS}/issues/comments#list-issue-comments"
COMMENT_ID_BASE = 3_000_000_000


def _check(request: Request, owner: str, repo: str, n: int, doc: dict[str, Any]) -> Outcome | None:
    if current(request, owner, repo, n) is None:
        return not_found(COMMENT_DOC)
    body = doc.get("body")
    if body is None or body == "":
        return invalid("IssueComment", "body", "missing_field", COMMENT_DOC)
    if not isinstance(body, str):
        return invalid("IssueComment", "body", "invalid", COMMENT_DOC)
    return None


def _new(request: Request, issue: dict[str, Any], body: str) -> dict[str, Any]:
    state, api = sandbox_state(request), api_base(request)
    cid = COMMENT_ID_BASE + state.writes.next_number(f"{NAME}:comments")
    full, n, stamp = issue["_repo"], issue["number"], now()
    comment = {"url": f"{api}/repos/{full}/issues/comments/{cid}",
               "html_url": f"https://github.com/{full}/issues/{n}#issuecomment-{cid}",
               "issue_url": f"{api}/repos/{full}/issues/{n}", "id": cid,
               "node_id": f"IC_kwDO{cid}", "user": viewer(api), "created_at": stamp,
               "updated_at": stamp, "author_association": "OWNER", "body": body}  # fmt: skip
    return {"_oid": f"{issue['_oid']}/comments/{cid}", "_issue": issue["_oid"],
            "comment": comment}  # fmt: skip


@router.post("/repos/{owner}/{repo}/issues/{n}/comments")
async def add_comment(request: Request, owner: str, repo: str, n: int) -> Response:
    def execute(doc: dict[str, Any]) -> Outcome:
        obj = _new(request, current(request, owner, repo, n) or {}, doc["body"])
        commit(request, obj, "create", doc)
        return 201, obj["comment"], True

    return await write(request, True, lambda doc: _check(request, owner, repo, n, doc), execute)


@router.get("/repos/{owner}/{repo}/issues/{n}/comments")
async def list_comments(request: Request, owner: str, repo: str, n: int) -> Response:
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    found = current(request, owner, repo, n)
    if found is None:
        return error(404, "Not Found", LIST_DOC, headers)
    params = request.query_params
    per_page = _int(params.get("per_page"), DEFAULT_PER_PAGE)
    per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
    page = max(1, _int(params.get("page"), 1))
    rows = sandbox_state(request).writes.select(NAME, lambda o: o.get("_issue") == found["_oid"])
    rows.sort(key=lambda o: int(o["comment"]["id"]))
    body = [o["comment"] for o in rows[(page - 1) * per_page : page * per_page]]
    url = f"{api_base(request)}/repos/{owner}/{repo}/issues/{n}/comments"
    link = _link(request, url, per_page, page, max(1, -(-len(rows) // per_page)))
    return JSONResponse(body, headers={**headers, **({"link": link} if link else {})})
