"""Every vendor's rate-limit dialect in, one normalized value out (and IETF headers back out).

A "reset" that is plainly an epoch (> 1e9) or a date is converted to seconds from now; it is
never slept as a delta — the motivating article's snippet has exactly that bug.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

EPOCH_THRESHOLD = 1e9


@dataclass(frozen=True)
class RateLimit:
    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None  # seconds from `now` until the window resets
    retry_after: float | None = None  # seconds the caller must wait, when the response says so
    limited: bool = False  # this response is a rate-limit refusal
    policy: str = ""

    @property
    def wait(self) -> float | None:
        """How long to wait before the next request, when the vendor named a time."""
        if self.retry_after is not None:
            return self.retry_after
        return self.reset_after

    def to_headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.limit is not None:
            out["ratelimit-limit"] = str(self.limit)
        if self.remaining is not None:
            out["ratelimit-remaining"] = str(self.remaining)
        if self.reset_after is not None:
            out["ratelimit-reset"] = str(max(0, int(-(-self.reset_after // 1))))
        if self.retry_after is not None:
            out["retry-after"] = str(max(0, int(-(-self.retry_after // 1))))
        return out


def parse(
    headers: Mapping[str, str],
    status: int = 200,
    body: bytes | None = None,
    now: float | None = None,
) -> RateLimit:
    """Normalize one response's rate-limit signals (headers case-insensitive)."""
    now = time.time() if now is None else now
    h = {k.lower(): v.strip() for k, v in headers.items()}
    doc = _json(body)
    limit = remaining = None
    reset: float | None = None
    policy = ""

    if "x-hubspot-ratelimit-max" in h:
        limit = _int(h["x-hubspot-ratelimit-max"])
        remaining = _int(h.get("x-hubspot-ratelimit-remaining"))
        ms = _float(h.get("x-hubspot-ratelimit-interval-milliseconds"))
        reset = ms / 1000 if ms is not None else None
    elif "x-hubspot-ratelimit-secondly" in h:
        limit = _int(h["x-hubspot-ratelimit-secondly"])
        remaining = _int(h.get("x-hubspot-ratelimit-secondly-remaining"))
        reset = 1.0
    if "sforce-limit-info" in h:
        m = re.search(r"(?<![-\w])api-usage=(\d+)/(\d+)", h["sforce-limit-info"])
        if m:
            used, limit = int(m.group(1)), int(m.group(2))
            remaining = max(0, limit - used)
    if "x-shopify-shop-api-call-limit" in h:
        m = re.match(r"(\d+)/(\d+)", h["x-shopify-shop-api-call-limit"])
        if m:
            used, limit = int(m.group(1)), int(m.group(2))
            remaining = max(0, limit - used)
    for prefix in ("x-ratelimit-", "x-rate-limit-", "ratelimit-"):
        if limit is None and prefix + "limit" in h:
            limit = _int(h[prefix + "limit"].split(",")[0].split(";")[0])
        if remaining is None and prefix + "remaining" in h:
            remaining = _int(h[prefix + "remaining"])
        if reset is None and prefix + "reset" in h:
            reset = _reset(h[prefix + "reset"], now)
    if limit is None and "x-rate-limit" in h:
        limit = _int(h["x-rate-limit"])
    if "ratelimit" in h:  # structured forms: draft-07 dictionary or -08+ named lists
        fields = dict(re.findall(r"\b([a-z]+)=([^,;\s]+)", h["ratelimit"]))
        remaining = (
            _int(fields.get("remaining", fields.get("r"))) if remaining is None else remaining
        )
        if limit is None and "limit" in fields:
            limit = _int(fields["limit"])
        if reset is None and ("reset" in fields or "t" in fields):
            reset = _reset(fields.get("reset", fields.get("t", "")), now)
    if limit is None and "ratelimit-policy" in h:
        m = re.search(r"(?:^|[\s,;\"])(?:q=)?(\d+)\s*;", h["ratelimit-policy"] + ";")
        limit = int(m.group(1)) if m else None

    throttle = _get(doc, "extensions", "cost", "throttleStatus")
    if isinstance(throttle, dict):  # Shopify GraphQL cost-based bucket
        limit = _int(throttle.get("maximumAvailable"))
        remaining = _int(throttle.get("currentlyAvailable"))

    retry_after = _retry_after(h.get("retry-after"), now)
    limited = status == 429
    if status == 403:
        limited = remaining == 0 or _sf_limit(doc) or "secondary rate limit" in _msg(doc)
    if not limited and _graphql_throttled(doc):
        limited = True
    if isinstance(doc, dict) and doc.get("ok") is False and doc.get("error") == "ratelimited":
        limited = True
    if isinstance(doc, dict):
        policy = str(doc.get("policyName") or "")
    if limited and _sf_limit(doc):
        policy = "REQUEST_LIMIT_EXCEEDED"
    if limited and reset is None and retry_after is None and policy == "TEN_SECONDLY_ROLLING":
        reset = 10.0
    if limited and retry_after is None and remaining != 0 and "secondary rate limit" in _msg(doc):
        retry_after = 60.0  # GitHub: wait at least a minute when it names no time
    if limited and reset is None and retry_after is None and policy == "SECONDLY":
        reset = 1.0  # HubSpot search: its own per-second limit, no rate headers
    if limited and retry_after is None and isinstance(throttle, dict):
        need = _float(_get(doc, "extensions", "cost", "requestedQueryCost")) or 1.0
        rate = _float(throttle.get("restoreRate")) or 1.0
        retry_after = max(0.0, (need - (remaining or 0)) / rate)
    return RateLimit(limit, remaining, reset, retry_after, limited, policy)


def _reset(value: str, now: float) -> float | None:
    """Delta seconds; an epoch (seconds or ms) or an ISO/HTTP date becomes a delta from now."""
    value = value.strip().strip('"')
    num = _float(value)
    if num is not None:
        if num > EPOCH_THRESHOLD * 1000:  # epoch milliseconds
            return max(0.0, num / 1000 - now)
        if num > EPOCH_THRESHOLD:
            return max(0.0, num - now)
        return max(0.0, num)
    when = _date(value)
    return None if when is None else max(0.0, when - now)


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    return _reset(value, now)


def _date(value: str) -> float | None:
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _json(body: bytes | None) -> object:
    if not body or body[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _get(doc: object, *path: str) -> object:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _msg(doc: object) -> str:
    return str(doc.get("message", "")).lower() if isinstance(doc, dict) else ""


def _sf_limit(doc: object) -> bool:
    return isinstance(doc, list) and any(
        isinstance(e, dict) and e.get("errorCode") == "REQUEST_LIMIT_EXCEEDED" for e in doc
    )


def _graphql_throttled(doc: object) -> bool:
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return isinstance(errors, list) and any(
        isinstance(e, dict) and _get(e, "extensions", "code") == "THROTTLED" for e in errors
    )


def _int(value: object) -> int | None:
    f = _float(value)
    return None if f is None else int(f)


def _float(value: object) -> float | None:
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None
