"""Unified writes: one argument schema whichever vendor the account is, run as that vendor's
own write tool (`connectors.writes.Route`), so its retry-safety mechanism applies unchanged.

- `crm.contacts.upsert` (HubSpot, Salesforce): `{"records": [{"email", "first_name"?,
  "last_name"?, "phone"?}], "external_id_field"?}` matched on the email: HubSpot's `email`
  property; on Salesforce the Contact's External ID field that holds the email
  (`external_id_field`, e.g. `Email__c`: a standard field cannot be an External ID), with
  `Email` set too.
- `ticketing.tickets.create` (Jira, Zendesk, GitHub): `{"title", "description"?,
  "project"?, "priority"?, "issue_type"?}`: `project` is the Jira project key or GitHub's
  `owner/repo` (as `ticketing.tickets.list` takes it; unused on Zendesk); `priority` is
  Zendesk's own field, GitHub's `priority: <p>` label (what the unified list reads back), and
  not sent to Jira (whose priorities are per-project schemes); `issue_type` is Jira's (Task).

Results are the write results every write tool gives: `{"index", "status", "id", "error"?}`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import Tool
from connectors.errors import VendorError
from connectors.writes import Route

MAX_RECORDS = 50_000


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    first_name: str | None = Field(None, max_length=255)
    last_name: str | None = Field(None, max_length=255)
    phone: str | None = Field(None, max_length=64)


class ContactsUpsertArgs(BaseModel):
    """Arguments of `crm.contacts.upsert`."""

    model_config = ConfigDict(extra="forbid")

    records: list[Contact] = Field(min_length=1, max_length=MAX_RECORDS)
    external_id_field: str | None = Field(
        None,
        pattern=r"^[A-Za-z][A-Za-z0-9_]{0,76}__c$",
        description="Salesforce only: the Contact's External ID field holding the email",
    )


def _hubspot_contacts(a: ContactsUpsertArgs) -> dict[str, Any]:
    names = {"first_name": "firstname", "last_name": "lastname", "phone": "phone"}
    return {
        "id_property": "email",
        "records": [
            {"id": c.email, "properties": _fields(c, names)} for c in a.records
        ],
    }


def _salesforce_contacts(a: ContactsUpsertArgs) -> dict[str, Any]:
    if a.external_id_field is None:
        raise VendorError(
            "external_id_field_required",
            "on Salesforce, give `external_id_field`: the Contact's External ID field that "
            "holds the email (e.g. Email__c)",
        )
    names = {"first_name": "FirstName", "last_name": "LastName", "phone": "Phone"}
    field = a.external_id_field
    return {
        "sobject": "Contact",
        "external_id_field": field,
        "records": [{field: c.email, "Email": c.email, **_fields(c, names)} for c in a.records],
    }


def _fields(model: BaseModel, names: dict[str, str]) -> dict[str, Any]:
    """The vendor's field names for the values given (an omitted field is left as it is)."""
    given = model.model_dump(exclude_none=True)
    return {vendor: given[ours] for ours, vendor in names.items() if ours in given}


class TicketCreateArgs(BaseModel):
    """Arguments of `ticketing.tickets.create`."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=30_000)
    project: str | None = Field(
        None, max_length=200, description="Jira project key, or GitHub `owner/repo`"
    )
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    issue_type: str = Field("Task", min_length=1, max_length=60, description="Jira only")


def _needs_project(a: TicketCreateArgs, what: str) -> str:
    if not a.project:
        raise VendorError("project_required", f"give `project` ({what})")
    return a.project


def _jira_ticket(a: TicketCreateArgs) -> dict[str, Any]:
    out = {"project_key": _needs_project(a, "the Jira project key"), "summary": a.title,
           "issue_type": a.issue_type}  # fmt: skip
    return {**out, "description": a.description} if a.description else out


def _zendesk_ticket(a: TicketCreateArgs) -> dict[str, Any]:
    out: dict[str, Any] = {"subject": a.title, "body": a.description or a.title}
    return {**out, "priority": a.priority} if a.priority else out


def _github_issue(a: TicketCreateArgs) -> dict[str, Any]:
    owner, _, repo = _needs_project(a, "GitHub `owner/repo`").partition("/")
    if not owner or not repo:
        raise VendorError("project_required", "give `project` as GitHub `owner/repo`")
    out: dict[str, Any] = {"owner": owner, "repo": repo, "title": a.title}
    if a.description:
        out["body"] = a.description
    return {**out, "labels": [f"priority: {a.priority}"]} if a.priority else out


TICKETS = {
    "jira": Route("jira.issues.create", _jira_ticket),
    "zendesk": Route("zendesk.tickets.create", _zendesk_ticket),
    "github": Route("github.issues.create", _github_issue),
}
CONTACTS = {
    "hubspot": Route("hubspot.contacts.upsert", _hubspot_contacts),
    "salesforce": Route("salesforce.records.upsert", _salesforce_contacts),
}


def _routed(name: str, description: str, args: type[BaseModel], routes: dict[str, Route],
            tools: dict[str, Tool]) -> Tool | None:  # fmt: skip
    available = {v: r for v, r in routes.items() if r.tool in tools}
    if not available:
        return None
    used = [tools[r.tool] for r in available.values()]
    return Tool(
        name=name,
        description=description,
        args=args,
        vendors=tuple(sorted(available)),
        read_only=False,
        destructive=any(t.destructive for t in used),
        idempotent=all(t.repeat_safe for t in used),
        routes=available,
    )


def unified_writes(tools: dict[str, Tool]) -> list[Tool]:
    made = [
        _routed(
            "crm.contacts.upsert",
            "Create or update CRM contacts matched on their email, in one schema (email, "
            "first_name, last_name, phone), whichever CRM the account is; runs as the vendor's "
            "own upsert (hubspot.contacts.upsert, salesforce.records.upsert), safe to retry.",
            ContactsUpsertArgs,
            CONTACTS,
            tools,
        ),
        _routed(
            "ticketing.tickets.create",
            "Create one ticket in one schema (title, description, project, priority), "
            "whichever ticketing system the account is; runs as the vendor's own create "
            "(jira.issues.create, zendesk.tickets.create, github.issues.create) with its "
            "retry safety (a marker or an idempotency key): created once, however it is "
            "retried.",
            TicketCreateArgs,
            TICKETS,
            tools,
        ),
    ]
    return [t for t in made if t is not None]
