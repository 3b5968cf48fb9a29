"""Shopify customer writes: the Admin GraphQL `customerUpdate` mutation.

The mutation sets absolute values (`Mechanism.ABSOLUTE`): an uncertain update is simply sent
again, and writes nothing new. Shopify refuses a value inside the HTTP 200 answer, in the
payload's `userErrors` (`[{"field": ["email"], "message": "Email is invalid"}]`): each one is
surfaced as the record's rejection, with its field path. GraphQL cost and THROTTLED are the
read path's (`connectors.ratelimit`); top-level `errors` are raised by `shopify.classify`.

The preview reads the customer (`customer(id:)`, one point) and diffs the fields the call
sets, by the call's own names; no such customer is the mutation's "Customer does not exist".
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.base import Http, Tool
from connectors.errors import ConnectorError
from connectors.shopify import api_path
from connectors.writes import (
    ItemResult,
    Mechanism,
    Operation,
    PreviewItem,
    Write,
    diffed,
    one,
    rejected,
    would_reject,
)

UPDATE = """mutation ToolqueueCustomerUpdate($input: CustomerInput!) {
  customerUpdate(input: $input) {
    customer { id }
    userErrors { field message }
  }
}"""
READ = """query ToolqueueCustomerPreview($id: ID!) {
  customer(id: $id) { id email firstName lastName phone tags note }
}"""
GID = "gid://shopify/Customer/"
INPUT_NAMES = {"first_name": "firstName", "last_name": "lastName"}  # the rest keep their name


class UpdateArgs(BaseModel):
    """Arguments of `shopify.customers.update`: only the fields given are changed."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=80,
        description='The customer: "gid://shopify/Customer/123" or its number "123"',
    )
    email: str | None = Field(None, max_length=320)
    first_name: str | None = Field(None, max_length=255)
    last_name: str | None = Field(None, max_length=255)
    phone: str | None = Field(None, max_length=40)
    tags: list[str] | None = Field(None, max_length=250, description="Replaces the tags")
    note: str | None = Field(None, max_length=5000)

    @field_validator("id")
    @classmethod
    def _gid(cls, value: str) -> str:
        number = value.removeprefix(GID)
        if not number.isdigit():
            raise ValueError('expected "gid://shopify/Customer/<number>" or the number')
        return GID + number


def customer_input(args: UpdateArgs) -> dict[str, Any]:
    """The mutation's `CustomerInput`: the id and every field the call sets."""
    given = args.model_dump(exclude={"id"}, exclude_none=True)
    return {"id": args.id, **{INPUT_NAMES.get(k, k): v for k, v in given.items()}}


def _send_update(http: Http, op: Operation) -> list[ItemResult]:

    ((i, args),) = op.items
    body = {"query": UPDATE, "variables": {"input": customer_input(args)}}
    resp = http.request("POST", api_path(http, "graphql.json"), json=body)
    doc = orjson.loads(resp.content) if resp.content else {}
    payload = ((doc.get("data") or {}) if isinstance(doc, dict) else {}).get("customerUpdate")
    if not isinstance(payload, dict):
        raise ConnectorError("bad_response", "Shopify's answer has no customerUpdate payload")
    errors = [e for e in payload.get("userErrors") or [] if isinstance(e, dict)]
    if errors:
        return [_user_errors(i, errors)]
    customer = payload.get("customer") or {}
    return [ItemResult(i, "updated", str(customer.get("id") or args.id))]


def _user_errors(i: int, errors: list[dict[str, Any]]) -> ItemResult:
    """The record's rejection: every user error's message, the first one's field path."""
    field = [str(f) for f in errors[0].get("field") or []]
    message = "; ".join(
        f"{'.'.join(map(str, e.get('field') or [])) or 'input'}: {e.get('message', 'invalid')}"
        for e in errors
    )
    return rejected(i, "USER_ERROR", message, field=field)


def _preview_update(http: Http, op: Operation) -> list[PreviewItem]:
    ((i, args),) = op.items
    body = {"query": READ, "variables": {"id": args.id}}
    resp = http.request("POST", api_path(http, "graphql.json"), json=body)
    doc = orjson.loads(resp.content) if resp.content else {}
    node = ((doc.get("data") or {}) if isinstance(doc, dict) else {}).get("customer")
    if not isinstance(node, dict):
        return [would_reject(i, "USER_ERROR", "id: Customer does not exist", args.id)]
    current = {k: node.get(INPUT_NAMES.get(k, k)) for k in UpdateArgs.model_fields}
    proposed = args.model_dump(exclude={"id"}, exclude_none=True)
    return [diffed(i, args.id, current, proposed)]


update = Tool(
    name="shopify.customers.update",
    description=(
        "Update one Shopify customer (Admin GraphQL customerUpdate): only the fields given "
        "(email, first_name, last_name, phone, tags, note) change; values are absolute, so a "
        "retry changes nothing more. A value Shopify refuses (userErrors) rejects the record, "
        'with the field and Shopify\'s message in its "error".'
    ),
    args=UpdateArgs,
    read_only=False,
    destructive=True,
    idempotent=True,
    write=Write(Mechanism.ABSOLUTE, one, _send_update, preview=_preview_update),
)
TOOLS = (update,)
