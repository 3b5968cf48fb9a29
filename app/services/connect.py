"""Connect: a tenant's end user links a vendor account through the vendor's consent page.

`create_session` gives a single-use link; `page` is what the link shows (tenant, vendor,
scopes, and the vendor authorize URL with `state` and PKCE S256); `callback` verifies the
vendor's answer, exchanges the code server side (verifier and sealed client secret never
leave), then creates the account — or re-authorizes the one the session names (same id;
parked jobs resume) — and says where to send the browser: `return_url` with the account id
and `status`, or with `error` and `error_description`. A transient vendor failure
(`vendor_unavailable`: a 5xx, 408/429, a timeout or a lost connection) does not spend the
session: the same link starts a fresh authorization; any other failure ends it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from app.kernel.errors import InvalidInput, NotFound
from app.kernel.settings import get_settings
from app.kernel.ssrf import check_public_url
from app.kernel.timefmt import now_iso
from app.services.reauthorize import reauthorize
from app.store import accounts, oauthapps, tenants
from app.store import connect as sessions
from app.store.accounts import AccountCreate, OAuth2Credentials
from app.work.deliveries import ACCOUNT_TARGET, emit
from connectors import authorize
from connectors.errors import AuthRejected, Transient

CALLBACK_PATH = sessions.CALLBACK_PATH
DONE_PATH = "/connect/done"  # the default return_url: a page that says how it went
_SHOP = r"^[a-z0-9][a-z0-9-]{0,59}$"
_SITE = r"^[a-z0-9][a-z0-9-]{0,59}(\.[a-z0-9-]{1,63}){0,4}$"  # acme, or acme.atlassian.net
DENIED = ("access_denied", "access-denied")  # Salesforce's docs show the second spelling


class EndUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    email: str | None = Field(None, max_length=320)


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vendor: str = Field(max_length=40)
    end_user: EndUser
    account_id: str | None = Field(None, max_length=100, description="Re-authorize this one")
    return_url: str | None = Field(
        None, max_length=2000, description="Where the browser lands; default /connect/done"
    )
    scopes: list[str] | None = Field(None, max_length=100, description="Default: the app's")
    shop: str | None = Field(None, pattern=_SHOP, description="Shopify: the shop's subdomain")
    subdomain: str | None = Field(None, pattern=_SHOP, description="Zendesk: the subdomain")
    site: str | None = Field(
        None, pattern=_SITE, description="Jira: the site (acme for acme.atlassian.net)"
    )
    events_url: str | None = Field(
        None, max_length=2000, description="A new account's events_url (account events)"
    )
    expires_in: float | None = Field(None, gt=0, le=86400, description="Seconds; default 600")

    _check_scopes = field_validator("scopes")(lambda v: oauthapps.check_scopes(v))


@dataclass(frozen=True)
class Outcome:
    """Where the callback sends the browser (None: no session known, show an error page)."""

    location: str | None
    error: str | None = None
    description: str = ""


class ConnectError(Exception):
    """Why a connect step failed; `retryable` ones (the vendor failed transiently) leave the
    session usable."""

    def __init__(self, code: str, description: str, *, retryable: bool = False) -> None:
        super().__init__(code)
        self.code, self.description, self.retryable = code, description, retryable


def api_origin(request_base: str) -> str:
    return (get_settings().public_url or request_base).rstrip("/")


def create_session(tenant_id: str, req: SessionCreate, origin: str) -> dict[str, Any]:
    dialect = oauthapps.dialect(req.vendor)
    app = oauthapps.load(tenant_id, req.vendor)
    if req.return_url is not None:  # the default is this API's own page (DONE_PATH)
        check_public_url(req.return_url, field="return_url")
    if req.events_url:
        check_public_url(req.events_url, field="events_url")
    shop = _shop(req, dialect)
    scopes = req.scopes if req.scopes is not None else app["scopes"]
    _check_choice(dialect, scopes)
    if req.site and dialect.base_url_from != "accessible_resources":
        raise InvalidInput("`site` chooses a Jira site: jira sessions only",
                           code="site_not_supported")  # fmt: skip
    if req.account_id:
        acc = accounts.load(req.account_id, tenant_id)
        accounts.require_vendor(acc, req.vendor)
    fields = {
        "tenant_id": tenant_id,
        "vendor": req.vendor,
        "end_user_id": req.end_user.id,
        "end_user_email": req.end_user.email,
        "account_id": req.account_id,
        "return_url": req.return_url or origin + DONE_PATH,
        "events_url": req.events_url,
        "scopes": scopes,
        "shop": shop,
        "subdomain": req.subdomain,
        "site": req.site,
        "redirect_uri": app.get("redirect_uri") or origin + CALLBACK_PATH,
        "origin": origin,
    }
    ttl = req.expires_in or get_settings().connect_session_ttl_s
    token, record = sessions.create(fields, ttl)
    return {
        "session_id": record["session_id"],
        "connect_url": f"{origin}/connect/{token}",
        "expires_at": now_iso(record["expires_at"]),
    }


def _shop(req: SessionCreate, dialect: authorize.Dialect) -> str | None:
    for name in dialect.needs:
        if not getattr(req, name):
            raise InvalidInput(f"{req.vendor} sessions need `{name}`", code=f"{name}_required")
    return req.shop


def _check_choice(dialect: authorize.Dialect, scopes: list[str]) -> None:
    """A vendor with a fixed set of scopes (Stripe: `read_only` or `read_write`) is asked one
    of them, or none (its default)."""
    if not dialect.scope_choices:
        return
    if len(scopes) > 1 or not set(scopes) <= set(dialect.scope_choices):
        raise InvalidInput(
            f"{dialect.vendor} sessions ask one scope of {', '.join(dialect.scope_choices)} "
            f"(or none), not {scopes}",
            code="scope_not_supported",
        )


def page(token: str) -> dict[str, Any]:
    """What the connect page shows; ConnectError for an unknown, used or expired link."""
    session = sessions.by_token(token)
    if session is None:
        raise ConnectError("unknown_session", "This link is not valid.")
    if sessions.expired(session):
        raise ConnectError("expired_session", "This link has expired.")
    if session.get("claimed_at"):
        raise ConnectError("state_mismatch", "This link was used already.")
    return {
        "tenant": tenants.display_name(session["tenant_id"]),
        "vendor": session["vendor"],
        "scopes": session["scopes"],
        "reauthorize": bool(session.get("account_id")),
        "authorize_url": _authorize_url(session),
        "return_url": session["return_url"],
    }


def _values(app: dict[str, Any], session: dict[str, Any]) -> dict[str, str]:
    return {
        "shop": session.get("shop") or "",
        "subdomain": session.get("subdomain") or "",
        "login_host": app.get("login_host") or "",
    }


def _authorize_url(session: dict[str, Any]) -> str:
    dialect = oauthapps.dialect(session["vendor"])
    app = oauthapps.load(session["tenant_id"], session["vendor"])
    query = {
        "client_id": app["client_id"],
        "redirect_uri": session["redirect_uri"],
        "scope": dialect.scope_separator.join(session["scopes"]),
        "state": session["state"],
    }
    if dialect.vendor != "shopify":
        query["response_type"] = "code"
    if dialect.scope_choices and not session["scopes"]:  # the vendor's default (Stripe's)
        del query["scope"]
    if dialect.pkce:
        verifier = sessions.verifier(session)
        query |= {"code_challenge": authorize.pkce_challenge(verifier),
                  "code_challenge_method": "S256"}  # fmt: skip
    if app.get("authorize_url"):
        dialect = replace(dialect, authorize_url=app["authorize_url"])
    return dialect.authorize(_values(app, session), query)


def cancel(token: str) -> str:
    """The person pressed Cancel on the connect page: the session ends (`failed`,
    `cancelled`), so whoever waits on it learns at once; where the browser goes."""
    page(token)  # a link unknown, expired or used already is refused as the page is
    sid = sessions.key_of(token)
    session = sessions.by_token(token) or {}
    if not sessions.claim(sid):
        raise ConnectError("state_mismatch", "This link was used already.")
    sessions.record_outcome(sid, {"outcome": "failed", "error": "cancelled"})
    return _back(session, {"error": "cancelled", "error_description": "cancelled on the page"})


def callback(query: list[tuple[str, str]]) -> Outcome:
    """The vendor's redirect back: everything checked before any account changes."""
    params = dict(query)
    found = sessions.by_state(params.get("state", ""))
    if found is None:
        return Outcome(None, "state_mismatch", "unknown state: start again from a new link")
    sid, session = found
    try:
        account_id, status = _complete(sid, session, query, params)
    except NotFound as exc:  # the OAuth app (or the account) was deleted meanwhile
        return _failed(sid, session, ConnectError(exc.code, exc.message))
    except ConnectError as exc:
        if exc.retryable:
            return _retry_later(sid, session, exc)
        return _failed(sid, session, exc)
    sessions.record_outcome(sid, {"outcome": status, "account_id_made": account_id})
    return Outcome(_back(session, {"account_id": account_id, "status": status}))


