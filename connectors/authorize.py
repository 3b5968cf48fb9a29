"""The vendors' authorization-code dialects (declarative), and the code-for-token exchange.

One frozen `Dialect` per vendor says where the user is sent (`authorize_url`), where the code
is exchanged (`token_url`), how scopes are joined, whether PKCE (S256) is sent, which extra
query parameters the authorize URL carries, and how the token answer becomes the account's
`base_url` (`base_url_from`). URL templates hold `{shop}` (Shopify) or `{login_host}`
(Salesforce) placeholders filled from the connect session and the OAuth app. A vendor whose
code grant is not RFC 6749's standard form says which fields it takes (`code_form`; Stripe:
the platform's secret key as `client_secret`, no `client_id` or `redirect_uri`).

Verified facts and their sources: docs/connect.md, "Vendor OAuth dialects".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit

import requests

from connectors import oauth
from connectors.errors import AuthRejected, Transient

STANDARD_FORM = ("grant_type", "code", "redirect_uri", "client_id", "client_secret")


@dataclass(frozen=True)
class Dialect:
    vendor: str
    authorize_url: str  # template: {shop}, {subdomain}, {login_host}
    token_url: str  # template, as above
    scope_separator: str
    pkce: bool  # send code_challenge (S256) and code_verifier
    extra_params: tuple[tuple[str, str], ...] = ()
    # where the account's base_url comes from: the vendor's API host, the token answer's
    # `instance_url` (Salesforce), or the shop's own host (Shopify)
    base_url_from: Literal["vendor", "instance_url", "shop", "accessible_resources"] = "vendor"
    base_url: str = ""  # the template for base_url_from == "shop" / "vendor"
    signed_callback: bool = False  # Shopify: the callback query carries an `hmac`
    resources_url: str = ""  # Jira: where the token's sites (cloud ids) are listed
    needs: tuple[str, ...] = field(default=())  # session fields the templates need
    # the code grant's form fields (RFC 6749 4.1.3 with client_secret_post; plus the PKCE
    # verifier where `pkce`)
    code_form: tuple[str, ...] = STANDARD_FORM
    # store the grant's refresh token on the account (Stripe: no; its access token does not
    # expire, and a deauthorization revokes both)
    keeps_refresh_token: bool = True
    scope_choices: tuple[str, ...] = ()  # non-empty: a session asks one of these, or none

    def authorize(self, values: dict[str, str], query: dict[str, str]) -> str:
        """The authorize URL with its query (`values` fill the template)."""
        return (
            self.authorize_url.format(**values)
            + "?"
            + urlencode({**dict(self.extra_params), **query})
        )


DIALECTS: dict[str, Dialect] = {
    "hubspot": Dialect(
        vendor="hubspot",
        authorize_url="https://app.hubspot.com/oauth/authorize",
        token_url="https://api.hubapi.com/oauth/v1/token",
        scope_separator=" ",
        pkce=True,
        base_url="https://api.hubapi.com",
    ),
    "github": Dialect(
        vendor="github",
        authorize_url="https://github.com/login/oauth/authorize",
        token_url="https://github.com/login/oauth/access_token",
        scope_separator=" ",  # OAuth apps; a GitHub App ignores scopes (its permissions rule)
        pkce=True,  # S256 only, since July 2025
        base_url="https://api.github.com",
    ),
    "slack": Dialect(
        vendor="slack",
        authorize_url="https://slack.com/oauth/v2/authorize",
        token_url="https://slack.com/api/oauth.v2.access",
        scope_separator=",",  # bot scopes in `scope`; user scopes would go in `user_scope`
        pkce=False,  # enabling PKCE makes a Slack app a public client, for good
        base_url="https://slack.com",
    ),
    "zendesk": Dialect(
        vendor="zendesk",
        authorize_url="https://{subdomain}.zendesk.com/oauth/authorizations/new",
        token_url="https://{subdomain}.zendesk.com/oauth/tokens",
        scope_separator=" ",  # "read write", or per resource: "tickets:read"
        pkce=True,  # S256, for the Ticketing, Help Center and Voice APIs
        base_url="https://{subdomain}.zendesk.com",
        needs=("subdomain",),
    ),
    "jira": Dialect(
        vendor="jira",
        authorize_url="https://auth.atlassian.com/authorize",
        token_url="https://auth.atlassian.com/oauth/token",
        scope_separator=" ",  # add offline_access to the scopes for a refresh token
        pkce=False,  # Atlassian's 3LO documents no PKCE
        extra_params=(("audience", "api.atlassian.com"), ("prompt", "consent")),
        base_url_from="accessible_resources",
        base_url="https://api.atlassian.com/ex/jira/{cloudid}",
        resources_url="https://api.atlassian.com/oauth/token/accessible-resources",
    ),
    "salesforce": Dialect(
        vendor="salesforce",
        authorize_url="https://{login_host}/services/oauth2/authorize",
        token_url="https://{login_host}/services/oauth2/token",
        scope_separator=" ",
        pkce=True,
        base_url_from="instance_url",
    ),
    "shopify": Dialect(
        vendor="shopify",
        authorize_url="https://{shop}.myshopify.com/admin/oauth/authorize",
        token_url="https://{shop}.myshopify.com/admin/oauth/access_token",
        scope_separator=",",
        pkce=False,  # Shopify's authorization-code grant for offline tokens has no PKCE
        base_url_from="shop",
        base_url="https://{shop}.myshopify.com",
        signed_callback=True,
        needs=("shop",),
    ),
    "stripe": Dialect(
        vendor="stripe",
        authorize_url="https://connect.stripe.com/oauth/authorize",
        token_url="https://connect.stripe.com/oauth/token",
        scope_separator=" ",  # never joins: one scope, read_only (Stripe's default) or read_write
        scope_choices=("read_only", "read_write"),
        pkce=False,  # Stripe's authorize URL takes no code_challenge
        base_url="https://api.stripe.com",  # the access token is a secret key of the account
        code_form=("grant_type", "code", "client_secret"),  # client_secret: the platform key
        keeps_refresh_token=False,
    ),
}


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def shopify_hmac_ok(query: list[tuple[str, str]], secret: str) -> bool:
    """Shopify's callback signature: HMAC-SHA256 (hex) with the app secret over the query
    without `hmac` (and `signature`), pairs sorted and joined `k=v&k=v`."""
    given = [v for k, v in query if k == "hmac"]
    if len(given) != 1:
        return False
    rest = sorted((k, v) for k, v in query if k not in ("hmac", "signature"))
    message = "&".join(f"{k}={v}" for k, v in rest)
    expected = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given[0])


@dataclass(frozen=True)
class CodeGrant:
    access_token: str
    refresh_token: str | None
    expires_in: float | None
    instance_url: str | None  # Salesforce: the org's API host
    vendor_account: str | None = None  # Stripe: the connected account (`stripe_user_id`)


def exchange(
    token_url: str,
    *,
    code: str,
    redirect_uri: str,
    client_id: str,
    client_secret: str,
    code_verifier: str | None,
    fields: tuple[str, ...] = STANDARD_FORM,
    timeout: float = 15.0,
) -> CodeGrant:
    """The authorization-code grant (RFC 6749 4.1.3), through the pinned token session, with
    the form `fields` the vendor takes; AuthRejected for a refusal (the vendor's error code
    only, never its text), Transient for anything retryable."""
    full = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    form = {k: v for k, v in full.items() if k in fields}
    if code_verifier:
        form["code_verifier"] = code_verifier
    try:
        resp = oauth.session().post(
            token_url, data=form, headers={"Accept": "application/json"}, timeout=timeout,
            allow_redirects=False,
        )  # fmt: skip
    except oauth.TRANSPORT_ERRORS as exc:
        raise Transient(f"token endpoint: {type(exc).__name__}") from None
    return _grant(resp)


def _grant(resp: requests.Response) -> CodeGrant:
    if resp.status_code >= 500 or resp.status_code in (408, 429):
        raise Transient(f"token endpoint answered {resp.status_code}", status=resp.status_code)
    try:
        doc = resp.json()
    except ValueError:
        doc = {}
    doc = doc if isinstance(doc, dict) else {}
    if resp.status_code >= 400 or not doc.get("access_token"):
        code = str(_error_code(doc) or resp.status_code)[:60]
        raise AuthRejected(f"the vendor refused the code ({code})", status=resp.status_code)
    expires = doc.get("expires_in")
    return CodeGrant(
        access_token=str(doc["access_token"]),
        refresh_token=str(doc["refresh_token"]) if doc.get("refresh_token") else None,
        expires_in=float(expires) if isinstance(expires, int | float) else None,
        instance_url=str(doc["instance_url"]) if doc.get("instance_url") else None,
        vendor_account=_vendor_account(doc),
    )


def _vendor_account(doc: dict[str, Any]) -> str | None:
    """The vendor's id of the account granted, where the token answer names it: Stripe's
    `stripe_user_id`, HubSpot's `hub_id` (in token answers since August 2025), Slack's
    `team.id`, the org of Salesforce's identity URL (`…/id/<org>/<user>`: another user of the
    same org is the same account)."""
    if doc.get("stripe_user_id"):
        return str(doc["stripe_user_id"])
    if isinstance(doc.get("hub_id"), int | str) and str(doc["hub_id"]):
        return f"hub:{doc['hub_id']}"
    team = doc.get("team")
    if isinstance(team, dict) and team.get("id"):  # Slack v2: the workspace installed to
        return f"team:{team['id']}"
    parts = str(doc.get("id") or "").rstrip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "id" and parts[-2].startswith("00D"):
        return f"org:{parts[-2]}"
    return None


def _error_code(doc: dict[str, Any]) -> object:
    """The refusal's code: OAuth's `error` string, HubSpot's `status`, or (Stripe's API shape,
    `error` an object) its `code` or `type` — never the object itself, which holds text."""
    error = doc.get("error")
    if isinstance(error, dict):
        return error.get("code") or error.get("type")
    return error or doc.get("status")


class SiteNotGranted(AuthRejected):
    """The session named an Atlassian site the user did not grant."""


def cloud_id(
    resources_url: str, access_token: str, site: str | None = None, *,
    keep: str | None = None, timeout: float = 15.0,
) -> str:  # fmt: skip
    """Atlassian: the cloud id of the site the token may reach (`GET accessible-resources`, a
    JSON list of `{id, url, name, scopes}`): `keep` (a re-authorized account's own site),
    else the one whose host is `site` (`acme` meaning `acme.atlassian.net`), else the first.
    The id makes the account's API base URL."""
    try:
        resp = oauth.session().get(
            resources_url, headers={"Authorization": f"Bearer {access_token}",
                                    "Accept": "application/json"},
            timeout=timeout, allow_redirects=False,
        )  # fmt: skip
    except oauth.TRANSPORT_ERRORS as exc:
        raise Transient(f"accessible-resources: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise AuthRejected(f"accessible-resources answered {resp.status_code}")
    try:
        sites = resp.json()
    except ValueError:
        sites = None
    if not isinstance(sites, list) or not sites or not all(isinstance(s, dict) for s in sites):
        raise AuthRejected("the token reaches no Atlassian site")
    if keep is not None:
        chosen = next((s for s in sites if s.get("id") == keep), None)
        if chosen is None:
            raise SiteNotGranted(f"the user did not grant the site this account reaches ({keep})")
    else:
        chosen = _site(sites, site) if site else sites[0]
    found = str(chosen.get("id") or "")
    if not found or not all(c.isalnum() or c == "-" for c in found):
        raise AuthRejected("accessible-resources gave no usable cloud id")
    return found


def _site(sites: list[dict[str, Any]], site: str) -> dict[str, Any]:
    host = site.lower() if "." in site else f"{site.lower()}.atlassian.net"
    for s in sites:
        if urlsplit(str(s.get("url") or "")).hostname == host:
            return s
    granted = ", ".join(str(urlsplit(str(s.get("url") or "")).hostname) for s in sites[:10])
    raise SiteNotGranted(f"the user granted {granted}, not {host}")
