"""GitHub issue writes: create, comment (body markers), update (absolute values).

GitHub has no idempotency key. A created issue or comment ends its body with the operation's
marker (`connectors.writes.marker`, an HTML comment GitHub does not render) and, before an
uncertain one is resent, `find` looks for it (`Mechanism.MARKER`):

- an issue among the repository's newest (`GET /repos/{o}/{r}/issues?state=all&sort=created
  &direction=desc`, a few pages: a resend comes minutes after the first attempt at most);
- a comment among the issue's comments (oldest first, so every page up to a cap).

`PATCH …/issues/{n}` sets absolute values (`Mechanism.ABSOLUTE`): repeating it changes nothing.

Previews are one GET each: the repository (a create), the issue (a comment; an update, whose
current title/body/state/labels are diffed against the values given); a 404 (or 410: issues
disabled, an issue deleted) is the refusal the write would meet.

The content-creation secondary limit (403 + `retry-after`, "You have exceeded a secondary rate
limit") is a rate-limit refusal in `connectors.ratelimit`, so the wire raises RateLimited: the
write loop clears the operation's sent mark and waits; it is never uncertain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import Http, Tool
from connectors.errors import VendorError
from connectors.writes import (
    ItemResult,
    Mechanism,
    Operation,
    Pace,
    Preview,
    PreviewItem,
    Write,
    creates,
    diffed,
    marker,
    one,
    would_reject,
)

OWNER = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$"  # as connectors.github
REPO = r"^[A-Za-z0-9._-]{1,100}$"
PER_PAGE = 100
ISSUE_PAGES = 3  # newest issues looked at for an uncertain create: 300
COMMENT_PAGES = 30  # an issue's comments looked at for an uncertain comment: 3,000
BODY_MAX = 65_000  # GitHub's body limit is 65,536 characters; the marker needs room


class RepoRef(BaseModel):
    """The repository, named as the read tools name it (`owner`, `repo`)."""

    model_config = ConfigDict(extra="forbid")

    owner: str = Field(
        max_length=39, pattern=OWNER, description="Repository owner (user or organization login)"
    )
    repo: str = Field(
        max_length=100, pattern=REPO, description="Repository name, without the owner"
    )

    @field_validator("repo")
    @classmethod
    def _not_dots(cls, value: str) -> str:
        if value in (".", ".."):
            raise ValueError("a repository name, not '.' or '..'")
        return value


def _labels(value: list[str] | None) -> list[str] | None:
    for label in value or []:
        if not label.strip() or len(label) > 100:
            raise ValueError("each label: 1-100 characters")
    return value


class CreateArgs(RepoRef):
    """Arguments of `github.issues.create`."""

    title: str = Field(min_length=1, max_length=256, description="The issue's title")
    body: str | None = Field(None, max_length=BODY_MAX, description="Markdown")
    labels: list[str] = Field(
        default_factory=list, max_length=50, description="Label names (created if new)"
    )

    _check_labels = field_validator("labels")(_labels)


class CommentArgs(RepoRef):
    """Arguments of `github.issues.comment`."""

    issue_number: int = Field(ge=1, description="The issue (or pull request) number")
    body: str = Field(min_length=1, max_length=BODY_MAX, description="Markdown")


class UpdateArgs(RepoRef):
    """Arguments of `github.issues.update`: each field given replaces what was there."""

    issue_number: int = Field(ge=1, description="The issue number")
    title: str | None = Field(None, min_length=1, max_length=256)
    body: str | None = Field(None, max_length=65_536)
    state: Literal["open", "closed"] | None = Field(None, description="Close or reopen")
    labels: list[str] | None = Field(None, max_length=50, description="Replaces every label")

    _check_labels = field_validator("labels")(_labels)


def _repo(args: RepoRef) -> str:
    return f"/repos/{args.owner}/{args.repo}"


def _marked(text: str | None, op: Operation) -> str:
    mark = marker(op.key)
    return f"{text.rstrip()}\n\n{mark}" if text and text.strip() else mark


def _has_mark(obj: Any, op: Operation) -> bool:
    return isinstance(obj, dict) and marker(op.key) in str(obj.get("body") or "")


def _pages(http: Http, path: str, params: dict[str, Any], cap: int) -> list[list[Any]]:
    """Up to `cap` pages (`page`/`per_page`), stopping at the first short one."""
    out: list[list[Any]] = []
    for page in range(1, cap + 1):
        rows = http.request("GET", path, params={**params, "page": page}).json()
        rows = rows if isinstance(rows, list) else []
        out.append(rows)
        if len(rows) < PER_PAGE:
            break
    return out


def _found(http: Http, path: str) -> dict[str, Any] | VendorError:
    """The object at `path`, or GitHub's refusal when it is not there (404, 410)."""
    try:
        doc = http.request("GET", path).json()
    except VendorError as exc:
        if exc.status in (404, 410):
            return exc
        raise
    return doc if isinstance(doc, dict) else {}


