"""The OAuth 2.0 refresh-token grant, with the vendors' error dialects (no storage here).

The grant carries the client secret to a URL an account named, so it goes through one pooled
session whose connections are pinned to addresses the owner's check allowed
(`guard_addresses`, like `connectors.http`), and a refusal's text is passed on only from a
host the vendor documents (`vendor_text`): anything else could be an internal service's
answer read back through us.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from connectors import transport
from connectors.errors import AuthRejected, Transient
from connectors.pinning import AddressCheck

PERMANENT = {
    "invalid_grant",
    "bad_refresh_token",
    "BAD_REFRESH_TOKEN",
    "BAD_CLIENT_ID",
    "invalid_client",
    "unauthorized_client",
    # Slack answers these with HTTP 200 and ok:false
    "invalid_refresh_token",
    "invalid_client_id",
    "bad_client_secret",
    "invalid_grant_type",
    "incorrect_client_credentials",  # GitHub, with HTTP 200
}
# The call may never have reached the vendor, or its answer was lost: worth another try.
TRANSPORT_ERRORS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)
RETRYABLE = {"ratelimited", "internal_error", "fatal_error", "service_unavailable"}


@dataclass(frozen=True)
class Grant:
    access_token: str
    refresh_token: str | None  # None: the vendor kept the old one
    expires_in: float | None  # None: the vendor did not say (Salesforce)
    issued_at: float | None = None  # epoch seconds, when the vendor said (Salesforce, in ms)


_session: requests.Session | None = None
_address_check: AddressCheck | None = None


def guard_addresses(check: AddressCheck) -> None:
    """Every new token-endpoint connection of this process goes only to an address `check`
    allows (it raises to refuse, before any byte is sent); set by the layer that owns the
    policy (app.tokens)."""
    global _session, _address_check
    _address_check, _session = check, None


def session() -> requests.Session:
    """One pooled, cookie-less session per process, pinned once a check is installed."""
    global _session
    if _session is None:
        _session = transport.pooled(_address_check)
    return _session


def refresh(
    token_url: str,
    refresh_token: str,
    client_id: str,
    client_secret: str,
    *,
    timeout: float = 15.0,
    vendor_text: bool = False,
) -> Grant:
    """One refresh call; AuthRejected for a permanent refusal, Transient for anything retryable.

    `vendor_text`: the endpoint is on a host the vendor documents (`on_vendor_host`), so its
    `error_description` may be shown; otherwise a refusal says only its status and, if it is
    one of the known OAuth codes, that code."""
    resp = _post(token_url, refresh_token, client_id, client_secret, timeout)
    if resp.status_code >= 500 or resp.status_code in (408, 425, 429):
        raise Transient(f"token endpoint answered {resp.status_code}", status=resp.status_code)
    doc = _document(resp)
    code = str(doc.get("error") or doc.get("status") or "")
    refused = doc.get("ok") is False and code not in RETRYABLE  # Slack: errors in a 200
    if code in PERMANENT or refused or (resp.status_code >= 400 and not doc.get("access_token")):
        raise AuthRejected(
            _rejection(resp.status_code, doc, code, vendor_text), status=resp.status_code
        )
    if not doc.get("access_token"):
        raise Transient("token endpoint answered without an access_token")
    return Grant(
        access_token=str(doc["access_token"]),
        refresh_token=str(doc["refresh_token"]) if doc.get("refresh_token") else None,
        expires_in=_number(doc.get("expires_in")),
        issued_at=_epoch_s(doc.get("issued_at")),
    )


def _post(
    token_url: str, refresh_token: str, client_id: str, client_secret: str, timeout: float
) -> requests.Response:
    """The refresh grant (RFC 6749 6), redirects not followed; a transport error is
    Transient."""
    try:
        return session().post(
            token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh_token,
                "client_id": client_id,
                "client_secret": client_secret,
            },
            headers={"Accept": "application/json"},
            timeout=timeout,
            allow_redirects=False,
        )
    except TRANSPORT_ERRORS as exc:
        raise Transient(f"token endpoint: {type(exc).__name__}") from None


def _document(resp: requests.Response) -> dict[str, object]:
    """The answer's JSON object; {} for anything else."""
    try:
        doc = resp.json()
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _rejection(status: int, doc: dict[str, object], code: str, vendor_text: bool) -> str:
    if vendor_text:
        detail = doc.get("error_description") or doc.get("message") or code or status
        return f"refresh token rejected: {str(detail)[:300]}"
    known = f", {code}" if code in PERMANENT else ""
    return (
        f"refresh token rejected by the token endpoint (HTTP {status}{known}); re-authorize "
        "the account with new credentials"
    )


def on_vendor_host(url: str, *documented: str) -> bool:
    """Is `url` on one of the vendor's documented URLs' scheme, host and port? Pass the
    vendor's `base_url` and `token_url`; a `{placeholder}` in a host stands for one DNS label
    (`https://{shop}.myshopify.com`), and a relative or empty URL documents no host."""
    parts = urlsplit(url)
    try:
        origin = f"{parts.scheme}://{parts.hostname}:{parts.port or _default_port(parts.scheme)}"
    except ValueError:
        return False
    return any(p.fullmatch(origin) for d in documented if (p := _origin_pattern(d)))


def _origin_pattern(url: str) -> re.Pattern[str] | None:
    if not url.startswith(("http://", "https://")):
        return None
    scheme, rest = url.split("://", 1)
    host, _, port = re.split(r"[/?#]", rest, maxsplit=1)[0].lower().partition(":")
    port = port or str(_default_port(scheme))
    label = "[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
    pattern = label.join(re.escape(piece) for piece in re.split(r"\{[^}]*\}", host))
    return re.compile(f"{re.escape(scheme)}://{pattern}:{re.escape(port)}")


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _number(value: object) -> float | None:
    """A numeric field that some vendors send as a string; None when absent or garbled."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _epoch_s(value: object) -> float | None:
    """Salesforce's `issued_at` is epoch milliseconds (a string); accept seconds too."""
    n = _number(value)
    if n is None or n <= 0:
        return None
    return n / 1000 if n > 1e11 else n