def _failed(sid: str, session: dict[str, Any], exc: ConnectError) -> Outcome:
    if exc.code != "state_mismatch":  # a replay does not overwrite what the first one did
        sessions.record_outcome(sid, {"outcome": "failed", "error": exc.code})
    params = {"error": exc.code, "error_description": exc.description}
    return Outcome(_back(session, params), exc.code, exc.description)


def _retry_later(sid: str, session: dict[str, Any], exc: ConnectError) -> Outcome:
    """A transient vendor failure: the session is given back under a new `state` (so the
    same link starts over), unless it has failed so too often, which ends it."""
    if not sessions.reopen(sid, session, exc.code):
        return _failed(sid, session, ConnectError(exc.code, exc.description))
    params = {"error": exc.code, "error_description": exc.description}
    return Outcome(_back(session, params), exc.code, exc.description)


def session_view(tenant_id: str, session_id: str) -> dict[str, Any]:
    """A session's status for its tenant: `pending` (not used yet, or reopened after a
    transient vendor failure, which `last_error` names), `expired`, or how its callback ended
    (`connected` / `reactivated` with `account_id`, `failed` with `error`)."""
    session = sessions.by_id(session_id)
    if session is None or session["tenant_id"] != tenant_id:
        raise NotFound(f"connect session {session_id!r} not found", code="session_not_found")
    status = session.get("outcome") or ("expired" if sessions.expired(session) else "pending")
    view = {
        "session_id": session_id,
        "vendor": session["vendor"],
        "status": status,
        "account_id": session.get("account_id_made") or session.get("account_id"),
        "error": session.get("error"),
        "expires_at": now_iso(session["expires_at"]),
    }
    if session.get("last_error"):  # only once a transient failure happened
        view |= {"last_error": session["last_error"],
                 "last_error_at": now_iso(float(session["last_error_at"]))}  # fmt: skip
    return view


