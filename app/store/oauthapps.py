"""A tenant's OAuth app per vendor: the client its end users authorize in a connect flow.

The client secret is sealed like tokens and never returned (`client_secret_set`). The
`authorize_url` / `token_url` / `base_url` overrides exist for the sandbox and tests (and a
vendor's test environment); they get the SSRF rules of account URLs, and the token URL the
token-host rule, since it receives the client secret.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from app.kernel import keys
from app.kernel.crypto import seal, unseal
from app.kernel.errors import NotFound
from app.kernel.redis import get_redis
from app.kernel.ssrf import check_public_url, check_token_url, strict_url
from app.kernel.timefmt import now_iso
from app.store.accounts import _sendable
from connectors.authorize import DIALECTS, Dialect

_HOST = r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"


def check_scopes(value: list[str] | None) -> list[str] | None:
    """Each scope one word: vendors join them with a space or a comma, so neither may be in
    one (it would smuggle in another scope)."""
    for scope in value or []:
        if not scope or len(scope) > 200 or any(c in scope for c in " ,\t\r\n"):
            raise ValueError("each scope is one non-empty word (no spaces or commas)")
    return value


class OAuthAppIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: str = Field(min_length=1, max_length=500)
    client_secret: SecretStr = Field(min_length=1, max_length=2000)
    scopes: list[str] = Field(default_factory=list, max_length=100)
    redirect_uri: str | None = Field(
        None,
        max_length=2000,
        description="The callback registered at the vendor; default this API's "
        "`/connect/callback` (TOOLQUEUE_PUBLIC_URL, else the request's host)",
    )
    login_host: str = Field(
        "login.salesforce.com",
        max_length=253,
        pattern=_HOST,
        description="Salesforce: login.salesforce.com, test.salesforce.com or a My Domain",
    )
    authorize_url: str | None = Field(
        None, max_length=2000, description="Override (sandbox, tests): `{shop}` allowed"
    )
    token_url: str | None = Field(None, max_length=2000, description="Override, as above")
    base_url: str | None = Field(
        None, max_length=2000, description="Override of the new accounts' API host"
    )
    resources_url: str | None = Field(
        None, max_length=2000, description="Jira override: accessible-resources"
    )

    _check_sendable = field_validator("client_id", "client_secret")(_sendable)

    _check_scopes = field_validator("scopes")(lambda v: check_scopes(v))


def dialect(vendor: str) -> Dialect:
    found = DIALECTS.get(vendor)
    if found is None:
        raise NotFound(
            f"no connect flow for {vendor!r}; supported: {', '.join(sorted(DIALECTS))}",
            code="vendor_not_supported",
        )
    return found


def _sample(template: str) -> str:
    """A URL template with its placeholders filled by sample labels, to check its shape and
    host (a `{shop}` or `{subdomain}` label is one DNS label under the checked host)."""
    for name in ("shop", "subdomain", "cloudid"):
        template = template.replace("{" + name + "}", "s")
    return template


def _check_urls(vendor: str, req: OAuthAppIn) -> None:
    """Overrides as account URLs are checked: public (or allow-listed) addresses; the token
    URL only where a client secret may go."""
    for name in ("authorize_url", "token_url", "base_url", "resources_url"):
        url = getattr(req, name)
        if url is not None:
            check_public_url(_sample(url), field=name)
    if req.redirect_uri is not None:  # never fetched by us: only its shape is checked
        strict_url(req.redirect_uri, field="redirect_uri")
    if req.token_url:
        base = _sample(req.base_url or dialect(vendor).base_url or req.token_url)
        vendor_token = _sample(dialect(vendor).token_url).replace("{login_host}", req.login_host)
        check_token_url(_sample(req.token_url), base_url=base, vendor_token_url=vendor_token)


def put(tenant_id: str, vendor: str, req: OAuthAppIn) -> dict[str, Any]:
    dialect(vendor)
    _check_urls(vendor, req)
    record = req.model_dump(exclude={"client_secret"})
    record["scopes"] = orjson.dumps(req.scopes).decode()
    record = {k: v for k, v in record.items() if v is not None}
    key = keys.oauth_app(tenant_id, vendor)
    with get_redis().pipeline() as p:
        p.delete(key)
        p.hset(key, mapping={**record, "sealed_secret": seal(req.client_secret.get_secret_value()),
                             "updated_at": time.time()})  # fmt: skip
        p.execute()
    return view(tenant_id, vendor)


def load(tenant_id: str, vendor: str) -> dict[str, Any]:
    """The app with its scopes decoded and its secret still sealed; NotFound if none."""
    raw = get_redis().hgetall(keys.oauth_app(tenant_id, vendor))
    if not raw:
        raise NotFound(
            f"no OAuth app for {vendor}: PUT /v1/oauth-apps/{vendor} first",
            code="oauth_app_not_found",
        )
    return {**raw, "scopes": orjson.loads(raw["scopes"])}


def client_secret(app: dict[str, Any]) -> str:
    secret: str = unseal(app["sealed_secret"])
    return secret


def view(tenant_id: str, vendor: str) -> dict[str, Any]:
    app = load(tenant_id, vendor)
    shown = ("client_id", "scopes", "redirect_uri", "authorize_url", "token_url", "base_url",
             "resources_url")  # fmt: skip
    out: dict[str, Any] = {"vendor": vendor, **{k: app.get(k) for k in shown}}
    if vendor == "salesforce":
        out["login_host"] = app.get("login_host")
    out["client_secret_set"] = bool(app.get("sealed_secret"))
    out["updated_at"] = now_iso(float(app["updated_at"]))
    return out


def delete(tenant_id: str, vendor: str) -> None:
    if not get_redis().delete(keys.oauth_app(tenant_id, vendor)):
        raise NotFound(f"no OAuth app for {vendor}", code="oauth_app_not_found")
