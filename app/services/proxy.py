"""The synchronous proxy for fast calls: one vendor request, fresh auth, normalized limits.

`forward` sends one request to an account's base URL plus a caller-given path with the
account's access token injected the vendor's way, refreshes and retries once on a 401 (or the
vendor's 401 in disguise) through the pipeline connectors use (`connectors.transport`), and
never retries otherwise: a rate-limit refusal comes back as a 429 with `Retry-After` and the
normalized `ratelimit-*` headers, and the caller decides. Response bodies are streamed under
a cap, never buffered unbounded.

No FastAPI here: the route (`app.api.proxy`) hands in the raw path, query and body.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

import requests

from app.kernel import keys
from app.kernel.errors import ToolqueueError
from app.kernel.redis import get_redis
from app.kernel.registry import registry
from app.kernel.settings import get_settings
from app.kernel.ssrf import connect_check
from app.store import accounts, tokens
from app.store.budget import Budget
from app.work import reauth
from connectors import ratelimit, transport
from connectors.base import Vendor
from connectors.errors import AuthRejected, RateLimited, Transient, Unauthorized

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_RESPONSE_BYTES = 10 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
UNKNOWN_RETRY_AFTER_S = 30  # a refusal that names no time
UPSTREAM_HEADER = "x-toolqueue-upstream"  # on responses whose status and body are the vendor's

# Request headers a caller may pass on; everything else (its Authorization first) is dropped.
REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-type",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
        "idempotency-key",
        "prefer",
        "stripe-version",
        "x-github-api-version",
    }
)
# Vendor response headers passed back besides content-type and the normalized limits;
# never Set-Cookie, never the vendor's own rate-limit dialect.
RESPONSE_HEADERS = frozenset(
    {"content-type", "content-language", "etag", "last-modified", "link", "location"}
)

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


class ProxyError(ToolqueueError):
    """A proxy failure with its own status (the handler maps `status` and `body()`)."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message, code=code, **extra)
        self.status = status


@dataclass
class ProxyResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


_session: requests.Session | None = None


def session() -> requests.Session:
    """The proxy's session (`connectors.transport.pooled`: pooled, cookie-less); its new
    connections go only to addresses the SSRF rules pass, checked at connect time: the
    account's base_url was checked when connected, its DNS may have changed since."""
    global _session
    if _session is None:
        _session = transport.pooled(connect_check("base_url"), pool_connections=16, pool_maxsize=64)
    return _session


def target_url(base_url: str, raw_path: str, query: str = "") -> str:
    """base URL + path (+ query); refuses anything that could leave the base URL."""
    decoded = raw_path
    for _ in range(3):  # double and triple encodings too: `%252e%252e`
        decoded = unquote(decoded)
    if (
        raw_path.startswith("/")
        or decoded.startswith("/")
        or _SCHEME.match(decoded)
        or "://" in decoded
        or _CONTROL.search(decoded)
        or any(seg in (".", "..") for seg in re.split(r"[/?#]", decoded))
    ):
        raise ProxyError(
            422,
            "invalid_proxy_path",
            "the path must be relative to the account's base URL: no scheme, no leading "
            "slash, no `.` or `..` segments, no control characters or backslashes",
        )
    url = base_url.rstrip("/") + "/" + quote(raw_path, safe=_PATH_SAFE)
    return f"{url}?{query}" if query else url


