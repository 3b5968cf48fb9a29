"""Slack Web API: `cursor` + `response_metadata.next_cursor` ("" ends); errors in HTTP 200s.

Slack answers almost every refusal with HTTP 200 and `{"ok": false, "error": "<code>"}`, so
`classify` reads the body of every response. Rate limits (429 + `Retry-After` +
`ok:false ratelimited`) are left to the generic check. Auth failures (`invalid_auth`,
`token_expired`, ...) are Slack's 401: the tools refresh the token once and retry, then give
up with AuthRejected, exactly what connectors/http.py does for a real 401.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from connectors.base import Vendor
from connectors.errors import Transient, Unauthorized, VendorError
from connectors.pagination import BodyCursor, PageRequest
from connectors.resource import Resource

# Slack's answers to a token it will not take; a refresh may cure every one of them.
AUTH_ERRORS = frozenset(
    {"not_authed", "invalid_auth", "token_expired", "token_revoked", "account_inactive"}
)
# "likely due to a transient issue on our end" (Slack's words); safe to retry for reads.
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable"})


class SlackAuthError(Unauthorized):
    """An HTTP 200 `ok:false` auth failure: Slack's 401."""


def _detail(doc: dict[str, Any], code: str) -> str:
    """Slack errors carry no prose: use `needed`/`provided` (missing_scope) and
    `response_metadata.messages` (invalid_arguments) when present, else the code."""
    parts = [f"{key}: {doc[key]}" for key in ("needed", "provided") if doc.get(key)]
    meta = doc.get("response_metadata")
    messages = meta.get("messages") if isinstance(meta, dict) else None
    if isinstance(messages, list):
        parts += [str(m) for m in messages]
    return "; ".join(parts) or code


def classify(resp: Any) -> None:
    """Raise Slack's own errors, whatever the HTTP status; leave 429s and 5xx to the
    generic check (a `ratelimited` body is a rate-limit refusal, not an error)."""
    if resp.status_code == 429 or resp.status_code >= 500:
        return
    try:
        doc = resp.json()
    except ValueError:
        return
    if not isinstance(doc, dict) or doc.get("ok") is not False:
        return
    code = str(doc.get("error") or "unknown_error")
    if code == "ratelimited":
        return
    if code in AUTH_ERRORS:
        raise SlackAuthError(code, _detail(doc, code), status=resp.status_code)
    if code in TRANSIENT_ERRORS:
        raise Transient(f"slack answered {code}", status=resp.status_code)
    raise VendorError(code, _detail(doc, code), status=resp.status_code)


@dataclass(frozen=True)
class SlackResource(Resource):
    """A Resource whose booleans go out as Slack spells them."""

    def request(self, args: BaseModel) -> PageRequest:
        req = super().request(args)
        params = {k: "true" if v is True else v for k, v in req.params.items() if v is not False}
        return replace(req, params=params)


class HistoryArgs(BaseModel):
    """Arguments of `slack.conversations.history`."""

    model_config = ConfigDict(extra="forbid")

    channel: str = Field(
        description="Conversation id (C… public, G… private, D… direct message)",
        pattern=r"^[CGD][A-Z0-9]{2,30}$",
    )
    limit: int = Field(200, ge=1, le=999, description="Messages per Slack page (1-999)")
    oldest: str | None = Field(
        None,
        pattern=r"^\d{1,12}(\.\d{1,6})?$",
        description="Only messages after this Slack timestamp (e.g. 1512085950.000216)",
    )
    latest: str | None = Field(
        None,
        pattern=r"^\d{1,12}(\.\d{1,6})?$",
        description="Only messages before this Slack timestamp",
    )
    inclusive: bool = Field(False, description="Also include messages exactly at `oldest`/`latest`")


class UsersArgs(BaseModel):
    """Arguments of `slack.users.list`."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(200, ge=1, le=1000, description="Members per Slack page (1-1000)")


NEXT_CURSOR = BodyCursor(cursor="response_metadata.next_cursor", param="cursor")

history = SlackResource(
    name="slack.conversations.history",
    description=(
        "Messages of one Slack conversation, newest first, every page fetched for you "
        "(conversations.history). Records keep Slack's shape: type, user, text, ts, plus "
        "thread fields when present. Bound the range with `oldest`/`latest` (Slack "
        "timestamps); use `fields` to project only what you need."
    ),
    args=HistoryArgs,
    path="/api/conversations.history",
    query={
        "channel": "{{args.channel}}",
        "limit": "{{args.limit}}",
        "oldest": "{{args.oldest}}",
        "latest": "{{args.latest}}",
        "inclusive": "{{args.inclusive}}",
    },
    records="messages",
    paginate=NEXT_CURSOR,
    record_id="ts",
)

users = SlackResource(
    name="slack.users.list",
    description=(
        "Every member of the Slack workspace, deactivated ones included (`deleted: true`), "
        "every page fetched for you (users.list). Records keep Slack's shape: id, name, "
        "real_name, deleted, profile.email, ..."
    ),
    args=UsersArgs,
    path="/api/users.list",
    query={"limit": "{{args.limit}}"},
    records="members",
    paginate=NEXT_CURSOR,
    record_id="id",
)

VENDOR = Vendor(
    name="slack",
    base_url="https://slack.com",
    token_url="/api/oauth.v2.access",
    classify=classify,
    rate_limit="slack",
    tools=(history.tool(), users.tool()),
)