def _adds_to(path: Callable[[Any], str]) -> Preview:
    """A preview: the record would be created where `path(args)` exists, else refused (a
    repository with issues turned off refuses them: 410, as GitHub answers the POST)."""

    def preview(http: Http, op: Operation) -> list[PreviewItem]:
        ((i, args),) = op.items
        found = _found(http, path(args))
        if isinstance(found, VendorError):
            return [would_reject(i, found.code, found.message)]
        if found.get("has_issues") is False:
            return [would_reject(i, "http_410", "Issues are disabled for this repo")]
        return creates(http, op)

    return preview


# ---- create ---------------------------------------------------------------------------------


def _send_create(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    body: dict[str, Any] = {"title": args.title, "body": _marked(args.body, op)}
    if args.labels:
        body["labels"] = args.labels
    doc = http.request("POST", f"{_repo(args)}/issues", json=body).json()
    return [ItemResult(i, "created", str(doc["number"]))]


def _find_create(http: Http, op: Operation) -> list[ItemResult] | None:
    ((i, args),) = op.items
    params = {"state": "all", "sort": "created", "direction": "desc", "per_page": PER_PAGE}
    for rows in _pages(http, f"{_repo(args)}/issues", params, ISSUE_PAGES):
        for issue in rows:
            if _has_mark(issue, op) and "pull_request" not in issue:
                return [ItemResult(i, "created", str(issue["number"]))]
    return None


# ---- comment --------------------------------------------------------------------------------


def _comments_path(args: CommentArgs) -> str:
    return f"{_repo(args)}/issues/{args.issue_number}/comments"


def _send_comment(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    body = {"body": _marked(args.body, op)}
    doc = http.request("POST", _comments_path(args), json=body).json()
    return [ItemResult(i, "created", str(doc["id"]))]


def _find_comment(http: Http, op: Operation) -> list[ItemResult] | None:
    ((i, args),) = op.items
    try:
        pages = _pages(http, _comments_path(args), {"per_page": PER_PAGE}, COMMENT_PAGES)
    except VendorError as exc:
        if exc.status == 404:  # no such issue: nothing was written; the resend says so
            return None
        raise
    for rows in pages:
        for comment in rows:
            if _has_mark(comment, op):
                return [ItemResult(i, "created", str(comment["id"]))]
    return None


# ---- update ---------------------------------------------------------------------------------


def _send_update(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    fields = args.model_dump(include={"title", "body", "state", "labels"}, exclude_none=True)
    path = f"{_repo(args)}/issues/{args.issue_number}"
    doc = http.request("PATCH", path, json=fields).json()
    return [ItemResult(i, "updated", str(doc.get("number", args.issue_number)))]


def _preview_update(http: Http, op: Operation) -> list[PreviewItem]:
    ((i, args),) = op.items
    number = str(args.issue_number)
    found = _found(http, f"{_repo(args)}/issues/{args.issue_number}")
    if isinstance(found, VendorError):
        return [would_reject(i, found.code, found.message, number)]
    proposed = args.model_dump(include={"title", "body", "state", "labels"}, exclude_none=True)
    current = {k: found.get(k) for k in ("title", "body", "state")}
    names = [str(x.get("name")) for x in found.get("labels") or [] if isinstance(x, dict)]
    # a label set has no order: shown in the proposed order when it is the same set
    wanted = proposed.get("labels")
    current["labels"] = wanted if wanted is not None and set(wanted) == set(names) else names
    return [diffed(i, number, current, proposed)]


# GitHub's secondary limits on content-creating requests (docs.github.com, "Rate limits for the
# REST API"): at most 80 a minute and 500 an hour; an app that keeps hitting them may be banned
CONTENT = (Pace("content-minute", 80, 60.0), Pace("content-hour", 500, 3600.0))

create = Tool(
    name="github.issues.create",
    description=(
        "Open one issue in a GitHub repository (REST POST /repos/{owner}/{repo}/issues) with a "
        "title, an optional Markdown body and labels. Safe to retry: the body ends with a "
        "hidden marker naming the operation, looked up before anything is resent. The result "
        'is one record {"index": 0, "status": "created", "id": "<issue number>"}.'
    ),
    args=CreateArgs,
    read_only=False,
    idempotent=False,  # a new call is a new issue (the marker guards retries of one call)
    write=Write(Mechanism.MARKER, one, _send_create, _find_create, CONTENT, _adds_to(_repo)),
)
comment = Tool(
    name="github.issues.comment",
    description=(
        "Comment on a GitHub issue or pull request (REST POST …/issues/{number}/comments). "
        "Safe to retry: the body ends with a hidden marker naming the operation. The "
        "result's id is the comment id."
    ),
    args=CommentArgs,
    read_only=False,
    idempotent=False,
    write=Write(
        Mechanism.MARKER,
        one,
        _send_comment,
        _find_comment,
        CONTENT,
        _adds_to(lambda args: f"{_repo(args)}/issues/{args.issue_number}"),
    ),
)
update = Tool(
    name="github.issues.update",
    description=(
        "Change a GitHub issue (REST PATCH …/issues/{number}): title, body, state "
        "(open/closed) and labels, each given value replacing what was there; repeating the "
        "update changes nothing more."
    ),
    args=UpdateArgs,
    read_only=False,
    destructive=True,
    idempotent=True,
    write=Write(Mechanism.ABSOLUTE, one, _send_update, preview=_preview_update),
)
TOOLS = (create, comment, update)
