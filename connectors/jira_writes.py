"""Jira Cloud issue writes: create, comment, transition (REST v3), for the `jira` spec vendor.

Jira has no idempotency key, so each write carries its operation's key (`Mechanism.MARKER`)
and `find` looks for it before an uncertain operation is resent:

- `POST /rest/api/3/issue` sets the issue entity property `toolqueue` = {"op": key}; found by
  JQL `issue.property[toolqueue].op = "<key>"` (Atlassian's entity-property JQL clause);
- `POST …/issue/{key}/comment` sets the same property on the comment; found among the issue's
  newest comments (`expand=properties`);
- `POST …/issue/{key}/transitions` carries nothing, but its effect is a state: the issue
  already standing in the target status is the transition done.

Previews read only: a comment's issue (`GET …/issue/{key}`: a 404 is the comment's refusal),
a transition's current status beside its target (and the transitions offered now).

The vendor (`connectors/specs/jira.json`) is declarative; `connectors.load` adds this
module's `TOOLS` to it. Descriptions are plain text; Jira v3 wants the Atlassian Document
Format, so `adf` wraps them (one paragraph per blank-line-separated block).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import Http, Tool
from connectors.errors import VendorError
from connectors.writes import (
    ItemResult,
    Mechanism,
    Operation,
    PreviewItem,
    Write,
    creates,
    diffed,
    one,
    would_reject,
)

API = "/rest/api/3"
PROPERTY = "toolqueue"  # the entity property holding {"op": <operation key>}
COMMENTS_LOOKED_AT = 100  # an uncertain comment is among the issue's newest this many
ISSUE_KEY = r"^[A-Za-z][A-Za-z0-9_]*-[0-9]+$|^[0-9]+$"


class CreateArgs(BaseModel):
    """Arguments of `jira.issues.create`."""

    model_config = ConfigDict(extra="forbid")

    project_key: str = Field(
        min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="e.g. ENG"
    )
    summary: str = Field(min_length=1, max_length=255, description="The issue's title")
    issue_type: str = Field(min_length=1, max_length=60, description="Task, Bug, Story, …")
    description: str | None = Field(
        None, max_length=32_000, description="Plain text; blank lines separate paragraphs"
    )


class CommentArgs(BaseModel):
    """Arguments of `jira.issues.comment`."""

    model_config = ConfigDict(extra="forbid")

    issue_key: str = Field(pattern=ISSUE_KEY, max_length=60, description="e.g. ENG-42, or an id")
    body: str = Field(min_length=1, max_length=32_000, description="Plain text")


class TransitionArgs(BaseModel):
    """Arguments of `jira.issues.transition`."""

    model_config = ConfigDict(extra="forbid")

    issue_key: str = Field(pattern=ISSUE_KEY, max_length=60, description="e.g. ENG-42, or an id")
    transition: str = Field(
        min_length=1,
        max_length=100,
        description="A transition id (e.g. 31) or the target status's name (e.g. Done)",
    )


def adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document: paragraphs split on blank lines, lines on hard breaks."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    content = []
    for para in paragraphs:
        nodes: list[dict[str, Any]] = []
        for n, line in enumerate(para.split("\n")):
            if n:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


def _mark(op: Operation) -> list[dict[str, Any]]:
    return [{"key": PROPERTY, "value": {"op": op.key}}]


def _jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- create ---------------------------------------------------------------------------------


def _send_create(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    fields: dict[str, Any] = {
        "project": {"key": args.project_key},
        "summary": args.summary,
        "issuetype": {"name": args.issue_type},
    }
    if args.description:
        fields["description"] = adf(args.description)
    doc = http.request("POST", f"{API}/issue", json={"fields": fields, "properties": _mark(op)})
    return [ItemResult(i, "created", str(doc.json()["key"]))]


def _find_create(http: Http, op: Operation) -> list[ItemResult] | None:
    ((i, args),) = op.items
    jql = (
        f"project = {_jql_string(args.project_key)} AND "
        f"issue.property[{PROPERTY}].op = {_jql_string(op.key)}"
    )
    params = {"jql": jql, "fields": "summary", "maxResults": 1}
    issues = http.request("GET", f"{API}/search/jql", params=params).json().get("issues") or []
    return [ItemResult(i, "created", str(issues[0]["key"]))] if issues else None


# ---- comment --------------------------------------------------------------------------------


def _send_comment(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    body = {"body": adf(args.body), "properties": _mark(op)}
    doc = http.request("POST", f"{API}/issue/{args.issue_key}/comment", json=body)
    return [ItemResult(i, "created", str(doc.json()["id"]))]


def _find_comment(http: Http, op: Operation) -> list[ItemResult] | None:
    ((i, args),) = op.items
    params = {"expand": "properties", "orderBy": "-created", "maxResults": COMMENTS_LOOKED_AT}
    try:
        page = http.request("GET", f"{API}/issue/{args.issue_key}/comment", params=params).json()
    except VendorError as exc:
        if exc.status == 404:  # no such issue: nothing was written; the resend says so
            return None
        raise
    for comment in page.get("comments") or []:
        if any(_is_mark(p, op.key) for p in comment.get("properties") or []):
            return [ItemResult(i, "created", str(comment["id"]))]
    return None


def _preview_comment(http: Http, op: Operation) -> list[PreviewItem]:
    """The comment would be added to an existing issue; a missing one would refuse it."""
    ((i, args),) = op.items
    try:
        http.request("GET", f"{API}/issue/{args.issue_key}", params={"fields": "summary"})
    except VendorError as exc:
        if exc.status == 404:
            return [would_reject(i, exc.code, exc.message, args.issue_key)]
        raise
    return creates(http, op)


def _is_mark(prop: Any, key: str) -> bool:
    value = prop.get("value") if isinstance(prop, dict) else None
    return prop.get("key") == PROPERTY and isinstance(value, dict) and value.get("op") == key


# ---- transition -----------------------------------------------------------------------------


def _transitions(http: Http, issue_key: str) -> list[dict[str, Any]]:
    doc = http.request("GET", f"{API}/issue/{issue_key}/transitions").json()
    return list(doc.get("transitions") or [])


def _resolve(wanted: str, offered: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The offered transition with this id, else the one leading to a status of this name."""
    for t in offered:
        if str(t.get("id")) == wanted:
            return t
    for t in offered:
        if str((t.get("to") or {}).get("name", "")).casefold() == wanted.casefold():
            return t
    return None


