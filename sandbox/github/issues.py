"""Listing endpoints: a repository's issues (pull requests included) and pull requests,
newest first, by ``owner/repo`` or by repository id (the form ``link`` headers use).

Pages: ``page``/``per_page`` (default 30, silently capped at 100). The ``link`` header
carries absolute URLs by repository id (``/repositories/{id}/issues?...&page=N``, as GitHub
does), keeps the caller's parameters and adds ``per_page``, and lists its rels in a seeded
order that varies from page to page; the last page has no rel="next", a single page no
``link`` at all. Issues the sandbox's writes created (:mod:`.writes`) are listed with the
seeded ones, first when newest first; ``creator=`` filters them (and, naming no seeded author,
leaves only them).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

from sandbox.common import sandbox_state
from sandbox.github import writes
from sandbox.github.data import (
    LOGINS,
    is_closed,
    is_pull,
    issue,
    labels_of,
    pull,
    repo_by_id,
    repo_id,
)
from sandbox.github.http import ISSUES_DOC, NAME, PULLS_DOC, error, gate
from sandbox.github.listing import Segment, descending, issue_segments, pull_segments, select
from sandbox.state import SandboxState

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100

router = APIRouter()


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _invalid(resource: str, field: str, doc: str, headers: dict[str, str]) -> JSONResponse:
    return error(
        422,
        "Validation Failed",
        doc,
        headers,
        errors=[{"resource": resource, "field": field, "code": "invalid"}],
    )


@dataclass(frozen=True)
class Listing:
    """A checked listing request."""

    state: str  # open | closed | all
    direction: str  # asc | desc
    per_page: int
    page: int
    labels: frozenset[str]  # casefolded; the pulls endpoint has no labels filter
    creator: str | None = None  # casefolded; issues only

    def wants(self, n: int) -> bool:
        if self.state != "all" and is_closed(n) != (self.state == "closed"):
            return False
        return self.labels <= {x.casefold() for x in labels_of(n)}

    def wants_written(self, o: dict[str, Any]) -> bool:
        if self.state != "all" and o["state"] != self.state:
            return False
        if self.creator and o["user"]["login"].casefold() != self.creator:
            return False
        return self.labels <= {x["name"].casefold() for x in o["labels"]}

    def seeded_pred(self) -> Callable[[int], bool]:
        """Seeded issues' filter: none match a creator no seeded issue has (the viewer); the
        sandbox does not evaluate ``creator`` on seeded issues otherwise."""
        if self.creator and self.creator not in {x.casefold() for x in LOGINS}:
            return lambda n: False
        return self.wants


def _listing(params: QueryParams, kind: str) -> Listing:
    """The request's filters and page (``ValueError`` names the invalid field)."""
    wanted_state = params.get("state", "open")
    if wanted_state not in ("open", "closed", "all"):
        raise ValueError("state")
    direction = params.get("direction", "desc")
    if direction not in ("asc", "desc"):
        raise ValueError("direction")
    per_page = _int(params.get("per_page"), DEFAULT_PER_PAGE)
    per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
    page = max(1, _int(params.get("page"), 1))
    labels = {x.strip().casefold() for x in params.get("labels", "").split(",") if x.strip()}
    creator = (params.get("creator") or "").casefold() or None if kind == "issues" else None
    return Listing(
        wanted_state,
        direction,
        per_page,
        page,
        frozenset(labels if kind == "issues" else ()),
        creator,
    )


def _records(
    state: SandboxState, api: str, full: str, rid: int, kind: str, q: Listing
) -> tuple[list[dict[str, Any]], int]:
    """The page's records, and how many match in all."""
    n_issues = state.config.volume(f"{NAME}.issues")
    n_pulls = state.config.volume(f"{NAME}.pulls")
    segments = (issue_segments if kind == "issues" else pull_segments)(n_issues, n_pulls)
    if q.direction == "desc":
        segments = descending(segments)
    if kind == "issues":
        return _issues_page(state, api, (full, rid), segments, q)
    numbers, total = select(segments, q.wants, (q.page - 1) * q.per_page, q.per_page)
    return [pull(api, full, rid, n) for n in numbers], total


