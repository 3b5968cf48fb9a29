"""Unified resources: one tool across vendors, records in one documented schema.

- `crm.contacts.list` (HubSpot, Salesforce): `id, first_name, last_name, email, phone,
  company, created_at, updated_at`.
- `ticketing.tickets.list` (Jira, Zendesk, GitHub issues): `id, title, status, priority,
  assignee, created_at, updated_at, url`; `status` is the vendor's status, lower-cased.

The account decides the vendor. The vendor's own record goes under `remote_data` only when
`include_remote_data` is true (agents rarely need it and it eats the 128 KiB cap).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.base import Cursor, Http, Page, Record, Tool
from connectors.errors import VendorError


class ContactsArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_remote_data: bool = Field(False, description="Add the vendor's record as remote_data")


class TicketsArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str | None = Field(
        None,
        max_length=200,
        description="Jira project key, or GitHub `owner/repo` (required there); Zendesk: unused",
    )
    status: Literal["open", "closed", "all"] = Field("all", description="Which tickets")
    include_remote_data: bool = Field(False, description="Add the vendor's record as remote_data")


@dataclass(frozen=True)
class Mapping:
    tool: str  # the vendor tool that fetches the pages
    args: Callable[[Any], dict[str, Any]]  # unified args -> that tool's args
    record: Callable[[Record], dict[str, Any]]  # vendor record -> common schema
    keep: Callable[[Record, Any], bool] = lambda r, a: True  # client-side filter


def _get(record: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def _lower(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) else value


CONTACT_FIELDS = [
    "firstname",
    "lastname",
    "email",
    "phone",
    "company",
    "createdate",
    "lastmodifieddate",
]
SF_CONTACTS = (
    "SELECT Id, FirstName, LastName, Email, Phone, Account.Name, CreatedDate, "
    "LastModifiedDate FROM Contact ORDER BY Id"
)

CONTACTS: dict[str, Mapping] = {
    "hubspot": Mapping(
        "hubspot.contacts.list",
        lambda a: {"properties": CONTACT_FIELDS, "limit": 100},
        lambda r: {
            "id": str(r.get("id")),
            "first_name": _get(r, "properties", "firstname"),
            "last_name": _get(r, "properties", "lastname"),
            "email": _get(r, "properties", "email"),
            "phone": _get(r, "properties", "phone"),
            "company": _get(r, "properties", "company"),
            "created_at": r.get("createdAt") or _get(r, "properties", "createdate"),
            "updated_at": r.get("updatedAt") or _get(r, "properties", "lastmodifieddate"),
        },
    ),
    "salesforce": Mapping(
        "salesforce.query",
        lambda a: {"soql": SF_CONTACTS},
        lambda r: {
            "id": r.get("Id"),
            "first_name": r.get("FirstName"),
            "last_name": r.get("LastName"),
            "email": r.get("Email"),
            "phone": r.get("Phone"),
            "company": _get(r, "Account", "Name"),
            "created_at": r.get("CreatedDate"),
            "updated_at": r.get("LastModifiedDate"),
        },
    ),
}


def _jql(a: TicketsArgs) -> str:
    if not a.project:
        raise VendorError("project_required", "give `project` (the Jira project key)")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", a.project):
        raise VendorError("invalid_args", f"{a.project!r} is not a Jira project key")
    clauses = [f'project = "{a.project}"']
    if a.status == "open":
        clauses.append("statusCategory != Done")
    elif a.status == "closed":
        clauses.append("statusCategory = Done")
    return " AND ".join(clauses) + " ORDER BY created ASC"


def _repo(a: TicketsArgs) -> dict[str, Any]:
    owner, _, repo = (a.project or "").partition("/")
    if not owner or not repo:
        raise VendorError("project_required", "give `project` as GitHub `owner/repo`")
    return {"owner": owner, "repo": repo, "state": a.status}


CLOSED = {"closed", "solved", "done", "resolved"}

TICKETS: dict[str, Mapping] = {
    "jira": Mapping(
        "jira.issues.search",
        lambda a: {"jql": _jql(a)},
        lambda r: {
            "id": str(r.get("id")),
            "title": _get(r, "fields", "summary"),
            "status": _lower(_get(r, "fields", "status", "name")),
            "priority": _lower(_get(r, "fields", "priority", "name")),
            "assignee": _get(r, "fields", "assignee", "displayName"),
            "created_at": _get(r, "fields", "created"),
            "updated_at": _get(r, "fields", "updated"),
            "url": r.get("self"),
        },
    ),
    "zendesk": Mapping(
        "zendesk.tickets.list",
        lambda a: {},
        lambda r: {
            "id": str(r.get("id")),
            "title": r.get("subject"),
            "status": _lower(r.get("status")),
            "priority": _lower(r.get("priority")),
            "assignee": str(r["assignee_id"]) if r.get("assignee_id") is not None else None,
            "created_at": r.get("created_at"),
            "updated_at": r.get("updated_at"),
            "url": r.get("url"),
        },
        keep=lambda r, a: (
            a.status == "all" or (a.status == "closed") == (_lower(r.get("status")) in CLOSED)
        ),
    ),
    "github": Mapping(
        "github.issues.list",
        _repo,
        lambda r: {
            "id": str(r.get("id")),
            "title": r.get("title"),
            "status": _lower(r.get("state")),
            "priority": next(
                (
                    label["name"].split(":", 1)[1].strip().lower()
                    for label in r.get("labels") or []
                    if isinstance(label, dict)
                    and str(label.get("name", "")).lower().startswith("priority:")
                ),
                None,
            ),
            "assignee": _get(r, "assignee", "login"),
            "created_at": r.get("created_at"),
            "updated_at": r.get("updated_at"),
            "url": r.get("html_url"),
        },
        keep=lambda r, a: "pull_request" not in r,  # GitHub lists PRs among issues
    ),
}


def _unified(
    name: str,
    description: str,
    args: type[BaseModel],
    mappings: dict[str, Mapping],
    tools: dict[str, Tool],
) -> Tool | None:
    available = {v: m for v, m in mappings.items() if m.tool in tools}
    if not available:
        return None

    def fetch(http: Http, a: Any, cursor: Cursor | None) -> Page:
        mapping = available[http.vendor.name]
        tool = tools[mapping.tool]
        try:
            vendor_args = tool.args.model_validate(mapping.args(a))
        except ValidationError as exc:
            err = exc.errors()[0]
            raise VendorError("invalid_args", f"{err['loc'][0]}: {err['msg']}") from None
        page = tool.fetch(http, vendor_args, cursor)
        records = []
        for r in page.records:
            if mapping.keep(r, a):
                out = mapping.record(r)
                if a.include_remote_data:
                    out["remote_data"] = r
                records.append(out)
        return Page(records, page.next_cursor)

    made = Tool(
        name=name, description=description, args=args, fetch=fetch, vendors=tuple(sorted(available))
    )
    return _with_effects(made, [tools[m.tool] for m in available.values()])


def _with_effects(unified: Tool, used: list[Tool]) -> Tool:
    """The unified tool's annotations: what the vendor tools it may run do, the worst of them."""
    return replace(
        unified,
        read_only=all(t.read_only for t in used),
        destructive=any(t.destructive for t in used),
        idempotent=all(t.repeat_safe for t in used),
        open_world=any(t.open_world for t in used),
    )


def unified_tools(tools: dict[str, Tool]) -> list[Tool]:
    made = [
        _unified(
            "crm.contacts.list",
            "Every CRM contact in one schema (id, first_name, last_name, email, phone, "
            "company, created_at, updated_at), whichever CRM the account is.",
            ContactsArgs,
            CONTACTS,
            tools,
        ),
        _unified(
            "ticketing.tickets.list",
            "Every ticket in one schema (id, title, status, priority, assignee, created_at, "
            "updated_at, url), whichever ticketing system the account is.",
            TicketsArgs,
            TICKETS,
            tools,
        ),
    ]
    return [t for t in made if t is not None]
