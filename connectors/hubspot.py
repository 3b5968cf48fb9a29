"""HubSpot CRM v3: `after` cursor from `paging.next.after`; X-HubSpot-RateLimit-* headers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import Cursor, Http, Page, Tool, Vendor
from connectors.errors import VendorError


class ContactsListArgs(BaseModel):
    """Arguments of `hubspot.contacts.list`."""

    model_config = ConfigDict(extra="forbid")

    properties: list[str] = Field(
        default_factory=list,
        description="Contact properties to return; empty: HubSpot's defaults",
        max_length=200,
    )
    limit: int = Field(100, ge=1, le=100, description="Contacts per vendor page (max 100)")


def classify(resp: Any) -> None:
    """HubSpot errors carry `category` (or `status`) and `message`; 429s are left to ratelimit."""
    if resp.status_code < 400 or resp.status_code in (401, 429) or resp.status_code >= 500:
        return
    try:
        doc = resp.json()
    except ValueError:
        doc = {}
    code = doc.get("category") or doc.get("errorType") or f"http_{resp.status_code}"
    raise VendorError(
        str(code), str(doc.get("message") or resp.text[:500]), status=resp.status_code
    )


def list_contacts(http: Http, args: ContactsListArgs, cursor: Cursor | None) -> Page:
    params: dict[str, Any] = {"limit": args.limit, "archived": "false"}
    if args.properties:
        params["properties"] = ",".join(args.properties)
    if cursor:
        params["after"] = cursor
    doc = http.request("GET", "/crm/v3/objects/contacts", params=params).json()
    after = ((doc.get("paging") or {}).get("next") or {}).get("after")
    return Page(records=list(doc.get("results") or []), next_cursor=after or None)


VENDOR = Vendor(
    name="hubspot",
    base_url="https://api.hubapi.com",
    token_url="/oauth/v1/token",
    classify=classify,
    tools=(
        Tool(
            name="hubspot.contacts.list",
            description=(
                "List HubSpot CRM contacts, every page fetched for you (CRM v3 "
                "/crm/v3/objects/contacts). Use `fields` to project only what you need."
            ),
            args=ContactsListArgs,
            fetch=list_contacts,
        ),
    ),
)
