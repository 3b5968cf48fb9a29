"""GitHub issue writes: ``POST /repos/{o}/{r}/issues`` (201, the issue), ``PATCH
/repos/{o}/{r}/issues/{n}`` (200; ``title``/``body``/``state``/``labels`` replace what was
there), ``GET /repos/{o}/{r}/issues/{n}``, ``GET /repos/{o}/{r}`` (the repository); comments
live in :mod:`.comments`.

GitHub has no idempotency key: a client puts a marker (``<!-- toolqueue:op=… -->``) in the body
and, before resending, lists ``GET /repos/{o}/{r}/issues?creator=<login>&state=all
&sort=created&direction=desc``: written issues are numbered after the seeded ones and listed
first (newest first), so a marker is found on page 1 (:func:`listed` feeds :mod:`.issues`).
Every issue is written by the token's user, the sandbox's one ``VIEWER``.

Errors in GitHub's shape: 422 ``{"message": "Validation Failed", "errors": [{"resource":
"Issue", "code": "missing_field"|"invalid", "field"}], "documentation_url"}``, 400 "Problems
parsing JSON", 404 "Not Found". Content-creating requests (the POSTs) also pass GitHub's
secondary content limit — "no more than 80 content-generating requests per minute and no more
than 500 content-generating requests per hour" (docs.github.com, "Rate limits for the REST API",
About secondary rate limits; the octokit/plugin-throttling.js#667 thread quotes the 500/hour):
live knobs ``github_content_per_minute`` (80) and ``github_content_per_hour`` (500), 0 turns
one off; a refusal is 403 with ``retry-after`` and the documented secondary-limit message.

Faults as for Zendesk: ``fail_before_commit_next`` (503, nothing written), ``drop_after_commit_*``
(committed, answer cut), ``write_latency_ms``. Effects: ``GET /github/_sandbox/effects``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.github.data import LABEL_COLORS, is_pull, issue, repo_id
from sandbox.github.http import DOCS, NAME, error, gate, secondary_body, unavailable
from sandbox.state import SandboxState
from sandbox.writes import Effect, EffectKind, delivered, effects_body, hold, reply

router = APIRouter()

Outcome = tuple[int, Any, bool]  # (status, body, committed)
Check = Callable[[dict[str, Any]], Outcome | None]
CREATE_DOC = f"{DOCS}/issues/issues#create-an-issue"
UPDATE_DOC = f"{DOCS}/issues/issues#update-an-issue"
VIEWER_LOGIN = "toolqueue-sandbox"
VIEWER_ID = 9_000_001


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def viewer(api: str) -> dict[str, Any]:
    """The user every sandbox token belongs to."""
    return {"login": VIEWER_LOGIN, "id": VIEWER_ID, "node_id": f"MDQ6VXNlcj{VIEWER_ID}",
            "avatar_url": f"https://avatars.githubusercontent.com/u/{VIEWER_ID}?v=4",
            "url": f"{api}/users/{VIEWER_LOGIN}", "html_url": f"https://github.com/{VIEWER_LOGIN}",
            "type": "User", "site_admin": False}  # fmt: skip


def api_base(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/{NAME}"


def oid(full: str, n: int) -> str:
    return f"{full.lower()}#{n}"


def invalid(resource: str, field: str, code: str, doc: str) -> Outcome:
    errors = [{"resource": resource, "code": code, "field": field}]
    body = {"message": "Validation Failed", "errors": errors, "documentation_url": doc}
    return 422, {**body, "status": "422"}, False


def not_found(doc: str) -> Outcome:
    return 404, {"message": "Not Found", "documentation_url": doc, "status": "404"}, False


def commit(request: Request, obj: dict[str, Any], kind: EffectKind, doc: dict[str, Any]) -> None:
    effect = Effect(kind, obj["_oid"], None, doc, time.time())
    sandbox_state(request).writes.commit(NAME, obj, effect)


def content_wait(state: SandboxState) -> float | None:
    """Take a slot of both content-creation windows, or the seconds until one frees."""
    cfg, now_m = state.config, time.monotonic()
    limits = ((f"{NAME}:content:60", cfg.github_content_per_minute, 60.0),
              (f"{NAME}:content:3600", cfg.github_content_per_hour, 3600.0))  # fmt: skip
    with state.lock:
        for key, limit, span in limits:
            window = state.windows[key]
            while window and window[0] <= now_m - span:
                window.popleft()
            if limit and len(window) >= limit:
                return window[0] + span - now_m
        for key, limit, _ in limits:
            if limit:
                state.windows[key].append(now_m)
    return None


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        doc = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


async def write(
    request: Request, creates: bool, check: Check, execute: Callable[[dict[str, Any]], Outcome]
) -> Response:
    """Gate, content limit (creates), fault, body, validation, latency, execution, drop."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    state = sandbox_state(request)
    if creates and (wait := content_wait(state)) is not None:
        retry = {"retry-after": str(max(1, math.ceil(wait)))}
        return JSONResponse(secondary_body(headers), status_code=403, headers={**headers, **retry})
    if state.take_fail_before_commit():
        return JSONResponse(unavailable(), status_code=503, headers=headers)
    doc = await _body(request)
    if doc is None:
        return error(400, "Problems parsing JSON", DOCS, headers)
    if (refused := check(doc)) is not None:
        return reply(refused[0], refused[1], headers)
    await hold(state.config.write_latency_ms)
    status, body, committed = execute(doc)
    return delivered(reply(status, body, headers), committed, state.take_drop_after_commit)


