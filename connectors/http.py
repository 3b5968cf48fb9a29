"""The wire for connectors: auth injection, one refresh-and-retry on 401, error classes."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from http.cookiejar import DefaultCookiePolicy
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

from connectors import logredact, ratelimit
from connectors.base import Vendor
from connectors.errors import AuthRejected, RateLimited, Transient, Unauthorized, VendorError
from connectors.pinning import AddressCheck, pin

TokenSource = Callable[[bool], str]  # force_refresh -> access token


class Gate(Protocol):
    """The account's shared request budget (app.budget.Budget)."""

    def take(self) -> float: ...  # 0.0: send now; else seconds until a slot frees up

    def observe(self, rate: ratelimit.RateLimit) -> None: ...

    def flush(self) -> None: ...


@lru_cache(maxsize=256)
def _environ_proxies(netloc: str, no_proxy: str | None) -> dict[str, str]:
    """The environment's proxies for one host (requests' own rules); the environment of a
    running process is fixed, so one answer per host serves every request after it."""
    return get_environ_proxies(f"http://{netloc}/", no_proxy=no_proxy)


class _Session(requests.Session):
    """requests.Session that reads the proxy environment once per host, not per request:
    `get_environ_proxies` walks all of `os.environ` twice, about a third of a millisecond of
    CPU per page (a tenth of a step's CPU per page)."""

    def merge_environment_settings(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        # requests' own method, with its get_environ_proxies call cached per host
        if self.trust_env:
            no_proxy = proxies.get("no_proxy") if proxies is not None else None
            if proxies is not None:
                for k, v in _environ_proxies(urlsplit(url).netloc, no_proxy).items():
                    proxies.setdefault(k, v)
            if verify is True or verify is None:
                verify = (
                    os.environ.get("REQUESTS_CA_BUNDLE")
                    or os.environ.get("CURL_CA_BUNDLE")
                    or verify
                )
        return {
            "proxies": merge_setting(proxies, self.proxies),
            "stream": merge_setting(stream, self.stream),
            "verify": merge_setting(verify, self.verify),
            "cert": merge_setting(cert, self.cert),
        }


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
        logredact.install("urllib3.connectionpool")  # DEBUG prints URLs: signed links, too
        _session = _Session()
        if _address_check is not None:
            pin(_session, _address_check)
        _session.headers["User-Agent"] = "toolqueue/0.1"
        # one session serves every tenant: a cookie one vendor account sets must never ride
        # along on another's requests
        _session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
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
        extra = kwargs.pop("headers", {})
        for attempt in (0, 1):
            headers = {"Accept": "application/json", **extra}
            token = self.token(attempt == 1)
            headers[self.vendor.auth_header] = self.vendor.auth_format.format(token=token)
            if self.gate and (wait := self.gate.take()):
                raise RateLimited(wait, policy="account budget", budget=True)
            try:
                resp = session().request(
                    method,
                    self.url(path),
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                    **kwargs,
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise Transient(f"{type(exc).__name__} talking to {self.vendor.name}") from None
            self.requests += 1
            # Bodies are parsed for limits only where they can carry one: refusals, and
            # vendors that throttle inside a 200 (parsing every page twice costs CPU).
            body = resp.content if resp.status_code >= 300 or self.vendor.limits_in_body else None
            self.last_rate = ratelimit.parse(
                resp.headers, resp.status_code, body, time_zone=self.time_zone
            )
            if self.gate:
                self.gate.observe(self.last_rate)
                if self.last_rate.limited:
                    self.gate.flush()  # close the budget for every worker now
            if resp.status_code == 401 and attempt == 0:
                continue  # the token may have been revoked or expired early: refresh once
            if resp.status_code == 401:
                raise AuthRejected(
                    f"{self.vendor.name} rejected a freshly refreshed token (401)", status=401
                )
            try:
                self.vendor.classify(resp)
            except Unauthorized as exc:
                if attempt == 0:
                    continue  # refresh once, as for a 401
                raise AuthRejected(
                    f"{self.vendor.name} rejected a freshly refreshed token ({exc.code})",
                    status=resp.status_code,
                ) from None
            check(resp, self.last_rate, self.vendor.name)
            return resp
        raise AssertionError("unreachable")

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
        except (requests.Timeout, requests.ConnectionError) as exc:
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
