"""GitHub REST double: repository issues and pulls, `link` paging, x-ratelimit-*, OAuth refresh.

Order of checks mirrors api.github.com: latency/fault, User-Agent, auth (401 "Bad credentials",
counted against the unauthenticated pool), the primary rate limit (refusals are free), the
optional secondary limit, then the repository (404) and the parameters (422).

Data: every `owner/repo` exists (`owner=missing` is a 404) and holds
`github.issues` issues and `github.pulls` pull requests (volumes), numbered together
1..I+P: while both kinds last, odd numbers are issues and even numbers pull requests, then
the rest are the larger kind. The issues endpoint lists both kinds, pull requests with a
`pull_request` key, like GitHub. State and labels are functions of the number with period
12 (`n % 3 == 0` is closed), so any page of any filter is found in O(period + page).

Pages: `page`/`per_page` (default 30, silently capped at 100). The `link` header carries
absolute URLs by repository id (`/repositories/{id}/issues?...&page=N`, as GitHub does),
keeps the caller's parameters and adds `per_page`, and lists its rels in a seeded order that
varies from page to page; the last page has no rel="next", a single page no `link` at all.

Knobs (module level, for in-process tests): `PRIMARY_LIMIT_STATUS` (403 or 429; None, the
default, alternates 403, 429, 403… per refusal, so a remote test sees both), and the
secondary limit, enabled by a `rate_budgets["github:secondary"]` budget in the live config
(same window length), answered 403 with `retry-after` (`SECONDARY_RETRY_AFTER_S` pins it;
0 omits it).
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from sandbox.common import preamble, sandbox_state, token_call
from sandbox.state import RateDecision, SandboxState, TokenError

NAME = "github"
ROTATES_REFRESH_TOKENS = True  # GitHub App user tokens: every refresh returns a new ghr_
PRIMARY_LIMIT_STATUS: int | None = None  # 403 | 429 | None (alternate per refusal)
SECONDARY_KEY = f"{NAME}:secondary"  # rate_budgets key enabling the secondary limit
# Secondary refusals' retry-after: None = seconds until the secondary window frees; 0 = no
# retry-after at all (GitHub then says: wait at least a minute).
SECONDARY_RETRY_AFTER_S: int | None = None
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
PERIOD = 12  # state and labels repeat every PERIOD numbers

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])

DOCS = "https://docs.github.com/rest"
ISSUES_DOC = f"{DOCS}/issues/issues#list-repository-issues"
PULLS_DOC = f"{DOCS}/pulls/pulls#list-pull-requests"
AUTH_DOC = DOCS
RATE_DOC = f"{DOCS}/overview/rate-limits-for-the-rest-api"
SECONDARY_DOC = f"{RATE_DOC}#about-secondary-rate-limits"
TOKEN_DOC = (
    "https://docs.github.com/apps/managing-oauth-apps/"
    "troubleshooting-oauth-app-access-token-request-errors"
)
UA_REFUSAL = (
    "Request forbidden by administrative rules. Please make sure your request has a "
    "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api"
    "#user-agent-required). Check https://developer.github.com for other possible causes.\n"
)
REFRESH_DOC = (
    "https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/"
    "refreshing-user-access-tokens"
)
REFRESH_TOKEN_TTL_S = 15_811_200  # six months, as GitHub says in every refresh answer

# ---- deterministic data, a pure function of (repository, number) ---------------------------

LOGINS = (
    "octocat",
    "hubot",
    "monalisa",
    "defunkt",
    "mojombo",
    "pjhyett",
    "wycats",
    "ezmobius",
    "technoweenie",
    "atmos",
    "kneath",
    "holman",
    "jbarnette",
    "tmm1",
    "rtomayko",
    "nvie",
    "zoë-dev",
    "mislav",
    "tpope",
    "bkeepers",
)
PRIMARY_LABELS = ("bug", "enhancement", "documentation", None)
PRIORITY_LABELS = (  # by n % 12; the unified ticketing tool reads `priority: …` labels
    "priority: low",
    "priority: medium",
    None,
    "priority: high",
    None,
    "priority: low",
    "priority: medium",
    None,
    None,
    "priority: high",
    "priority: low",
    None,
)
LABEL_COLORS = {
    "bug": "d73a4a",
    "enhancement": "a2eeef",
    "documentation": "0075ca",
    "good first issue": "7057ff",
    "help wanted": "008672",
    "priority: low": "c2e0c6",
    "priority: medium": "fbca04",
    "priority: high": "b60205",
}
VERBS = ("Fix", "Add", "Remove", "Document", "Refactor", "Speed up", "Handle", "Test")
THINGS = (
    "pagination of the issues list",
    "rate-limit handling",
    "OAuth token refresh",
    "the CLI's --json flag",
    "Unicode in titles (ünïcødé, 中文, 🚀)",
    "webhook retries",
    "the config loader",
    "error messages on 422",
)
EPOCH = datetime(2015, 1, 1, tzinfo=UTC)

_repo_ids: dict[int, str] = {}
_ids_by_name: dict[str, int] = {}
_repo_lock = threading.Lock()


def repo_id(owner: str, repo: str) -> int:
    """A stable repository id (GitHub's link headers address repositories by id)."""
    key = f"{owner}/{repo}"
    with _repo_lock:
        if key.lower() in _ids_by_name:
            return _ids_by_name[key.lower()]
        rid = zlib.crc32(key.lower().encode()) % 500_000_000 + 1
        while rid in _repo_ids:
            rid = rid % 500_000_000 + 1
        _repo_ids[rid] = key
        _ids_by_name[key.lower()] = rid
        return rid


def repo_by_id(rid: int) -> tuple[str, str] | None:
    with _repo_lock:
        key = _repo_ids.get(rid)
    return tuple(key.split("/", 1)) if key else None  # type: ignore[return-value]


def is_closed(n: int) -> bool:
    return n % 3 == 0


def labels_of(n: int) -> list[str]:
    out = [PRIMARY_LABELS[n % 4]] if PRIMARY_LABELS[n % 4] else []
    if n % 6 == 1:
        out.append("good first issue")
    if n % 12 == 5:
        out.append("help wanted")
    if PRIORITY_LABELS[n % 12]:
        out.append(PRIORITY_LABELS[n % 12])
    return out  # type: ignore[return-value]


def is_pull(n: int, issues: int, pulls: int) -> bool:
    both = min(issues, pulls)
    return n % 2 == 0 if n <= 2 * both else pulls > issues


def _ts(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(api: str, i: int) -> dict[str, Any]:
    login = LOGINS[i % len(LOGINS)]
    uid = 583231 + i % len(LOGINS)
    return {
        "login": login,
        "id": uid,
        "node_id": f"MDQ6VXNlcj{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "url": f"{api}/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": "User",
        "site_admin": False,
    }


def _label(api: str, repo: str, name: str) -> dict[str, Any]:
    lid = 1_000_000 + zlib.crc32(name.encode()) % 1_000_000
    return {
        "id": lid,
        "node_id": f"LA_kwDO{lid}",
        "url": f"{api}/repos/{repo}/labels/{quote(name)}",
        "name": name,
        "color": LABEL_COLORS[name],
        "default": name in PRIMARY_LABELS,
        "description": None,
    }


def _common(api: str, full: str, rid: int, n: int) -> dict[str, Any]:
    created = n * 3607 + (n * 7919) % 600
    updated = created + (n * 104_729) % 2_592_000
    closed = is_closed(n)
    assignee = _user(api, n * 7) if n % 5 else None
    title = f"{VERBS[n % len(VERBS)]} {THINGS[(n // 3) % len(THINGS)]} ({n})"
    return {
        "number": n,
        "title": title,
        "user": _user(api, n),
        "labels": [_label(api, full, name) for name in labels_of(n)],
        "state": "closed" if closed else "open",
        "locked": False,
        "assignee": assignee,
        "assignees": [assignee] if assignee else [],
        "milestone": None,
        "created_at": _ts(created),
        "updated_at": _ts(updated),
        "closed_at": _ts(updated) if closed else None,
        "author_association": "CONTRIBUTOR",
        "active_lock_reason": None,
        "body": f"Reported in #{max(1, n - 1)}. Steps: call the API, page through, compare.",
    }


def issue(api: str, full: str, rid: int, n: int, pull: bool) -> dict[str, Any]:
    """Number `n` as the issues endpoint shows it (a pull request gets `pull_request`)."""
    base = _common(api, full, rid, n)
    iid = rid * 10_000_000 + n
    html = f"https://github.com/{full}/{'pull' if pull else 'issues'}/{n}"
    out: dict[str, Any] = {
        "url": f"{api}/repos/{full}/issues/{n}",
        "repository_url": f"{api}/repos/{full}",
        "labels_url": f"{api}/repos/{full}/issues/{n}/labels{{/name}}",
        "comments_url": f"{api}/repos/{full}/issues/{n}/comments",
        "events_url": f"{api}/repos/{full}/issues/{n}/events",
        "html_url": html,
        "id": iid,
        "node_id": f"I_kwDO{iid}",
        **base,
        "comments": n % 9,
        "state_reason": ("completed" if base["state"] == "closed" and not pull else None),
    }
    if pull:
        out["draft"] = n % 10 == 4
        out["pull_request"] = {
            "url": f"{api}/repos/{full}/pulls/{n}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "merged_at": _merged_at(base, n),
        }
    return out


def _merged_at(base: dict[str, Any], n: int) -> str | None:
    return base["closed_at"] if base["state"] == "closed" and n % 2 == 0 else None


def pull(api: str, full: str, rid: int, n: int) -> dict[str, Any]:
    """Number `n` as the pulls endpoint shows it (its own id, head/base, merge fields)."""
    base = _common(api, full, rid, n)
    pid = rid * 10_000_000 + 5_000_000 + n
    html = f"https://github.com/{full}/pull/{n}"
    sha = f"{zlib.crc32(f'{full}#{n}'.encode()):08x}" * 5
    owner = full.split("/", 1)[0]
    return {
        "url": f"{api}/repos/{full}/pulls/{n}",
        "id": pid,
        "node_id": f"PR_kwDO{pid}",
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": f"{api}/repos/{full}/issues/{n}",
        "commits_url": f"{api}/repos/{full}/pulls/{n}/commits",
        **base,
        "merged_at": _merged_at(base, n),
        "merge_commit_sha": sha,
        "requested_reviewers": [],
        "head": {"label": f"{owner}:feature-{n}", "ref": f"feature-{n}", "sha": sha},
        "base": {"label": f"{owner}:main", "ref": "main", "sha": sha[::-1]},
        "draft": n % 10 == 4,
        "auto_merge": None,
    }


# ---- filtered listing in O(period + page) ------------------------------------------------

Segment = tuple[int, int, int]  # (first number, step, count), in listing order


def issue_segments(issues: int, pulls: int) -> list[Segment]:
    total = issues + pulls
    return [(1, 1, total)] if total else []


def pull_segments(issues: int, pulls: int) -> list[Segment]:
    both = min(issues, pulls)
    segs = [(2, 2, both)] if both else []
    if pulls > both:
        segs.append((2 * both + 1, 1, pulls - both))
    return segs


def descending(segments: list[Segment]) -> list[Segment]:
    return [(s + (c - 1) * d, -d, c) for s, d, c in reversed(segments)]


def select(segments: list[Segment], pred: Any, offset: int, limit: int) -> tuple[list[int], int]:
    """The matches `offset .. offset+limit` of the progressions, and how many match in all.

    `pred` has period PERIOD in the number, hence in the index of any progression, so whole
    periods are counted and skipped without being looked at."""
    out: list[int] = []
    total = 0
    for start, step, count in segments:
        head = [bool(pred(start + j * step)) for j in range(min(PERIOD, count))]
        per = sum(head)
        full, rem = divmod(count, PERIOD)
        seg_total = full * per + sum(head[:rem])
        total += seg_total
        if len(out) >= limit:
            continue
        if offset >= seg_total:
            offset -= seg_total
            continue
        skip = offset // per  # seg_total > offset >= 0 implies per > 0
        j, offset = skip * PERIOD, offset - skip * per
        while j < count and len(out) < limit:
            n = start + j * step
            if pred(n):
                if offset:
                    offset -= 1
                else:
                    out.append(n)
            j += 1
        offset = 0
    return out, total


# ---- GitHub-shaped responses -------------------------------------------------------------


def _request_id() -> str:
    return uuid.uuid4().hex[:8].upper() + ":" + uuid.uuid4().hex[:12].upper()


def _base_headers() -> dict[str, str]:
    return {"x-github-request-id": _request_id(), "x-github-api-version-selected": "2022-11-28"}


def _error(
    status: int, message: str, doc: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"message": message, **extra, "documentation_url": doc, "status": str(status)}
    return JSONResponse(body, status_code=status, headers={**_base_headers(), **(headers or {})})


def _unavailable() -> dict[str, Any]:
    return {"message": "Server Error", "documentation_url": DOCS, "status": "503"}


def _window_end(state: SandboxState, key: str, window_ms: int) -> float:
    """Wall-clock instant the oldest accepted call of `key` leaves the rolling window."""
    now_m, now = time.monotonic(), time.time()
    with state.lock:
        window = state.windows.get(key)
        oldest = window[0] if window else now_m
    return now + (oldest + window_ms / 1000 - now_m)


def _rate_headers(state: SandboxState, d: RateDecision) -> dict[str, str]:
    if d.policy == "DAILY":
        remaining, reset = 0, (int(time.time() // 86400) + 1) * 86400
    else:
        remaining, reset = d.remaining, math.ceil(_window_end(state, NAME, d.window_ms))
    return {
        "x-ratelimit-limit": str(d.limit),
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-used": str(d.limit - remaining),
        "x-ratelimit-reset": str(reset),  # epoch seconds, not a delta
        "x-ratelimit-resource": "core",
    }


def _unauthenticated_headers() -> dict[str, str]:
    return {
        "x-ratelimit-limit": "60",
        "x-ratelimit-remaining": "59",
        "x-ratelimit-used": "1",
        "x-ratelimit-reset": str(int(time.time()) + 3600),
        "x-ratelimit-resource": "core",
    }


def _token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() in ("bearer", "token") else None


async def _gate(request: Request) -> tuple[Response | None, dict[str, str]]:
    """Fault, User-Agent, auth, primary and secondary limits: a refusal, or the headers."""
    state = sandbox_state(request)
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault, {}
    if not request.headers.get("user-agent"):
        return PlainTextResponse(UA_REFUSAL, status_code=403), {}
    if state.check_access(NAME, _token(request)) is not None:
        return _error(401, "Bad credentials", AUTH_DOC, _unauthenticated_headers()), {}
    decision = state.take_rate(NAME)
    headers = {**_base_headers(), **_rate_headers(state, decision)}
    if decision.policy is not None:
        status = PRIMARY_LIMIT_STATUS or (403 if state.stats()["rate_limited"] % 2 else 429)
        body = {
            "message": "API rate limit exceeded for user ID 1.",
            "documentation_url": f"{RATE_DOC}#about-the-primary-rate-limit",
            "status": str(status),
        }
        return JSONResponse(body, status_code=status, headers=headers), headers
    if SECONDARY_KEY in state.config.rate_budgets:
        second = state.take_rate(SECONDARY_KEY)
        if second.policy is not None:
            wait = SECONDARY_RETRY_AFTER_S
            if wait is None:
                end = _window_end(state, SECONDARY_KEY, second.window_ms)
                wait = max(1, math.ceil(end - time.time()))
            body = {
                "message": "You have exceeded a secondary rate limit. Please wait a few "
                "minutes before you try again. If you reach out to GitHub Support for help, "
                f"please include the request ID {headers['x-github-request-id']}.",
                "documentation_url": SECONDARY_DOC,
                "status": "403",
            }
            extra = {"retry-after": str(wait)} if wait else {}
            return JSONResponse(body, status_code=403, headers={**headers, **extra}), headers
    return None, headers


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def _invalid(resource: str, field: str, doc: str, headers: dict[str, str]) -> JSONResponse:
    return _error(
        422,
        "Validation Failed",
        doc,
        headers,
        errors=[{"resource": resource, "field": field, "code": "invalid"}],
    )


async def _list(
    request: Request, owner: str | None, repo: str | None, rid: int | None, kind: str
) -> Response:
    state = sandbox_state(request)
    denied, headers = await _gate(request)
    if denied is not None:
        return denied
    doc = ISSUES_DOC if kind == "issues" else PULLS_DOC
    if rid is not None:
        found = repo_by_id(rid)
        if found is None:
            return _error(404, "Not Found", doc, headers)
        owner, repo = found
    assert owner is not None and repo is not None
    if owner.lower() == "missing":
        return _error(404, "Not Found", doc, headers)
    rid = repo_id(owner, repo)
    full = f"{owner}/{repo}"
    params = request.query_params
    resource = "Issue" if kind == "issues" else "PullRequest"
    wanted_state = params.get("state", "open")
    if wanted_state not in ("open", "closed", "all"):
        return _invalid(resource, "state", doc, headers)
    direction = params.get("direction", "desc")
    if direction not in ("asc", "desc"):
        return _invalid(resource, "direction", doc, headers)
    per_page = _int(params.get("per_page"), DEFAULT_PER_PAGE)
    per_page = DEFAULT_PER_PAGE if per_page < 1 else min(per_page, MAX_PER_PAGE)
    page = max(1, _int(params.get("page"), 1))

    n_issues = state.config.volume(f"{NAME}.issues")
    n_pulls = state.config.volume(f"{NAME}.pulls")
    wanted_labels = {x.strip().casefold() for x in params.get("labels", "").split(",") if x.strip()}
    if kind == "pulls":
        wanted_labels = set()  # the pulls endpoint has no labels filter

    def pred(n: int) -> bool:
        if wanted_state != "all" and is_closed(n) != (wanted_state == "closed"):
            return False
        return wanted_labels <= {x.casefold() for x in labels_of(n)}

    segments = (issue_segments if kind == "issues" else pull_segments)(n_issues, n_pulls)
    if direction == "desc":
        segments = descending(segments)
    numbers, total = select(segments, pred, (page - 1) * per_page, per_page)
    api = f"{str(request.base_url).rstrip('/')}/{NAME}"
    if kind == "issues":
        body = [issue(api, full, rid, n, is_pull(n, n_issues, n_pulls)) for n in numbers]
    else:
        body = [pull(api, full, rid, n) for n in numbers]
    last = max(1, -(-total // per_page))
    link = _link(request, f"{api}/repositories/{rid}/{kind}", per_page, page, last)
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


def _brand(state: SandboxState, issued: Any, presented: str) -> tuple[str, str]:
    """Give the state's tokens GitHub's prefixes (ghu_ access, ghr_ refresh) in place."""
    access = "ghu_" + issued.access_token.removeprefix("C")
    refresh = issued.refresh_token
    with state.lock:
        state.access[access] = state.access.pop(issued.access_token)
        if refresh != presented and not refresh.startswith("ghr_"):
            state.refresh_tokens["ghr_" + refresh] = state.refresh_tokens.pop(refresh)
            refresh = "ghr_" + refresh
    return access, refresh


@router.post("/login/oauth/access_token")
async def token(request: Request) -> Response:
    """Refresh grant (form-encoded). Every answer is HTTP 200, errors included; JSON when the
    client sends `Accept: application/json`, else form-encoded like github.com."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, _unavailable)) is not None:
        return fault
    raw = (await request.body()).decode("utf-8", "replace")
    form = dict(parse_qsl(raw, keep_blank_values=True)) or dict(request.query_params)
    as_json = "json" in request.headers.get("accept", "")

    def answer(doc: dict[str, Any]) -> Response:
        if as_json:
            return JSONResponse(doc)
        text = urlencode({k: "" if v is None else v for k, v in doc.items()})
        return PlainTextResponse(text, media_type="application/x-www-form-urlencoded")

    def error(code: str, description: str, anchor: str) -> Response:
        return answer(
            {"error": code, "error_description": description, "error_uri": f"{TOKEN_DOC}#{anchor}"}
        )

    if form.get("grant_type") != "refresh_token":
        return error(
            "unsupported_grant_type", "The grant type is not supported.", "unsupported-grant-type"
        )
    presented = form.get("refresh_token", "")
    try:
        issued = state.refresh(
            NAME, form.get("client_id", ""), form.get("client_secret", ""), presented
        )
    except TokenError as exc:
        if exc.reason == "client":
            return error(
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
                "incorrect-client-credentials",
            )
        return answer(
            {
                "error": "bad_refresh_token",
                "error_description": "The refresh token passed is incorrect or expired.",
                "error_uri": REFRESH_DOC,
            }
        )
    access, refresh = _brand(state, issued, presented)
    return answer(
        {
            "access_token": access,
            "expires_in": issued.expires_in,
            "refresh_token": refresh,
            "refresh_token_expires_in": REFRESH_TOKEN_TTL_S,
            "token_type": "bearer",
            "scope": "",
        }
    )
