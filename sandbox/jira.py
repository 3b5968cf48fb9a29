"""Jira Cloud REST v3 double: enhanced JQL search, paginated project search, 3LO refresh.

- ``GET|POST /rest/api/3/search/jql``: ``nextPageToken`` paging, **no total**, the token is
  absent and ``isLast`` true on the last page. Without ``fields`` only ``id`` is returned.
  A tiny JQL subset is evaluated (``project``, ``status``, ``statusCategory`` with ``=``,
  ``!=``, ``IN``, ``NOT IN``, combined with ``AND``/``OR``/``NOT``/parentheses); clauses on
  other known fields are accepted and ignored, unknown fields and syntax errors are a 400.
- ``GET /rest/api/3/project/search``: the classic page bean (``startAt``, ``maxResults``,
  ``total``, ``isLast``, ``values``, ``nextPage``).
- Every accepted response carries ``X-RateLimit-Limit``/``-Remaining`` (and
  ``X-RateLimit-NearLimit: true`` at ≤ 20 % left); a refusal is a 429 with ``Retry-After``
  (seconds), ``X-RateLimit-Reset`` (ISO minute) and ``RateLimit-Reason: jira-burst-based``.
- ``POST /oauth/token`` stands in for ``https://auth.atlassian.com/oauth/token``: JSON or
  form refresh grant, ``expires_in``, rotating refresh tokens, reuse → 403 ``invalid_grant``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import (
    bearer_token,
    preamble,
    sandbox_state,
    token_call,
    token_form,
)
from sandbox.state import RateDecision, TokenError

NAME = "jira"
ROTATES_REFRESH_TOKENS = True  # Atlassian 3LO refresh tokens rotate on every refresh

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])

DEFAULT_MAX_RESULTS = 50
MAX_RESULTS = 100  # with fields beyond id/key; Jira returns fewer than asked, silently
MAX_RESULTS_IDS = 5000  # with id/key only
NEAR_LIMIT = 0.2
EPOCH = datetime(2021, 1, 1, tzinfo=UTC)

# ---- deterministic data -----------------------------------------------------------------
#
# Issue i (1-based) has residue r = (i - 1) % 4: 0 ENG/Open, 1 OPS/Open, 2 ENG/Done,
# 3 OPS/Done. A JQL filter is a set of residues, so the k-th match is computed directly and
# page k of N costs O(page).

# fmt: off
PROJECTS = {"ENG": "Engineering", "OPS": "Operations"}
ISSUE_PROJECTS = ("ENG", "OPS")
RESIDUES = {"ENG": {0, 2}, "OPS": {1, 3}}
OPEN, DONE = {0, 1}, {2, 3}
STATUSES = {  # name -> (id, residues, category key)
    "open": ("1", OPEN, "new"), "in progress": ("3", set(), "indeterminate"),
    "done": ("10001", DONE, "done"),
}
CATEGORIES = {  # id, key, colorName, name
    "new": (2, "new", "blue-gray", "To Do"),
    "indeterminate": (4, "indeterminate", "yellow", "In Progress"),
    "done": (3, "done", "green", "Done"),
}
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
ISSUE_TYPES = (("10001", "Task"), ("10002", "Bug"), ("10003", "Story"))
PEOPLE = ("Alice Chen", "Bob Okafor", "Carol Díaz", "Dmitri Ivanov", "Erin O'Neil", "Łucja Nowak")
VERBS = ("Fix", "Investigate", "Document", "Refactor", "Add tests for", "Speed up", "Remove")
THINGS = ("login flow", "billing export", "search index", "webhook retries", "CSV import",
          "rate limiter", "on-call runbook", "日本語 locale", "dashboard widgets")
KNOWN_FIELDS = frozenset({
    "project", "status", "statuscategory", "assignee", "reporter", "creator", "priority",
    "created", "createddate", "updated", "updateddate", "resolved", "resolution", "duedate",
    "key", "issuekey", "id", "issue", "issuetype", "type", "summary", "description", "text",
    "comment", "labels", "component", "fixversion", "affectedversion", "sprint", "parent",
    "watcher", "watchers", "votes", "environment", "filter", "request", "rank",
})
ISSUE_FIELDS = ("summary", "status", "priority", "assignee", "reporter", "created", "updated",
                "project", "issuetype", "labels")
ORDER_BY = re.compile(
    r"^[+-]?(category|key|name|owner|issueCount|lastIssueUpdatedDate|archivedDate|"
    r"deletedDate)$"
)
# fmt: on


def _datetime(ms: int) -> str:
    """Jira's timestamp form: ``2024-01-15T10:30:00.000+0000``."""
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def issue_id(i: int) -> str:
    return str(10000 + i)