def _issues_page(
    state: SandboxState, api: str, repo: tuple[str, int], segments: list[Segment], q: Listing
) -> tuple[list[dict[str, Any]], int]:
    """Written issues (numbered after the seeded ones) and seeded ones in one listing, the
    written first when newest first; a seeded issue shows its written version if it has one."""
    (full, rid), offset, size = repo, (q.page - 1) * q.per_page, q.per_page
    written = writes.listed(state, full, q.wants_written)
    pred = q.seeded_pred()
    if q.direction == "desc":
        head = written[offset : offset + size]
        numbers, total = select(segments, pred, max(0, offset - len(written)), size - len(head))
        tail: list[dict[str, Any]] = []
    else:
        head = []
        numbers, total = select(segments, pred, offset, size)
        start = max(0, offset - total)
        tail = written[::-1][start : start + size - len(numbers)]
    n_issues, n_pulls = state.config.volume(f"{NAME}.issues"), state.config.volume(f"{NAME}.pulls")
    seeded = [
        _overlay(state, full, n) or issue(api, full, rid, n, is_pull(n, n_issues, n_pulls))
        for n in numbers
    ]
    return head + seeded + tail, total + len(written)


def _overlay(state: SandboxState, full: str, n: int) -> dict[str, Any] | None:
    found = state.writes.get(NAME, writes.oid(full, n))
    return writes.shown(found) if found is not None else None


async def _list(
    request: Request, owner: str | None, repo: str | None, rid: int | None, kind: str
) -> Response:
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    doc = ISSUES_DOC if kind == "issues" else PULLS_DOC
    found = repo_by_id(rid) if rid is not None else (owner or "", repo or "")
    if found is None or found[0].lower() == "missing":
        return error(404, "Not Found", doc, headers)
    owner, repo = found
    rid = repo_id(owner, repo)
    try:
        q = _listing(request.query_params, kind)
    except ValueError as exc:
        return _invalid("Issue" if kind == "issues" else "PullRequest", str(exc), doc, headers)
    api = f"{str(request.base_url).rstrip('/')}/{NAME}"
    body, total = _records(sandbox_state(request), api, f"{owner}/{repo}", rid, kind, q)
    last = max(1, -(-total // q.per_page))
    link = _link(request, f"{api}/repositories/{rid}/{kind}", q.per_page, q.page, last)
    if link:
        headers["link"] = link
    return JSONResponse(body, headers=headers)


def _link(request: Request, url: str, per_page: int, page: int, last: int) -> str | None:
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "page"]
    if not any(k == "per_page" for k, _ in query):
        query.append(("per_page", str(per_page)))
    rels: list[tuple[str, int]] = []
    if page > 1:
        rels += [("prev", page - 1), ("first", 1)]
    if page < last:
        rels += [("next", page + 1), ("last", last)]
    if not rels:
        return None
    random.Random(f"{url}|{page}|{last}").shuffle(rels)  # seeded: varies, yet repeats
    return ", ".join(f'<{url}?{urlencode([*query, ("page", p)])}>; rel="{rel}"' for rel, p in rels)


# ---- endpoints ----------------------------------------------------------------------------


@router.get("/repos/{owner}/{repo}/issues")
async def list_issues(request: Request, owner: str, repo: str) -> Response:
    """Issues and pull requests of a repository, newest first; `state`, `labels`, paging."""
    return await _list(request, owner, repo, None, "issues")


@router.get("/repos/{owner}/{repo}/pulls")
async def list_pulls(request: Request, owner: str, repo: str) -> Response:
    """Pull requests of a repository, newest first; `state`, paging."""
    return await _list(request, owner, repo, None, "pulls")


@router.get("/repositories/{rid}/issues")
async def list_issues_by_id(request: Request, rid: int) -> Response:
    """The form GitHub's `link` headers use."""
    return await _list(request, None, None, rid, "issues")


@router.get("/repositories/{rid}/pulls")
async def list_pulls_by_id(request: Request, rid: int) -> Response:
    return await _list(request, None, None, rid, "pulls")