def _back(session: dict[str, Any], params: dict[str, str]) -> str:
    url = str(session["return_url"])
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def _complete(
    sid: str, session: dict[str, Any], query: list[tuple[str, str]], params: dict[str, str]
) -> tuple[str, str]:
    app = oauthapps.load(session["tenant_id"], session["vendor"])
    dialect = oauthapps.dialect(session["vendor"])
    secret = oauthapps.client_secret(app)
    if dialect.signed_callback and "error" not in params:
        _check_signed(query, params, session, secret)
    if not sessions.claim(sid):
        raise ConnectError("state_mismatch", "this authorization was used already")
    if sessions.expired(session):
        raise ConnectError("expired_session", "the connect link expired; ask for a new one")
    if params.get("error"):
        code = "access_denied" if params["error"] in DENIED else "vendor_error"
        raise ConnectError(code, "the user did not grant access at the vendor")
    grant = _exchange(app, dialect, session, secret, params.get("code", ""))
    return _store(app, dialect, session, secret, grant)


def _check_signed(
    query: list[tuple[str, str]], params: dict[str, str], session: dict[str, Any], secret: str
) -> None:
    if not authorize.shopify_hmac_ok(query, secret):
        raise ConnectError("invalid_hmac", "the callback's hmac does not verify")
    if params.get("shop", "") != f"{session.get('shop')}.myshopify.com":
        raise ConnectError("invalid_hmac", "the callback is for another shop")


def _exchange(
    app: dict[str, Any], dialect: authorize.Dialect, session: dict[str, Any], secret: str,
    code: str,
) -> authorize.CodeGrant:  # fmt: skip
    template = app.get("token_url") or dialect.token_url
    try:
        return authorize.exchange(
            template.format(**_values(app, session)),
            code=code,
            redirect_uri=session["redirect_uri"],
            client_id=app["client_id"],
            client_secret=secret,
            code_verifier=sessions.verifier(session) if dialect.pkce else None,
            fields=dialect.code_form,
        )
    except AuthRejected as exc:
        raise ConnectError("code_rejected", str(exc)) from None
    except Transient:
        raise _unavailable("the vendor's token endpoint") from None
    except InvalidInput as exc:  # the token URL's address was refused: no retry helps
        raise ConnectError("account_refused", exc.message) from None


def _unavailable(what: str) -> ConnectError:
    return ConnectError(
        "vendor_unavailable",
        f"{what} failed for a moment; open the same connect link again to retry",
        retryable=True,
    )


