"""HubSpot CRM v3: `after` cursor from `paging.next.after`; X-HubSpot-RateLimit-* headers."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import Vendor
from connectors.pagination import BodyCursor
from connectors.resource import Resource
from connectors.specs import error_classifier


class ListArgs(BaseModel):
    """Arguments of the `hubspot.*.list` tools."""

    model_config = ConfigDict(extra="forbid")

    properties: list[str] = Field(
        default_factory=list,
        description="Properties to return; empty: HubSpot's defaults",
        max_length=200,
    )
    limit: int = Field(100, ge=1, le=100, description="Records per vendor page (max 100)")


AFTER = BodyCursor(cursor="paging.next.after", param="after")
QUERY = {"limit": "{{args.limit}}", "properties": "{{args.properties:csv}}", "archived": "false"}

contacts_list = Resource(
    name="hubspot.contacts.list",
    description=(
        "List HubSpot CRM contacts, every page fetched for you (CRM v3 "
        "/crm/v3/objects/contacts). Use `fields` to project only what you need."
    ),
    args=ListArgs,
    method="GET",
    path="/crm/v3/objects/contacts",
    query=QUERY,
    records="results",
    paginate=AFTER,
)

VENDOR = Vendor(
    name="hubspot",
    base_url="https://api.hubapi.com",
    token_url="/oauth/v1/token",
    # HubSpot errors carry `category` and `message`; 401/429/5xx are handled generically.
    classify=error_classifier("category || errorType", "message"),
    rate_limit="hubspot",
    tools=(contacts_list.tool(),),
)