def issue_key(i: int) -> str:
    return f"{ISSUE_PROJECTS[(i - 1) % 2]}-{(i + 1) // 2}"


def project_key(n: int) -> str:
    """Projects sort by key in index order: ENG, OPS, PRJ000003, PRJ000004, …"""
    return ("ENG", "OPS")[n - 1] if n <= 2 else f"PRJ{n:06d}"


def project_name(n: int) -> str:
    return PROJECTS.get(project_key(n), f"Project {n:06d}")


def project_id(n: int) -> str:
    return str(10000 + n)


def _avatars(base: str, kind: str, ident: str) -> dict[str, str]:
    return {
        f"{s}x{s}": f"{base}/rest/api/3/universal_avatar/view/type/{kind}/avatar/{ident}?size={s}"
        for s in (48, 24, 16, 32)
    }


def _user(base: str, n: int) -> dict[str, Any]:
    account = hashlib.sha256(f"user-{n}".encode()).hexdigest()[:24]
    return {
        "self": f"{base}/rest/api/3/user?accountId={account}",
        "accountId": account,
        "avatarUrls": {"48x48": f"https://avatar-management.example/{account}/48"},
        "displayName": PEOPLE[n % len(PEOPLE)],
        "active": True,
        "timeZone": "Europe/Berlin",
        "accountType": "atlassian",
    }


def _project_ref(base: str, n: int) -> dict[str, Any]:
    return {
        "self": f"{base}/rest/api/3/project/{project_id(n)}",
        "id": project_id(n),
        "key": project_key(n),
        "name": project_name(n),
        "projectTypeKey": "software",
        "simplified": False,
        "avatarUrls": _avatars(base, "project", project_id(n)),
    }


def issue_fields(base: str, i: int) -> dict[str, Any]:
    """Every field of issue ``i`` (1-based); a pure function of ``i`` and the base URL."""
    r = (i - 1) % 4
    status_name = "Open" if r in OPEN else "Done"
    sid, _, cat = STATUSES[status_name.lower()]
    cat_id, cat_key, color, cat_name = CATEGORIES[cat]
    prio = (i * 7) % len(PRIORITIES)
    type_id, type_name = ISSUE_TYPES[i % len(ISSUE_TYPES)]
    created = i * 3_600_011 + (i * 7919) % 1000
    return {
        "summary": f"{VERBS[i % len(VERBS)]} {THINGS[(i * 5) % len(THINGS)]} (#{i})",
        "status": {
            "self": f"{base}/rest/api/3/status/{sid}",
            "description": "",
            "iconUrl": f"{base}/images/icons/statuses/{cat_key}.png",
            "name": status_name,
            "id": sid,
            "statusCategory": {
                "self": f"{base}/rest/api/3/statuscategory/{cat_id}",
                "id": cat_id,
                "key": cat_key,
                "colorName": color,
                "name": cat_name,
            },
        },
        "priority": {
            "self": f"{base}/rest/api/3/priority/{prio + 1}",
            "iconUrl": f"{base}/images/icons/priorities/{PRIORITIES[prio].lower()}.svg",
            "name": PRIORITIES[prio],
            "id": str(prio + 1),
        },
        "assignee": None if i % 5 == 0 else _user(base, i % 11),
        "reporter": _user(base, i % 3),
        "created": _datetime(created),
        "updated": _datetime(created + (i * 104_729) % 2_592_000_000),
        "project": _project_ref(base, (i - 1) % 2 + 1),
        "issuetype": {
            "self": f"{base}/rest/api/3/issuetype/{type_id}",
            "id": type_id,
            "description": "",
            "iconUrl": f"{base}/rest/api/2/universal_avatar/view/type/issuetype/avatar/{type_id}",
            "name": type_name,
            "subtask": False,
            "hierarchyLevel": 0,
        },
        "labels": ["customer"] if i % 3 == 0 else [],
    }


def issue(base: str, i: int, fields: set[str] | None) -> dict[str, Any]:
    """Issue ``i`` as search returns it: only ``id`` unless other fields are asked for."""
    if not fields or fields <= {"id"}:
        return {"id": issue_id(i)}
    out: dict[str, Any] = {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
        "versionedRepresentations",
        "id": issue_id(i),
        "self": f"{base}/rest/api/3/issue/{issue_id(i)}",
        "key": issue_key(i),
    }
    wanted = fields - {"id", "key"}
    if wanted:
        all_fields = issue_fields(base, i)
        out["fields"] = {f: all_fields[f] for f in ISSUE_FIELDS if f in wanted}
    return out


