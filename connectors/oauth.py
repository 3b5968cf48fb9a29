"""The OAuth 2.0 refresh-token grant, with the vendors' error dialects (no storage here)."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from connectors.errors import AuthRejected, Transient

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


def refresh(
    token_url: str, refresh_token: str, client_id: str, client_secret: str, *, timeout: float = 15.0
) -> Grant:
    """One refresh call; AuthRejected for a permanent refusal, Transient for anything retryable."""
    try:
        resp = requests.post(
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
    if resp.status_code >= 500 or resp.status_code in (408, 425, 429):
        raise Transient(f"token endpoint answered {resp.status_code}", status=resp.status_code)
    try:
        doc = resp.json()
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    code = str(doc.get("error") or doc.get("status") or "")
    refused = doc.get("ok") is False and code not in RETRYABLE  # Slack: errors in a 200
    if code in PERMANENT or refused or (resp.status_code >= 400 and not doc.get("access_token")):
        detail = doc.get("error_description") or doc.get("message") or code or resp.status_code
        raise AuthRejected(f"refresh token rejected: {detail}", status=resp.status_code)
    if not doc.get("access_token"):
        raise Transient("token endpoint answered without an access_token")
    return Grant(
        access_token=str(doc["access_token"]),
        refresh_token=str(doc["refresh_token"]) if doc.get("refresh_token") else None,
        expires_in=_number(doc.get("expires_in")),
        issued_at=_epoch_s(doc.get("issued_at")),
    )


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