# ---- the repository's issues, seeded and written -------------------------------------------


def seeded_total(state: SandboxState) -> int:
    return state.config.volume(f"{NAME}.issues") + state.config.volume(f"{NAME}.pulls")


def current(request: Request, owner: str, repo: str, n: int) -> dict[str, Any] | None:
    """Issue ``n`` as it stands: a written version, else the seeded one (with ``_oid``)."""
    state = sandbox_state(request)
    full = f"{owner}/{repo}"
    if (found := state.writes.get(NAME, oid(full, n))) is not None:
        return found
    if owner.lower() == "missing" or not 1 <= n <= seeded_total(state):
        return None
    pull = is_pull(n, state.config.volume(f"{NAME}.issues"), state.config.volume(f"{NAME}.pulls"))
    seeded = issue(api_base(request), full, repo_id(owner, repo), n, pull)
    return {**seeded, "_oid": oid(full, n), "_repo": full.lower()}


def shown(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _label(api: str, full: str, name: str) -> dict[str, Any]:
    lid = 2_000_000 + sum(map(ord, name)) * 31 % 1_000_000
    return {"id": lid, "node_id": f"LA_kwDO{lid}", "url": f"{api}/repos/{full}/labels/{name}",
            "name": name, "color": LABEL_COLORS.get(name, "ededed"), "default": False,
            "description": None}  # fmt: skip


def apply(api: str, obj: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with the absolute fields of a create or an update."""
    out = {**obj, "updated_at": now()}
    for name in ("title", "body"):
        if name in doc:
            out[name] = doc[name]
    if "labels" in doc:
        out["labels"] = [_label(api, obj["_repo"], x) for x in doc["labels"]]
    if doc.get("state") in ("open", "closed") and doc["state"] != obj["state"]:
        closed = doc["state"] == "closed"
        out |= {"state": doc["state"], "closed_at": out["updated_at"] if closed else None,
                "state_reason": "completed" if closed else "reopened"}  # fmt: skip
    return out


def _new(request: Request, owner: str, repo: str, doc: dict[str, Any]) -> dict[str, Any]:
    state, api, full = sandbox_state(request), api_base(request), f"{owner}/{repo}"
    n = seeded_total(state) + state.writes.next_number(f"{NAME}:{full.lower()}")
    blank = issue(api, full, repo_id(owner, repo), n, False)
    blank |= {"user": viewer(api), "labels": [], "state": "open", "assignee": None,
              "assignees": [], "created_at": now(), "closed_at": None, "comments": 0,
              "state_reason": None, "body": None, "author_association": "OWNER",
              "_oid": oid(full, n), "_repo": full.lower()}  # fmt: skip
    return apply(api, blank, doc)


def listed(state: SandboxState, full: str, wants: Callable[[dict[str, Any]], bool]) -> list[dict]:
    """The written issues of ``full`` that ``wants`` accepts, newest first (``_`` keys gone)."""
    prefix = f"{full.lower()}#"
    found = state.writes.select(
        NAME, lambda o: o.get("_oid", "").startswith(prefix) and "number" in o and wants(o)
    )
    return [shown(o) for o in sorted(found, key=lambda o: -int(o["number"]))]


# ---- validation and endpoints -------------------------------------------------------------


def _check(doc: dict[str, Any], creating: bool) -> Outcome | None:
    where = CREATE_DOC if creating else UPDATE_DOC
    title = doc.get("title")
    if creating and (title is None or title == ""):
        return invalid("Issue", "title", "missing_field", where)
    if "title" in doc and not (isinstance(title, str | int) and str(title)):
        return invalid("Issue", "title", "invalid", where)
    if doc.get("body") is not None and not isinstance(doc["body"], str):
        return invalid("Issue", "body", "invalid", where)
    labels = doc.get("labels", [])
    if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        return invalid("Issue", "labels", "invalid", where)
    if "state" in doc and doc["state"] not in ("open", "closed"):
        return invalid("Issue", "state", "invalid", where)
    return None


@router.post("/repos/{owner}/{repo}/issues")
async def create_issue(request: Request, owner: str, repo: str) -> Response:
    def check(doc: dict[str, Any]) -> Outcome | None:
        return not_found(CREATE_DOC) if owner.lower() == "missing" else _check(doc, True)

    def execute(doc: dict[str, Any]) -> Outcome:
        obj = _new(request, owner, repo, {**doc, "title": str(doc["title"])})
        commit(request, obj, "create", doc)
        return 201, shown(obj), True

    return await write(request, True, check, execute)


@router.patch("/repos/{owner}/{repo}/issues/{n}")
async def update_issue(request: Request, owner: str, repo: str, n: int) -> Response:
    def check(doc: dict[str, Any]) -> Outcome | None:
        found = current(request, owner, repo, n) is not None
        return _check(doc, False) if found else not_found(UPDATE_DOC)

    def execute(doc: dict[str, Any]) -> Outcome:
        obj = apply(api_base(request), current(request, owner, repo, n) or {}, doc)
        commit(request, obj, "update", doc)
        return 200, shown(obj), True

    return await write(request, False, check, execute)


@router.get("/repos/{owner}/{repo}/issues/{n}")
async def get_issue(request: Request, owner: str, repo: str, n: int) -> Response:
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    found = current(request, owner, repo, n)
    if found is None:
        return error(404, "Not Found", f"{DOCS}/issues/issues#get-an-issue", headers)
    return JSONResponse(shown(found), headers=headers)


@router.get("/repos/{owner}/{repo}")
async def get_repo(request: Request, owner: str, repo: str) -> Response:
    """The repository (every ``owner/repo`` exists but ``missing/*``), its issues enabled."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    if owner.lower() == "missing":
        return error(404, "Not Found", f"{DOCS}/repos/repos#get-a-repository", headers)
    api, full, rid = api_base(request), f"{owner}/{repo}", repo_id(owner, repo)
    body = {"id": rid, "node_id": f"R_kgDO{rid}", "name": repo, "full_name": full,
            "private": False, "owner": {"login": owner, "type": "Organization"},
            "html_url": f"https://github.com/{full}", "url": f"{api}/repos/{full}",
            "has_issues": True, "archived": False, "disabled": False,
            "default_branch": "main", "visibility": "public"}  # fmt: skip
    return JSONResponse(body, headers=headers)


@router.get("/_sandbox/effects")
async def effects(request: Request) -> Response:
    """Sandbox-only: every issue and comment write applied, and counts per object."""
    return JSONResponse(effects_body(sandbox_state(request).writes, NAME))