def _not_offered(args: TransitionArgs, offered: list[dict[str, Any]]) -> VendorError:
    names = ", ".join(f"{t.get('id')} → {(t.get('to') or {}).get('name')}" for t in offered)
    return VendorError(
        "transition_not_available",
        f"{args.issue_key} offers no transition {args.transition!r} from its current "
        f"status (available: {names or 'none'})",
        status=400,
    )


def _status_of(http: Http, issue_key: str) -> str:
    issue = http.request("GET", f"{API}/issue/{issue_key}", params={"fields": "status"}).json()
    return str(((issue.get("fields") or {}).get("status") or {}).get("name", ""))


def _send_transition(http: Http, op: Operation) -> list[ItemResult]:
    ((i, args),) = op.items
    offered = _transitions(http, args.issue_key)
    move = _resolve(args.transition, offered)
    if move is None:
        # a status rarely offers a transition to itself: already there is done, as the
        # preview says (`unchanged`), not a refusal
        if not args.transition.isdigit() and _status_of(http, args.issue_key).casefold() == (
            args.transition.casefold()
        ):
            return [ItemResult(i, "unchanged", args.issue_key)]
        raise _not_offered(args, offered)
    body = {"transition": {"id": str(move["id"])}}
    http.request("POST", f"{API}/issue/{args.issue_key}/transitions", json=body)
    return [ItemResult(i, "updated", args.issue_key)]


def _find_transition(http: Http, op: Operation) -> list[ItemResult] | None:
    """Done when the issue stands in the target status. Named by id, the target is only
    known while the transition is offered: offered and not yet there means not done; an id
    no longer offered is taken as done (the uncertain attempt moved the issue on)."""
    ((i, args),) = op.items
    current = _status_of(http, args.issue_key)
    offered = _transitions(http, args.issue_key)
    move = _resolve(args.transition, offered)
    if move is None and not args.transition.isdigit():
        target = args.transition
    elif move is None:
        return [ItemResult(i, "updated", args.issue_key)]
    else:
        target = str((move.get("to") or {}).get("name", ""))
    done = current.casefold() == target.casefold()
    return [ItemResult(i, "updated", args.issue_key)] if done else None


def _preview_transition(http: Http, op: Operation) -> list[PreviewItem]:
    """Current status vs target: `unchanged` when the issue already stands in the status
    named, `reject` for a missing issue or a transition not offered from where it stands."""
    ((i, args),) = op.items
    try:
        current = _status_of(http, args.issue_key)
        offered = _transitions(http, args.issue_key)
    except VendorError as exc:
        if exc.status == 404:
            return [would_reject(i, exc.code, exc.message, args.issue_key)]
        raise
    move = _resolve(args.transition, offered)
    if move is not None:
        target = str((move.get("to") or {}).get("name", ""))
    elif not args.transition.isdigit() and args.transition.casefold() == current.casefold():
        target = current
    else:
        refusal = _not_offered(args, offered)
        return [would_reject(i, refusal.code, refusal.message, args.issue_key)]
    return [diffed(i, args.issue_key, {"status": current}, {"status": target})]


create = Tool(
    name="jira.issues.create",
    description=(
        "Create one Jira Cloud issue (REST v3 POST /rest/api/3/issue): project key, summary, "
        "issue type and an optional plain-text description. Safe to retry: the issue carries "
        "the operation's key as an entity property, looked up before anything is resent. The "
        'result is one record {"index": 0, "status": "created", "id": "<issue key>"}.'
    ),
    args=CreateArgs,
    read_only=False,
    idempotent=False,  # a new call is a new issue (the marker guards retries of one call)
    write=Write(Mechanism.MARKER, one, _send_create, _find_create),
)
comment = Tool(
    name="jira.issues.comment",
    description=(
        "Add a plain-text comment to a Jira Cloud issue (POST /rest/api/3/issue/{key}/comment). "
        "Safe to retry: the comment carries the operation's key as a comment property. The "
        "result's id is the comment id."
    ),
    args=CommentArgs,
    read_only=False,
    idempotent=False,
    write=Write(Mechanism.MARKER, one, _send_comment, _find_comment, preview=_preview_comment),
)
transition = Tool(
    name="jira.issues.transition",
    description=(
        "Move a Jira Cloud issue through its workflow by transition id or target status name "
        "(resolved among the transitions the issue offers now). Safe to retry: an issue "
        "already in the target status is not moved again."
    ),
    args=TransitionArgs,
    read_only=False,
    destructive=True,
    idempotent=True,
    write=Write(
        Mechanism.MARKER, one, _send_transition, _find_transition, preview=_preview_transition
    ),
)
TOOLS = (create, comment, transition)