def _base_url(
    app: dict[str, Any], dialect: authorize.Dialect, session: dict[str, Any],
    grant: authorize.CodeGrant, keep: str | None = None,
) -> tuple[str, str | None]:  # fmt: skip
    """The account's API base URL, and the vendor's id of the account where that is what
    decides it (Jira's cloud id; `keep`: the site a re-authorized account already reaches)."""
    if dialect.base_url_from == "instance_url":
        if not grant.instance_url:
            raise ConnectError("code_rejected", "the token answer had no instance_url")
        return grant.instance_url.rstrip("/"), None
    values, cloud = _values(app, session), None
    if dialect.base_url_from == "accessible_resources":
        url = app.get("resources_url") or dialect.resources_url
        try:
            cloud = authorize.cloud_id(url, grant.access_token, session.get("site"), keep=keep)
        except authorize.SiteNotGranted as exc:
            code = "account_mismatch" if keep else "site_not_granted"
            raise ConnectError(code, str(exc)) from None
        except AuthRejected as exc:
            raise ConnectError("code_rejected", str(exc)) from None
        except Transient:
            raise _unavailable("accessible-resources") from None
        values["cloudid"] = cloud
    template = app.get("base_url") or dialect.base_url
    return str(template.format(**values)).rstrip("/"), cloud and f"site:{cloud}"


def _same_account(app: dict[str, Any], dialect: authorize.Dialect, session: dict[str, Any],
                  grant: authorize.CodeGrant) -> str | None:  # fmt: skip
    """A re-authorization must grant the account it re-authorizes, or its parked jobs (writes
    among them) would resume on another vendor account: the vendor's id of it (where the
    token answer or, for Jira, the site names one) stays as it was. The id to keep;
    account_mismatch otherwise, before anything is stored."""
    acc = accounts.load(session["account_id"], session["tenant_id"])
    known = acc.get("vendor_account_id") or None
    granted = grant.vendor_account
    if dialect.base_url_from == "accessible_resources":  # the site it reaches, if granted
        keep = known.removeprefix("site:") if known and known.startswith("site:") else None
        granted = _base_url(app, dialect, session, grant, keep=keep)[1]
    if known and granted and known != granted:
        raise ConnectError(
            "account_mismatch",
            f"access was granted to another {dialect.vendor} account than the one being "
            "reconnected: sign in to the same account at the vendor and approve again",
        )
    return granted


def _store(
    app: dict[str, Any], dialect: authorize.Dialect, session: dict[str, Any], secret: str,
    grant: authorize.CodeGrant,
) -> tuple[str, str]:  # fmt: skip
    token_url = app.get("token_url")
    refresh = grant.refresh_token if dialect.keeps_refresh_token else None
    creds = OAuth2Credentials(
        type="oauth2",
        access_token=SecretStr(grant.access_token),
        refresh_token=SecretStr(refresh) if refresh else None,
        expires_in=grant.expires_in,
        token_url=token_url.format(**_values(app, session)) if token_url else None,
        client_id=app["client_id"] if refresh else None,
        client_secret=SecretStr(secret) if refresh else None,
    )
    tenant = session["tenant_id"]
    try:
        if session.get("account_id"):
            vendor_id = _same_account(app, dialect, session, grant)
            reauthorize(tenant, session["account_id"], creds)
            if vendor_id:
                accounts.remember_connect(session["account_id"], {"vendor_account_id": vendor_id})
            return session["account_id"], "reactivated"
        base_url, site = _base_url(app, dialect, session, grant)
        return _new_account(dialect, session, creds, base_url, grant.vendor_account or site), \
            "connected"
    except InvalidInput as exc:
        raise ConnectError("account_refused", exc.message) from None


def _new_account(
    dialect: authorize.Dialect, session: dict[str, Any], creds: OAuth2Credentials, base_url: str,
    vendor_id: str | None,
) -> str:  # fmt: skip
    who = session.get("end_user_email") or session["end_user_id"]
    req = AccountCreate(
        vendor=dialect.vendor,
        name=f"{dialect.vendor} for {who}"[:200],
        base_url=base_url,
        credentials=creds,
        events_url=session.get("events_url"),
    )
    account_id = str(accounts.create_account(session["tenant_id"], req)["account_id"])
    accounts.remember_connect(account_id, {
        "end_user_id": session["end_user_id"],
        "connect_return_url": session["return_url"],
        "connect_origin": session["origin"],
        "connect_shop": session.get("shop") or "",
        "connect_subdomain": session.get("subdomain") or "",
        **({"vendor_account_id": vendor_id} if vendor_id else {}),
    })  # fmt: skip
    emit(account_id, "account.connected", [ACCOUNT_TARGET], {"end_user_id": session["end_user_id"]})
    return account_id