def project(base: str, n: int) -> dict[str, Any]:
    return {
        "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
        **_project_ref(base, n),
        "style": "classic",
        "isPrivate": False,
        "properties": {},
    }


# ---- JQL subset -------------------------------------------------------------------------


class JqlError(Exception):
    pass


@dataclass
class Tok:
    kind: str  # word | string | op | ( | ) | , | eof
    text: str
    pos: int  # 0-based character offset


_OPS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
_WORD = re.compile(r"[^\s()=!~<>,\"']+")


def tokenize(jql: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(jql):
        c = jql[i]
        if c.isspace():
            i += 1
        elif c in "\"'":
            end = i + 1
            while end < len(jql) and jql[end] != c:
                end += 2 if jql[end] == "\\" else 1
            if end >= len(jql):
                raise JqlError(
                    f"Error in the JQL Query: The quoted string '{jql[i + 1 :]}' has not been "
                    f"completed. (line 1, character {i + 1})"
                )
            toks.append(Tok("string", jql[i + 1 : end].replace("\\" + c, c), i))
            i = end + 1
        elif c in "(),":
            toks.append(Tok(c, c, i))
            i += 1
        elif op := next((o for o in _OPS if jql.startswith(o, i)), None):
            toks.append(Tok("op", op, i))
            i += len(op)
        else:
            m = _WORD.match(jql, i)
            if not m:
                raise JqlError(
                    f"Error in the JQL Query: The character '{c}' is a reserved JQL character. "
                    f"You must enclose it in a string or use the escape '\\u{ord(c):04x}' "
                    f"instead. (line 1, character {i + 1})"
                )
            toks.append(Tok("word", m.group(0), i))
            i = m.end()
    toks.append(Tok("eof", "EOF", len(jql)))
    return toks


ALL = frozenset({0, 1, 2, 3})


class Jql:
    """Recursive descent over the subset; evaluates to the set of residues that match."""

    def __init__(self, jql: str, project_exists: Any) -> None:
        self.jql = jql
        self.toks = tokenize(jql)
        self.i = 0
        self.project_exists = project_exists

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def kw(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.upper() in words

    def take(self) -> Tok:
        tok = self.tok
        self.i += 1
        return tok

    def where(self, tok: Tok) -> str:
        return f"(line 1, character {tok.pos + 1})"

    def parse(self) -> frozenset[int]:
        if self.tok.kind == "eof" or self.kw("ORDER"):
            raise JqlError(
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query."
            )
        result = self.or_()
        if self.kw("ORDER"):
            self.take()
            if not self.kw("BY"):
                raise JqlError(
                    f"Error in the JQL Query: Expecting 'BY' but got "
                    f"'{self.tok.text}'. {self.where(self.tok)}"
                )
            self.take()
            while True:
                self.field()
                if self.kw("ASC", "DESC"):
                    self.take()
                if self.tok.kind != ",":
                    break
                self.take()
        if self.tok.kind != "eof":
            raise JqlError(
                f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got "
                f"'{self.tok.text}'. {self.where(self.tok)}"
            )
        return result

    def or_(self) -> frozenset[int]:
        result = self.and_()
        while self.kw("OR") or (self.tok.kind == "word" and self.tok.text == "||"):
            self.take()
            result = result | self.and_()
        return result

    def and_(self) -> frozenset[int]:
        result = self.not_()
        while self.kw("AND") or (self.tok.kind == "word" and self.tok.text == "&&"):
            self.take()
            result = result & self.not_()
        return result

    def not_(self) -> frozenset[int]:
        if self.kw("NOT"):
            self.take()
            return ALL - self.not_()
        if self.tok.kind == "(":
            self.take()
            result = self.or_()
            if self.tok.kind != ")":
                raise JqlError(
                    f"Error in the JQL Query: Expecting ')' but got "
                    f"'{self.tok.text}'. {self.where(self.tok)}"
                )
            self.take()
            return result
        return self.clause()

    def field(self) -> str:
        tok = self.tok
        if tok.kind not in ("word", "string") or self.kw("AND", "OR", "NOT", "ORDER"):
            raise JqlError(
                f"Error in the JQL Query: Expecting a field name but got "
                f"'{tok.text}'. {self.where(tok)}"
            )
        self.take()
        name = tok.text
        if name.lower() not in KNOWN_FIELDS and not re.fullmatch(r"cf\[\d+\]", name, re.I):
            raise JqlError(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        return name

    def clause(self) -> frozenset[int]:
        name = self.field()
        op_tok = self.tok
        if op_tok.kind == "op":
            op = self.take().text
        elif self.kw("IN", "IS", "WAS", "CHANGED"):
            op = self.take().text.upper()
            if op in ("IS", "WAS") and self.kw("NOT"):
                op += " NOT"
                self.take()
            if op.startswith("WAS") and self.kw("IN"):
                op += " IN"
                self.take()
        elif self.kw("NOT") and self.toks[self.i + 1].text.upper() == "IN":
            self.take()
            self.take()
            op = "NOT IN"
        else:
            raise JqlError(
                f"Error in the JQL Query: Expecting operator but got '{op_tok.text}'. The "
                "valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', "
                f"'NOT IN', 'IS' and 'IS NOT'. {self.where(op_tok)}"
            )
        values = [] if op == "CHANGED" else self.values(op.endswith("IN"))
        return self.evaluate(name.lower(), op, values)

    def values(self, is_list: bool) -> list[str]:
        if is_list:
            if self.tok.kind != "(":
                raise JqlError(
                    f"Error in the JQL Query: Expecting '(' but got "
                    f"'{self.tok.text}'. {self.where(self.tok)}"
                )
            self.take()
            out = [self.value()]
            while self.tok.kind == ",":
                self.take()
                out.append(self.value())
            if self.tok.kind != ")":
                raise JqlError(
                    f"Error in the JQL Query: Expecting ')' but got "
                    f"'{self.tok.text}'. {self.where(self.tok)}"
                )
            self.take()
            return out
        return [self.value()]

    def value(self) -> str:
        tok = self.tok
        if tok.kind not in ("word", "string") or (
            tok.kind == "word" and tok.text.upper() in ("AND", "OR", "ORDER")
        ):
            raise JqlError(
                "Error in the JQL Query: Expecting either a value, list or function but got "
                f"'{tok.text}'. You must surround '{tok.text}' in quotation marks to use it as "
                f"a value. {self.where(tok)}"
            )
        self.take()
        if tok.kind == "word" and self.tok.kind == "(":  # a function: currentUser(), now()
            depth = 0
            while True:
                t = self.take()
                depth += {"(": 1, ")": -1}.get(t.kind, 0)
                if t.kind == "eof":
                    raise JqlError(
                        f"Error in the JQL Query: Expecting ')' but got 'EOF'. {self.where(t)}"
                    )
                if depth == 0:
                    break
        return tok.text

    def evaluate(self, field: str, op: str, values: list[str]) -> frozenset[int]:
        if field not in ("project", "status", "statuscategory"):
            return ALL  # accepted and ignored by this sandbox
        if op.startswith("WAS") or op == "CHANGED":
            return ALL  # history operators: accepted, not evaluated by this sandbox
        if op in ("IS", "IS NOT"):
            return frozenset() if op == "IS" else ALL  # these fields are never empty
        if op not in ("=", "!=", "IN", "NOT IN"):
            raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")
        matched: set[int] = set()
        for v in values:
            matched |= self.residues(field, v)
        return ALL - matched if op in ("!=", "NOT IN") else frozenset(matched)

    def residues(self, field: str, value: str) -> set[int]:
        low = value.lower()
        if field == "project":
            for key, name in PROJECTS.items():
                if low in (key.lower(), name.lower(), project_id(ISSUE_PROJECTS.index(key) + 1)):
                    return set(RESIDUES[key])
            if self.project_exists(value):
                return set()
            raise JqlError(f"The value '{value}' does not exist for the field 'project'.")
        if field == "status":
            for name, (sid, res, _) in STATUSES.items():
                if low in (name, sid):
                    return set(res)
            raise JqlError(f"The value '{value}' does not exist for the field 'status'.")
        for key, (cid, ckey, _, cname) in CATEGORIES.items():
            if low in (key, ckey, cname.lower(), str(cid)):
                return {r for s in STATUSES.values() if s[2] == key for r in s[1]}
        raise JqlError(f"The value '{value}' does not exist for the field 'statusCategory'.")


def matches(residues: frozenset[int], volume: int) -> tuple[list[int], int]:
    """The allowed residues, sorted, and how many of issues 1..volume fall in them."""
    allowed = sorted(residues)
    return allowed, sum(max(0, (volume - 1 - r) // 4 + 1) for r in allowed)


def nth(allowed: list[int], k: int) -> int:
    """The issue number of the k-th (0-based) match."""
    return 4 * (k // len(allowed)) + allowed[k % len(allowed)] + 1


# ---- page tokens ---------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_token(offset: int, jql: str) -> str:
    """Opaque like Jira's ``CAEaAggD``: a protobuf-ish offset plus a digest of the query."""
    digest = hashlib.sha256(jql.encode()).digest()[:4]
    raw = b"\x08" + _varint(offset) + b"\x12\x04" + digest
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, jql: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if raw[:1] != b"\x08":
        return None
    offset, shift, i = 0, 0, 1
    while i < len(raw) and raw[i] & 0x80:
        offset |= (raw[i] & 0x7F) << shift
        shift += 7
        i += 1
    if i >= len(raw):
        return None
    offset |= raw[i] << shift
    if raw[i + 1 :] != b"\x12\x04" + hashlib.sha256(jql.encode()).digest()[:4]:
        return None
    return offset


# ---- Jira-shaped responses ------------------------------------------------------------------


def _errors(
    status: int,
    messages: list[str],
    headers: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"errorMessages": messages, "errors": errors or {}}, status_code=status, headers=headers
    )


def _unavailable() -> dict[str, Any]:
    return {"errorMessages": ["Service Unavailable"], "errors": {}}


def rate_headers(d: RateDecision) -> dict[str, str]:
    headers = {"X-RateLimit-Limit": str(d.limit), "X-RateLimit-Remaining": str(d.remaining)}
    if d.remaining <= d.limit * NEAR_LIMIT:
        headers["X-RateLimit-NearLimit"] = "true"
    return headers


def _retry_after(request: Request, d: RateDecision) -> int:
    """Whole seconds until the window admits a call again (until UTC midnight when daily)."""
    state = sandbox_state(request)
    now = time.time()
    if d.policy == "DAILY":
        return max(1, math.ceil(86400 - now % 86400))
    window_s = d.window_ms / 1000
    with state.lock:
        window = state.windows.get(NAME)
        oldest = window[0] if window else None
    left = window_s if oldest is None else oldest + window_s - time.monotonic()
    return max(1, math.ceil(left))


def _refusal(request: Request, d: RateDecision) -> JSONResponse:
    wait = _retry_after(request, d)
    reset = datetime.fromtimestamp(math.ceil((time.time() + wait) / 60) * 60, UTC)
    headers = {
        **rate_headers(d),
        "Retry-After": str(wait),
        "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
        "RateLimit-Reason": "jira-burst-based",
    }
    return _errors(429, ["Rate limit exceeded."], headers)


async def _gate(request: Request) -> tuple[Response | None, dict[str, str]]:
    state = sandbox_state(request)
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault, {}
    if state.check_access(NAME, bearer_token(request)) is not None:
        body = {"code": 401, "message": "Client must be authenticated to access this resource."}
        return JSONResponse(body, status_code=401), {}
    decision = state.take_rate(NAME)
    if decision.policy is not None:
        return _refusal(request, decision), {}
    return None, rate_headers(decision)


def _base(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}/{NAME}"


def _int_param(raw: Any, name: str, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise JqlError(f"The value '{raw}' is not valid for the parameter '{name}'.") from None


# ---- endpoints ------------------------------------------------------------------------------


async def _search(request: Request, params: dict[str, Any]) -> Response:
    denied, headers = await _gate(request)
    if denied is not None:
        return denied
    jql = str(params.get("jql") or "")
    state = sandbox_state(request)
    projects = state.config.volume("jira.projects")

    def project_exists(value: str) -> bool:
        m = re.fullmatch(r"PRJ(\d{6})", value, re.I)
        return bool(m and 3 <= int(m.group(1)) <= projects) or (
            value.isdigit() and 10003 <= int(value) <= 10000 + projects
        )

    try:
        max_results = _int_param(params.get("maxResults"), "maxResults", DEFAULT_MAX_RESULTS)
        if max_results < 0:
            raise JqlError("The 'maxResults' parameter must not be negative.")
        residues = Jql(jql, project_exists).parse()
    except JqlError as exc:
        return _errors(400, [str(exc)], headers)
    fields = params.get("fields")
    wanted = _fields(fields if isinstance(fields, list) else [fields] if fields else [])
    cap = MAX_RESULTS_IDS if wanted <= {"id", "key"} else MAX_RESULTS
    size = min(max(max_results, 1), cap)
    offset = 0
    token = params.get("nextPageToken")
    if token:
        decoded = decode_token(str(token), jql)
        if decoded is None:
            return _errors(400, ["The provided next page token is invalid or expired."], headers)
        offset = decoded
    allowed, total = matches(residues, state.config.volume("jira.issues"))
    stop = min(total, offset + size)
    base = _base(request)
    body: dict[str, Any] = {
        "issues": [issue(base, nth(allowed, k), wanted) for k in range(offset, stop)]
    }
    if stop < total:
        body["nextPageToken"] = encode_token(stop, jql)
    body["isLast"] = stop >= total
    return JSONResponse(body, headers=headers)


def _fields(raw: list[str]) -> set[str]:
    """``fields``: names, ``*all``/``*navigable``, ``-name`` exclusions; unknown names are
    ignored, as Jira does. Absent: ``id`` only (the enhanced search's default)."""
    names = [n.strip() for v in raw for n in str(v).split(",") if n.strip()]
    wanted: set[str] = set()
    for n in names:
        if n in ("*all", "*navigable"):
            wanted |= {*ISSUE_FIELDS, "id", "key"}
        elif not n.startswith("-"):
            wanted.add(n)
    for n in names:
        if n.startswith("-"):
            wanted.discard(n[1:])
    return wanted


@router.get("/rest/api/3/search/jql")
async def search_get(request: Request) -> Response:
    params: dict[str, Any] = dict(request.query_params)
    params["fields"] = request.query_params.getlist("fields")
    return await _search(request, params)


@router.post("/rest/api/3/search/jql")
async def search_post(request: Request) -> Response:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        denied, headers = await _gate(request)
        if denied is not None:
            return denied
        return _errors(
            400,
            ["Invalid request payload. Refer to the REST API documentation and try again."],
            headers,
        )
    return await _search(request, body)


@router.get("/rest/api/3/project/search")
async def project_search(request: Request) -> Response:
    """Classic page bean; ``orderBy`` key/name (±) honoured, other valid values sort by key."""
    denied, headers = await _gate(request)
    if denied is not None:
        return denied
    params = request.query_params
    try:
        start = _int_param(params.get("startAt"), "startAt", 0)
        size = _int_param(params.get("maxResults"), "maxResults", DEFAULT_MAX_RESULTS)
    except JqlError as exc:
        return _errors(400, [str(exc)], headers)
    if start < 0 or size < 0:
        return _errors(400, ["startAt and maxResults must not be negative."], headers)
    size = min(size, MAX_RESULTS)
    order = params.get("orderBy", "key")
    if not ORDER_BY.match(order):
        return _errors(
            400,
            [
                f"Invalid orderBy value '{order}'. Valid values are category, key, "
                "name, owner, issueCount, lastIssueUpdatedDate, archivedDate and "
                "deletedDate, optionally prefixed with + or -."
            ],
            headers,
        )
    descending = order.startswith("-") and order[1:] in ("key", "name")
    total = sandbox_state(request).config.volume("jira.projects")
    stop = min(total, start + size)
    base = _base(request)
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
        body = {
            k: body[k]
            for k in ("self", "nextPage", "maxResults", "startAt", "total", "isLast", "values")
        }
    return JSONResponse(body, headers=headers)


@router.post("/oauth/token")
async def token(request: Request) -> Response:
    """Atlassian's token endpoint: JSON (documented) or form body; rotates refresh tokens."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, _unavailable)) is not None:
        return fault
    form = await token_form(request)

    def oauth_error(status: int, error: str, description: str) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description}, status_code=status)

    if form.get("grant_type") != "refresh_token":
        return oauth_error(
            400, "unsupported_grant_type", "The authorization grant type is not supported."
        )
    try:
        issued = state.refresh(
            NAME,
            str(form.get("client_id", "")),
            str(form.get("client_secret", "")),
            str(form.get("refresh_token", "")),
        )
    except TokenError as exc:
        if exc.reason == "client":
            return oauth_error(401, "access_denied", "Unauthorized")
        return oauth_error(403, "invalid_grant", "Unknown or invalid refresh token.")
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
            "token_type": "Bearer",
            "refresh_token": issued.refresh_token,
            "scope": "read:jira-work read:jira-user offline_access",
        }
    )
