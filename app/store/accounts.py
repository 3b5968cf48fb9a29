"""Vendor accounts of a tenant: where to call (base URL) and with what (sealed credentials)."""

from __future__ import annotations

import secrets
import time
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.kernel import keys
from app.kernel.errors import InvalidInput, NotFound
from app.kernel.redis import get_redis
from app.kernel.registry import registry
from app.kernel.ssrf import check_public_url, check_token_url
from app.kernel.timefmt import now_iso
from app.store import tokens
from connectors.base import RatePolicy, Vendor


def _sendable(value: Any, info: ValidationInfo) -> Any:
    """Tokens and client credentials travel as they are in HTTP headers and form bodies, where
    only visible ASCII (0x21-0x7E) is sendable: refused here, not by every later call."""
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    if raw is None:
        return value
    if not raw:
        raise ValueError(f"{info.field_name} is empty")
    for i, ch in enumerate(raw):
        if not "\x21" <= ch <= "\x7e":
            raise ValueError(
                f"{info.field_name} has a character at position {i} that is not visible ASCII "
                "(0x21-0x7E: no spaces, control characters or non-ASCII); give it exactly as "
                "the vendor issued it"
            )
    return value


class OAuth2Credentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["oauth2"]
    access_token: SecretStr
    refresh_token: SecretStr | None = None
    expires_in: float | None = Field(
        None, ge=0, le=10 * 365 * 86400, description="Seconds the access token lives (≤ 10 y)"
    )
    expires_at: float | None = Field(
        None, ge=0, le=253402300799, description="Epoch seconds of expiry (≤ year 9999)"
    )
    token_url: str | None = Field(
        None,
        max_length=2000,
        description="Token endpoint (absolute, or a path on base_url); default the vendor's. "
        "Only on the vendor's token host, the base_url host or an operator-allowed host",
    )
    client_id: str | None = None
    client_secret: SecretStr | None = None

    _check_sendable = field_validator(
        "access_token", "refresh_token", "client_id", "client_secret"
    )(_sendable)

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://", "/")):
            raise ValueError("token_url must be an absolute http(s) URL or a path starting with /")
        return value

    @model_validator(mode="after")
    def _refreshable(self) -> OAuth2Credentials:
        if self.refresh_token and not (self.client_id and self.client_secret):
            raise ValueError("a refresh_token needs client_id and client_secret to be usable")
        return self


class BearerCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["bearer"]
    token: SecretStr

    _check_sendable = field_validator("token")(_sendable)


Credentials = Annotated[OAuth2Credentials | BearerCredentials, Field(discriminator="type")]


class RateBudget(BaseModel):
    """The account's own request budget, where the vendor documents none per account or the
    account's differs (a Salesforce org's allocation, an enterprise HubSpot portal): the seed
    of its shared budget, which answers then correct."""

    model_config = ConfigDict(extra="forbid", strict=True)

    limit: int = Field(ge=1, le=1_000_000, description="Requests per window")
    window_s: float = Field(gt=0, le=86_400, description="The rolling window, seconds")


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vendor: str = Field(description="One of the vendors in GET /v1/tools")
    name: str = Field(min_length=1, max_length=200)
    base_url: str | None = Field(
        None, description="Overrides the vendor's API host", max_length=2000
    )
    credentials: Credentials
    events_url: str | None = Field(
        None,
        max_length=2000,
        description="Receives the account's signed events (account.needs_reauth, "
        "account.reactivated)",
    )
    time_zone: str | None = Field(
        None,
        max_length=64,
        description="The vendor account's time zone (IANA, e.g. America/New_York): a daily "
        "quota resets at its midnight; UTC is assumed when absent",
    )
    rate_budget: RateBudget | None = Field(
        None,
        description="Pace this account by its own budget (default: the vendor's documented one)",
    )

    @field_validator("vendor")
    @classmethod
    def _vendor(cls, value: str) -> str:
        vendors = registry().vendors
        if value not in vendors:
            raise ValueError(f"unknown vendor {value!r}; known: {', '.join(sorted(vendors))}")
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        return value.rstrip("/") if value else value

    @field_validator("time_zone")
    @classmethod
    def _time_zone(cls, value: str | None) -> str | None:
        # looked up in the known names, never opened as given (a path, a directory)
        if value is not None and value not in _time_zones():
            raise ValueError(
                f"unknown time_zone {value!r}: give an IANA name like America/New_York or UTC"
            )
        return value


@lru_cache(maxsize=1)
def _time_zones() -> frozenset[str]:
    """IANA zone names of the installed tz database ("localtime" is this host's, not one)."""
    return frozenset(available_timezones() - {"localtime"})


