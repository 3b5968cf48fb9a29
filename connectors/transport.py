"""One vendor-call pipeline: the session, the auth flow, the rate-limit observation.

Connectors (`connectors.http.VendorHttp`) and the synchronous proxy (`app.services.proxy`)
both send through it; each keeps its own way of sending, reading and answering:

    flow = auth_flow(vendor, token)           # the auth header to send, refreshed once
    resp = send_authorized(send, flow, gate)  # admitted by the budget, sent, told to the flow

- `pooled(check)` builds the session: pooled, cookie-less, its new connections pinned to the
  addresses `check` allows (`connectors.pinning`), the proxy environment read once per host.
- `auth_flow` is httpx's auth flow: it yields the auth header and receives the answer; after a
  401, or the vendor's 401 in disguise (Slack's `invalid_auth` in a 200), it asks the token
  source for a fresh token (`token(True)`) and yields once more. A second refusal raises
  `AuthRejected`.
- `send_authorized` drives a flow: before each send the account's budget must admit the
  request (`RateLimited(budget=True)` when it is spent, nothing sent).
- `observe` parses an answer's limits and tells the budget; a refusal closes it for every
  worker at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, MutableMapping
from functools import lru_cache
from http.cookiejar import DefaultCookiePolicy
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import DEFAULT_POOLSIZE
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

from connectors import logredact, ratelimit
from connectors.base import Vendor
from connectors.errors import AuthRejected, RateLimited, Unauthorized
from connectors.pinning import AddressCheck, pin

if TYPE_CHECKING:
    from requests.sessions import _Settings

TokenSource = Callable[[bool], str]  # force_refresh -> access token
Classify = Callable[[requests.Response], None]  # raises the vendor's verdict on an answer
AuthFlow = Generator[dict[str, str], requests.Response, None]  # yields auth headers


class Gate(Protocol):
    """The account's shared request budget (app.store.budget.Budget)."""

    def take(self) -> float: ...  # 0.0: send now; else seconds until a slot frees up

    def observe(self, rate: ratelimit.RateLimit) -> None: ...

    def flush(self) -> None: ...


@lru_cache(maxsize=256)
def _environ_proxies(netloc: str, no_proxy: str | None) -> dict[str, str]:
    """The environment's proxies for one host (requests' own rules); the environment of a
    running process is fixed, so one answer per host serves every request after it."""
    proxies: dict[str, str] = get_environ_proxies(f"http://{netloc}/", no_proxy=no_proxy)
    return proxies


def _netloc(url: str | bytes | None) -> str:
    text = url.decode() if isinstance(url, bytes) else url or ""
    return urlsplit(text).netloc


class _Session(requests.Session):
    """requests.Session that reads the proxy environment once per host, not per request:
    `get_environ_proxies` walks all of `os.environ` twice, about a third of a millisecond of
    CPU per page (a tenth of a step's CPU per page)."""

    def merge_environment_settings(
        self,
        url: str | bytes | None,
        proxies: MutableMapping[str, str] | None,
        stream: bool | None,
        verify: bool | str | None,
        cert: str | tuple[str, str] | None,
    ) -> _Settings:
        # requests' own method, with its get_environ_proxies call cached per host
        if self.trust_env:
            no_proxy = proxies.get("no_proxy") if proxies is not None else None
            if proxies is not None:
                for k, v in _environ_proxies(_netloc(url), no_proxy).items():
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


def pooled(
    check: AddressCheck | None,
    *,
    pool_connections: int = DEFAULT_POOLSIZE,
    pool_maxsize: int = DEFAULT_POOLSIZE,
) -> requests.Session:
    """A session for calls to vendors. Cookie-less: one session serves every tenant, and a
    cookie one vendor account sets must never ride along on another's requests. `check`
    (None: no pinning) is the owner's address policy; the pool sizes are its adapter's."""
    logredact.install("urllib3.connectionpool")  # DEBUG prints URLs: signed links, too
    session = _Session()
    if check is not None:
        pin(session, check, pool_connections=pool_connections, pool_maxsize=pool_maxsize)
    session.headers["User-Agent"] = "toolqueue/0.1"
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def auth_flow(vendor: Vendor, token: TokenSource, classify: Classify | None = None) -> AuthFlow:
    """Yields the auth header to send with and receives the answer; after a refusal (see
    `refusal`) it refreshes once and yields again. `classify` (default: the vendor's) tells
    a disguised 401 by raising `Unauthorized`; its other verdicts propagate."""
    judge = classify or vendor.classify
    resp = yield _auth(vendor, token(False))
    if refusal(resp, judge) is None:
        return
    resp = yield _auth(vendor, token(True))  # revoked or expired early: refresh once
    if (why := refusal(resp, judge)) is not None:
        raise AuthRejected(
            f"{vendor.name} rejected a freshly refreshed token ({why})", status=resp.status_code
        )


def _auth(vendor: Vendor, token: str) -> dict[str, str]:
    return {vendor.auth_header: vendor.auth_format.format(token=token)}


def refusal(resp: requests.Response, classify: Classify) -> str | None:
    """Why the vendor refused the token: `401`, or the code of its 401 in disguise; None when
    it did not (a plain 401 is not shown to `classify`)."""
    if resp.status_code == 401:
        return "401"
    try:
        classify(resp)
    except Unauthorized as exc:
        return exc.code
    return None


def send_authorized(
    send: Callable[[dict[str, str]], requests.Response], flow: AuthFlow, gate: Gate | None
) -> requests.Response:
    """Drive `flow` (httpx's loop): each request is admitted by the budget, sent by `send`
    with the flow's auth headers, and its answer handed back until the flow is satisfied."""
    auth = next(flow)
    while True:
        admit(gate)
        resp = send(auth)
        try:
            auth = flow.send(resp)
        except StopIteration:
            return resp


def admit(gate: Gate | None) -> None:
    """Take a slot of the account's budget, or raise before anything is sent."""
    if gate and (wait := gate.take()):
        raise RateLimited(wait, policy="account budget", budget=True)


def observe(
    gate: Gate | None,
    vendor: Vendor,
    resp: requests.Response,
    body: bytes,
    time_zone: str | None,
) -> ratelimit.RateLimit:
    """The answer's limits (the account's `time_zone` is where a daily quota resets), told to
    the budget. Bodies are parsed only where they can carry one: refusals, and vendors that
    throttle inside a 200 (parsing every page twice costs CPU)."""
    parsed = body if resp.status_code >= 300 or vendor.limits_in_body else None
    rate = ratelimit.parse(resp.headers, resp.status_code, parsed, time_zone=time_zone)
    if gate:
        gate.observe(rate)
        if rate.limited:
            gate.flush()  # close the budget for every worker now
    return rate