def forward(
    tenant_id: str,
    account_id: str,
    method: str,
    raw_path: str,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> ProxyResponse:
    """One vendor call on behalf of the tenant; see the module docstring."""
    method = method.upper()
    if method not in METHODS:
        raise ProxyError(405, "method_not_allowed", f"the proxy supports {', '.join(METHODS)}")
    acc = accounts.load(account_id, tenant_id)
    vendor = registry().vendors.get(acc["vendor"])
    if vendor is None:
        raise ProxyError(
            409, "unknown_vendor", f"vendor {acc['vendor']!r} is not served by this deployment"
        )
    url = target_url(acc["base_url"], raw_path, query)
    out = {k.lower(): v for k, v in (headers or {}).items() if k.lower() in REQUEST_HEADERS}
    out.pop(vendor.auth_header.lower(), None)
    out.pop("authorization", None)
    timeout = get_settings().http_timeout_s

    budget = Budget(account_id, accounts.rate_policy(acc, vendor))
    exchange = _Exchange(
        vendor, method, url, out, body or None, timeout, budget, acc.get("time_zone")
    )
    credentials = _Credentials(account_id)
    flow = transport.auth_flow(vendor, credentials, _disguised_401(vendor))
    try:
        resp = transport.send_authorized(exchange, flow, budget)
    except RateLimited as exc:  # the budget's own refusal, before anything was sent
        return _budget_spent(exc.retry_after or 0.0, budget.limit)
    except AuthRejected as exc:  # refused again after a refresh
        raise _rejected(vendor, account_id, exc.status, credentials.version) from None
    if exchange.rate.limited:
        return _limited(exchange.rate)
    return _pass_through(vendor, resp, exchange.content, exchange.rate)


@dataclass
class _Credentials:
    """The account's token source for the pipeline; it keeps the version of the credentials
    the last token came from: a refusal marks the account only if they are still the stored
    ones (not ones posted since)."""

    account_id: str
    version: str | None = None

    def __call__(self, force: bool) -> str:
        token = _token(self.account_id, force=force)
        self.version = get_redis().hget(keys.token(self.account_id), "version")
        return token


@dataclass
class _Exchange:
    """The proxy's send for the pipeline: streamed, its body read under the cap, and every
    answer but a 401 told to the account's budget (flushed: the proxy sends nothing more)."""

    vendor: Vendor
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    timeout: float
    budget: Budget
    time_zone: str | None
    content: bytes = b""
    rate: ratelimit.RateLimit = field(default_factory=ratelimit.RateLimit)

    def __call__(self, auth: dict[str, str]) -> requests.Response:
        sent = {**self.headers, **auth}
        resp = _send(self.vendor, self.method, self.url, sent, self.body, self.timeout)
        try:
            if resp.status_code == 401:
                return resp  # revoked or expired early: the flow refreshes once
            self.content = _read(resp, self.vendor, self.timeout)
        finally:
            resp.close()
        self.rate = transport.observe(self.budget, self.vendor, resp, self.content, self.time_zone)
        self.budget.flush()
        return resp


def _token(account_id: str, *, force: bool) -> str:
    try:
        return tokens.get_access_token(account_id, force=force)
    except AuthRejected as exc:
        # the token store already checked the refusal was of its current credentials
        reauth.mark_and_notify(account_id, exc.message)
        raise ProxyError(409, "needs_reauth", exc.message) from None
    except Transient as exc:
        raise ProxyError(
            502, "upstream_unavailable", f"refreshing the access token failed: {exc}"
        ) from None


def _send(
    vendor: Vendor,
    method: str,
    url: str,
    headers: dict[str, str],
    body: bytes | None,
    timeout: float,
) -> requests.Response:
    try:
        return session().request(
            method,
            url,
            headers=headers,
            data=body,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout:
        raise ProxyError(
            504, "upstream_timeout", f"{vendor.name} did not answer within {timeout:g} s"
        ) from None
    except requests.RequestException as exc:
        raise ProxyError(
            502, "upstream_unavailable", f"{type(exc).__name__} talking to {vendor.name}"
        ) from None


def _too_large(vendor: Vendor) -> ProxyError:
    return ProxyError(
        502,
        "upstream_response_too_large",
        f"{vendor.name}'s response is over the proxy's {MAX_RESPONSE_BYTES} byte limit; "
        "use a smaller page or a job (POST /v1/jobs)",
    )


def _read(resp: requests.Response, vendor: Vendor, timeout: float) -> bytes:
    """The (decoded) body, at most MAX_RESPONSE_BYTES, within a total deadline."""
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise _too_large(vendor)
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    seen = 0
    try:
        for chunk in resp.iter_content(CHUNK_BYTES):
            seen += len(chunk)
            if seen > MAX_RESPONSE_BYTES:
                raise _too_large(vendor)
            if time.monotonic() > deadline:
                raise ProxyError(
                    504, "upstream_timeout", f"{vendor.name}'s response took over {timeout:g} s"
                )
            chunks.append(chunk)
    except requests.RequestException as exc:
        raise ProxyError(
            502, "upstream_unavailable", f"{type(exc).__name__} reading {vendor.name}'s answer"
        ) from None
    content = b"".join(chunks)
    resp._content = content  # the vendor's `classify` may read .json()/.text
    return content


def _disguised_401(vendor: Vendor) -> transport.Classify:
    """The vendor's verdict on an answer, kept only when it is a 401 in another guise (Slack
    `invalid_auth` in a 200): every other verdict is the caller's to read."""

    def classify(resp: requests.Response) -> None:
        try:
            vendor.classify(resp)
        except Unauthorized:
            raise
        except Exception:  # noqa: BLE001 - passed through to the caller instead
            return

    return classify


def _rejected(
    vendor: Vendor, account_id: str, status: int | None, version: str | None
) -> ProxyError:
    """Revoked access: the account needs new credentials (unless they changed meanwhile), and
    its jobs park at their next step instead of spending requests on sure 401s."""
    message = (
        f"{vendor.name} rejected a freshly refreshed token ({status}); re-authorize the account"
    )
    reauth.mark_and_notify(account_id, message, version=version)
    return ProxyError(409, "needs_reauth", message)


def _limited(rate: ratelimit.RateLimit) -> ProxyResponse:
    headers = rate.to_headers()
    if "retry-after" not in headers:
        wait = rate.wait
        headers["retry-after"] = (
            str(max(0, int(-(-wait // 1)))) if wait is not None else str(UNKNOWN_RETRY_AFTER_S)
        )
    headers["content-type"] = "application/json"
    body = {"error": "rate_limit_exceeded", "message": "Upstream API rate limit exceeded"}
    return ProxyResponse(429, headers, json.dumps(body).encode())


def _budget_spent(wait: float, limit: int | None) -> ProxyResponse:
    """The account's shared budget (its jobs included) is spent: refuse before sending."""
    rate = ratelimit.RateLimit(limit, 0, wait, max(1.0, wait), limited=True)
    headers = {**rate.to_headers(), "content-type": "application/json"}
    body = {
        "error": "rate_limit_exceeded",
        "message": "The account's request budget is spent (shared with its running jobs); "
        f"retry in {headers['retry-after']} s",
    }
    return ProxyResponse(429, headers, json.dumps(body).encode())


def _pass_through(
    vendor: Vendor, resp: requests.Response, content: bytes, rate: ratelimit.RateLimit
) -> ProxyResponse:
    headers = {k.lower(): v for k, v in resp.headers.items() if k.lower() in RESPONSE_HEADERS}
    headers.update(rate.to_headers())
    headers[UPSTREAM_HEADER] = vendor.name  # the body is the vendor's, not a toolqueue error
    return ProxyResponse(resp.status_code, headers, content)