def check_credentials(
    vendor_name: str, creds: OAuth2Credentials | BearerCredentials, base_url: str
) -> None:
    """A refresh token is only usable where there is a token endpoint to send it to; a
    token_url the tenant names gets the SSRF rules and must be where a client secret may go."""
    if not isinstance(creds, OAuth2Credentials):
        return  # a bearer token is never refreshed
    vendor = registry().vendors[vendor_name]
    if creds.refresh_token and not (creds.token_url or vendor.token_url):
        raise InvalidInput(
            f"{vendor_name} has no token endpoint: give `credentials.token_url`, or use "
            '`{"type": "bearer"}` credentials',
            code="token_url_required",
        )
    if creds.token_url:
        url = tokens.token_endpoint(creds.token_url, vendor.token_url, base_url)
        check_token_url(url, base_url=base_url, vendor_token_url=vendor.token_url)


def create_account(tenant_id: str, req: AccountCreate) -> dict[str, Any]:
    vendor = registry().vendors[req.vendor]
    if req.base_url:
        check_public_url(req.base_url, field="base_url")
    if req.events_url:  # checked again before every delivery, like a job's callback_url
        check_public_url(req.events_url, field="events_url")
    account_id = "acc_" + secrets.token_hex(8)
    if not req.base_url and "{" in vendor.base_url:
        raise InvalidInput(
            f"{req.vendor} accounts need a `base_url` (the account's own host, like "
            f"{vendor.base_url})",
            code="base_url_required",
        )
    base_url = req.base_url or vendor.base_url
    check_credentials(req.vendor, req.credentials, base_url)
    get_redis().hset(
        keys.account(account_id),
        mapping={
            "tenant_id": tenant_id,
            "vendor": req.vendor,
            "name": req.name,
            "base_url": base_url,
            "created_at": time.time(),
            **({"events_url": req.events_url} if req.events_url else {}),
            **({"time_zone": req.time_zone} if req.time_zone else {}),
            **(
                {"budget_limit": req.rate_budget.limit, "budget_window_s": req.rate_budget.window_s}
                if req.rate_budget
                else {}
            ),
        },
    )
    tokens.store_initial(account_id, req.credentials, base_url, vendor.token_url)
    return view(account_id, tenant_id)


def load(account_id: str, tenant_id: str | None = None) -> dict[str, str]:
    """The account record; NotFound for another tenant's account as for a missing one."""
    acc = get_redis().hgetall(keys.account(account_id)) if account_id else {}
    if not acc or (tenant_id is not None and acc.get("tenant_id") != tenant_id):
        raise NotFound(f"account {account_id!r} not found", code="account_not_found")
    return acc


def remember_connect(account_id: str, fields: dict[str, str]) -> None:
    """What a connect session left on the account it made or re-authorized: the end user,
    where a re-connect link sends them, and `vendor_account_id`, the vendor's own id of the
    account granted (HubSpot's portal, Salesforce's org, Slack's workspace, Jira's site,
    Stripe's `acct_…`), which a re-authorization must grant again."""
    get_redis().hset(keys.account(account_id), mapping=fields)


def view(account_id: str, tenant_id: str) -> dict[str, Any]:
    acc = load(account_id, tenant_id)
    return {
        "account_id": account_id,
        "vendor": acc["vendor"],
        "name": acc["name"],
        "base_url": acc["base_url"],
        "created_at": now_iso(float(acc["created_at"])),
        "events_url": acc.get("events_url"),
        "time_zone": acc.get("time_zone"),
        "rate_budget": _budget_view(acc),
        "vendor_webhook": vendor_webhook(account_id, acc),
        **tokens.status(account_id),
        **reauth_status(account_id),
    }


def rate_policy(acc: dict[str, str], vendor: Vendor) -> RatePolicy | None:
    """The budget the account is paced by: its own (`rate_budget`), else its vendor's."""
    if acc.get("budget_limit"):
        return RatePolicy(int(acc["budget_limit"]), float(acc["budget_window_s"]))
    return vendor.budget


def _budget_view(acc: dict[str, str]) -> dict[str, Any] | None:
    if not acc.get("budget_limit"):
        return None
    return {"limit": int(acc["budget_limit"]), "window_s": float(acc["budget_window_s"])}


def vendor_webhook(account_id: str, acc: dict[str, str]) -> dict[str, Any] | None:
    """Where the vendor posts this account's webhooks, and how (never the secret)."""
    if not acc.get("webhook_secret"):
        return None
    fallback = acc.get("webhook_fallback_s")
    return {
        "url": f"/v1/vendor-webhooks/{acc['vendor']}/{account_id}",
        "ref": acc.get("webhook_ref"),
        "fallback_s": float(fallback) if fallback else None,
    }


def reauth_status(account_id: str) -> dict[str, Any]:
    """Since when, and why, the account waits for new credentials (both None when it does not).

    The fields live in the token record, next to `status`; tasks/reauth.py writes them."""
    since, reason = get_redis().hmget(keys.token(account_id), "reauth_since", "reauth_reason")
    return {
        "needs_reauth_since": now_iso(float(since)) if since else None,
        "needs_reauth_reason": reason,
    }


def require_vendor(account: dict[str, str], vendor: str) -> None:
    if account["vendor"] != vendor:
        raise InvalidInput(
            f"tool is for {vendor} but the account is a {account['vendor']} account",
            code="account_vendor_mismatch",
        )
