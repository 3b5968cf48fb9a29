"""The wire for connectors: one account's requests through the pipeline, its error classes.

The pipeline (the auth flow that refreshes once on a 401, rate-limit observation, the pooled
session) is `connectors.transport`, which the proxy shares; this module holds the process's
session for connectors and turns answers into `connectors.errors`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from connectors import ratelimit, transport
from connectors.base import Vendor
from connectors.errors import RateLimited, Transient, VendorError
from connectors.oauth import TRANSPORT_ERRORS
from connectors.pinning import AddressCheck
from connectors.transport import Gate, TokenSource

_session: requests.Session | None = None
_address_check: AddressCheck | None = None


def guard_addresses(check: AddressCheck) -> None:
    """Every new vendor connection of this process goes only to an address `check` allows
    (connect-time SSRF rules; set once by the layer that owns the policy)."""
    global _session, _address_check
    _address_check, _session = check, None


def session() -> requests.Session:
    """One pooled session per process; redirects are followed by requests only for GETs."""
    global _session
    if _session is None:
        _session = transport.pooled(_address_check)
    return _session


class VendorHttp:
    """Bound to one account: its base URL, its token source and its vendor's error dialect."""

    def __init__(
        self,
        vendor: Vendor,
        base_url: str,
        token: TokenSource,
        *,
        timeout: float = 30.0,
        gate: Gate | None = None,
        url_guard: Callable[[str], None] | None = None,
        time_zone: str | None = None,
    ) -> None:
        self.vendor = vendor
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.gate = gate
        self.url_guard = url_guard  # raises for a URL we must not fetch (SSRF)
        self.time_zone = time_zone  # the account's (IANA): where a daily quota resets
        self.last_rate: ratelimit.RateLimit | None = None
        self.requests = 0

    def url(self, path: str) -> str:
        """Paths join the base URL; an absolute URL (a vendor's next link) must stay on the
        account's own scheme, host and port, or the token would travel elsewhere."""
        if path.startswith(("http://", "https://")):
            if urlsplit(path)[:2] != urlsplit(self.base_url)[:2]:
                raise VendorError(
                    "foreign_next_link",
                    f"{self.vendor.name} pointed to {urlsplit(path).netloc}, outside the "
                    f"account's {urlsplit(self.base_url).netloc}; not following it",
                )
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One call through the pipeline (a 401 refreshes the token once), then the vendor's
        error dialect and `check`: an answer that is not a success raises."""
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        flow = transport.auth_flow(self.vendor, self.token)
        resp = transport.send_authorized(
            lambda auth: self._send(method, path, {**headers, **auth}, kwargs), flow, self.gate
        )
        assert self.last_rate is not None  # every send observes its answer
        check(resp, self.last_rate, self.vendor.name)
        return resp

    def _send(
        self, method: str, path: str, headers: dict[str, str], kwargs: dict[str, Any]
    ) -> requests.Response:
        """One request on the wire; its answer's limits go to the account's budget."""
        try:
            resp = session().request(
                method,
                self.url(path),
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                **kwargs,
            )
        except TRANSPORT_ERRORS as exc:  # a write's answer lost after commit, too
            raise Transient(
                f"{type(exc).__name__} talking to {self.vendor.name}", unsent=_unsent(exc)
            ) from None
        self.requests += 1
        self.last_rate = transport.observe(
            self.gate, self.vendor, resp, resp.content, self.time_zone
        )
        return resp

    def download(self, url: str) -> bytes:
        """A file the vendor points to (an export's signed URL, often on a storage host):
        fetched without our credentials, after the SSRF guard, redirects not followed."""
        try:
            if self.url_guard:
                self.url_guard(url)
        except Exception as exc:  # noqa: BLE001 - the guard's own error type is the app's
            raise VendorError("download_refused", f"not fetching {url!r}: {exc}") from None
        try:
            resp = session().get(url, timeout=self.timeout, allow_redirects=False)
        except TRANSPORT_ERRORS as exc:  # a write's answer lost after commit, too
            raise Transient(f"{type(exc).__name__} downloading from {self.vendor.name}") from None
        if resp.status_code >= 500:
            raise Transient(f"download answered {resp.status_code}", status=resp.status_code)
        if resp.status_code != 200:
            raise VendorError(
                "download_failed",
                f"the export file answered {resp.status_code}: {resp.text[:200]}",
                status=resp.status_code,
            )
        return resp.content


def _unsent(exc: Exception) -> bool:
    """The request certainly never reached the vendor: no connection was ever made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def check(resp: requests.Response, rate: ratelimit.RateLimit, vendor: str) -> None:
    """Default classification after the vendor's own: limits, transient, then refusals."""
    if rate.limited:
        raise RateLimited(rate.wait, policy=rate.label, status=resp.status_code)
    if resp.status_code >= 500 or resp.status_code in (408, 425):
        raise Transient(f"{vendor} answered {resp.status_code}", status=resp.status_code)
    if resp.status_code >= 300:
        raise VendorError(
            f"http_{resp.status_code}", resp.text[:500] or resp.reason, status=resp.status_code
        )
