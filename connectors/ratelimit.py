"""Every vendor's rate-limit dialect in, one normalized value out (and IETF headers back out).

A "reset" that is plainly an epoch (> 1e9 s, or ms) or a date is converted to seconds from now;
it is never slept as a delta — the motivating article's snippet has exactly that bug.

When a response carries several windows (Zendesk's account-wide and per-endpoint limits,
HubSpot's burst and daily ones, IETF named policies), the binding one is reported: the window
with the fewest requests remaining (on a tie, the one resetting last).

`limited` means "this response is a rate-limit refusal": 429; 403 with remaining 0 (GitHub),
`REQUEST_LIMIT_EXCEEDED` (Salesforce) or a secondary-limit message (GitHub); 503 with
Retry-After (Jira); or a refusal inside a 200 (Shopify GraphQL `THROTTLED`, Slack
`ratelimited`). A 200 with remaining 0 succeeded, so it is NOT limited; `remaining == 0`
there tells the worker to defer the next request by `reset_after`.

HubSpot's `DAILY` refusal names no time: its window resets at midnight in the portal's time
zone, which only the account can state (`time_zone`); without one, UTC is assumed and the
refusal's `label` says so.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as clock
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from requests.structures import CaseInsensitiveDict

EPOCH_THRESHOLD = 1e9
# a DAILY refusal this soon after our midnight is the vendor's clock lagging ours: its day
# turns any moment, so retry after this long rather than a whole day later
DAILY_SKEW_S = 60.0

Window = tuple[int | None, int | None, float | None]  # limit, remaining, reset_after


@dataclass(frozen=True)
class RateLimit:
    limit: int | None = None
    remaining: int | None = None
    reset_after: float | None = None  # seconds from `now` until the window resets
    retry_after: float | None = None  # seconds the caller must wait, when the response says so
    limited: bool = False  # this response is a rate-limit refusal (see the module docstring)
    policy: str = ""
    # the rolling window the response states outright (HubSpot's max per interval), whichever
    # window binds: what a shared budget paces by
    window: float | None = None
    window_limit: int | None = None
    resets: str = ""  # when a window the vendor gave no time for resets, in words

    @property
    def label(self) -> str:
        """The policy as a job's reason shows it: `DAILY, resets 00:00 America/New_York`."""
        return f"{self.policy}, {self.resets}" if self.resets else self.policy

    @property
    def wait(self) -> float | None:
        """How long to wait before the next request, when the vendor named a time."""
        if self.retry_after is not None:
            return self.retry_after
        return self.reset_after

    def to_headers(self) -> dict[str, str]:
        """The IETF trio (reset as integer delta seconds, rounded up) and `retry-after`."""
        out: dict[str, str] = {}
        if self.limit is not None:
            out["ratelimit-limit"] = str(self.limit)
        if self.remaining is not None:
            out["ratelimit-remaining"] = str(self.remaining)
        if self.reset_after is not None:
            out["ratelimit-reset"] = str(max(0, math.ceil(self.reset_after)))
        if self.retry_after is not None:
            out["retry-after"] = str(max(0, math.ceil(self.retry_after)))
        return out


def parse(
    headers: Mapping[str, str],
    status: int = 200,
    body: bytes | None = None,
    now: float | None = None,
    time_zone: str | None = None,
) -> RateLimit:
    """Normalize one response's rate-limit signals (headers case-insensitive); `time_zone`
    (IANA) is the account's, where a daily window resets at its midnight."""
    now = time.time() if now is None else now
    # a response's headers store their lower-cased keys: iterating those skips a lookup per key
    items = headers.lower_items() if isinstance(headers, CaseInsensitiveDict) else headers.items()
    h = {str(k).lower(): str(v).strip() for k, v in items}
    doc = _json(body)
    windows = _windows(h, doc, now)
    limit, remaining, reset = _binding(windows) if windows else (None, None, None)
    retry_after = _reset(h["retry-after"], now) if "retry-after" in h else None
    secondary = any(s in _msg(doc) for s in ("secondary rate limit", "abuse detection"))
    policy = str(doc.get("policyName") or "") if isinstance(doc, dict) else ""
    if _sf_limit(doc):
        policy = "REQUEST_LIMIT_EXCEEDED"

    limited = (
        status == 429
        or (status == 403 and (remaining == 0 or _sf_limit(doc) or secondary))
        or (status == 503 and retry_after is not None)
        or _graphql_throttled(doc)
        or (isinstance(doc, dict) and doc.get("ok") is False and doc.get("error") == "ratelimited")
    )
    if limited and reset is None and retry_after is None:
        if policy == "TEN_SECONDLY_ROLLING":
            reset = 10.0  # HubSpot's burst window, when the 429 came without headers
        elif policy == "SECONDLY":
            reset = 1.0  # HubSpot search: its own per-second limit, no rate headers
    resets = ""
    if limited and policy == "DAILY" and retry_after is None:
        reset, resets = _daily_reset(now, time_zone)  # whatever a burst header says
    if limited and retry_after is None and secondary:
        # GitHub: wait at least a minute when it names no time (longer if the primary is spent)
        retry_after = max(60.0, reset or 0.0) if remaining == 0 else 60.0
    throttle = _get(doc, "extensions", "cost", "throttleStatus")
    if limited and retry_after is None and isinstance(throttle, dict):
        need = _float(_get(doc, "extensions", "cost", "requestedQueryCost")) or 1.0
        rate = _float(throttle.get("restoreRate")) or 1.0
        retry_after = max(0.0, (need - (remaining or 0)) / rate)
    window, window_limit = _stated(h)
    return RateLimit(
        limit, remaining, reset, retry_after, limited, policy, window, window_limit, resets
    )


def _daily_reset(now: float, time_zone: str | None) -> tuple[float, str]:
    """Seconds until the next local midnight in `time_zone` (UTC when none or unknown), and
    how a job's reason names it. A midnight that DST skips is the instant the day starts."""
    zone: tzinfo = UTC
    named = "UTC — assumed, the account states no time_zone"
    if time_zone:
        try:
            zone, named = ZoneInfo(time_zone), time_zone
        except (ValueError, KeyError, OSError):  # validated at creation; tzdata may change
            named = f"UTC — assumed, the account's time_zone {time_zone!r} is unknown here"
    local = datetime.fromtimestamp(now, zone)
    midnight = datetime.combine(local.date(), clock(0), zone).timestamp()
    if 0 <= now - midnight < DAILY_SKEW_S:
        return midnight + DAILY_SKEW_S - now, f"reset at 00:00 {named} moments ago by our clock"
    following = datetime.combine(local.date() + timedelta(days=1), clock(0), zone)
    return following.timestamp() - now, f"resets 00:00 {named}"


def _stated(h: dict[str, str]) -> tuple[float | None, int | None]:
    ms = _float(h.get("x-hubspot-ratelimit-interval-milliseconds"))
    limit = _int(h.get("x-hubspot-ratelimit-max"))
    if ms is None or limit is None or ms <= 0:
        return None, None
    return ms / 1000, limit


_SFORCE = re.compile(r"(?<![\w-])(?:per-app-)?api-usage=(\d+)/(\d+)")
_SHOPIFY = re.compile(r"(\d+)\s*/\s*(\d+)")


def _windows(h: dict[str, str], doc: object, now: float) -> list[Window]:
    """Every (limit, remaining, reset_after) window the response describes."""
    out: list[Window] = []
    hub = "x-hubspot-ratelimit-"
    if hub + "max" in h or hub + "remaining" in h:
        ms = _float(h.get(hub + "interval-milliseconds"))
        reset = ms / 1000 if ms is not None else None  # rolling window: at most this long
        out.append((_int(h.get(hub + "max")), _int(h.get(hub + "remaining")), reset))
    if hub + "secondly" in h:
        out.append((_int(h[hub + "secondly"]), _int(h.get(hub + "secondly-remaining")), 1.0))
    if hub + "daily" in h or hub + "daily-remaining" in h:
        out.append((_int(h.get(hub + "daily")), _int(h.get(hub + "daily-remaining")), None))
    # Salesforce: org-wide `api-usage=used/max` and `per-app-api-usage=used/max(appName=x)`
    if sforce := h.get("sforce-limit-info"):
        out.extend(_used_of(m) for m in _SFORCE.finditer(sforce))
    if (shopify := h.get("x-shopify-shop-api-call-limit")) and (m := _SHOPIFY.match(shopify)):
        out.append(_used_of(m))  # leaky bucket: used/size
    for prefix, limit_keys in (
        ("x-ratelimit-", ("x-ratelimit-limit",)),  # GitHub (epoch reset), Jira (ISO reset)
        ("x-rate-limit-", ("x-rate-limit-limit", "x-rate-limit")),  # Zendesk account-wide
        ("ratelimit-", ("ratelimit-limit",)),  # IETF early drafts (10, 10;w=1, 50;w=60), Zendesk
    ):
        raw = next((h[k] for k in limit_keys if k in h), None)
        if raw is not None or prefix + "remaining" in h or prefix + "reset" in h:
            limit = _int((raw or "").split(",")[0].split(";")[0])
            if limit is None and prefix == "ratelimit-" and "ratelimit-policy" in h:
                limit = next(iter(_policies(h["ratelimit-policy"]).values()), None)
            reset = _reset(h[prefix + "reset"], now) if prefix + "reset" in h else None
            out.append((limit, _int(h.get(prefix + "remaining")), reset))
    for key, value in h.items():  # Zendesk per endpoint: total=100; remaining=99; resets=41
        if key.startswith("zendesk-ratelimit-"):
            f = dict(re.findall(r"([a-z]+)=([^;,\s]+)", value))
            reset = _reset(f["resets"], now) if "resets" in f else None
            out.append((_int(f.get("total")), _int(f.get("remaining")), reset))
    if "ratelimit" in h:
        out.extend(_structured(h["ratelimit"], h.get("ratelimit-policy", ""), now))
    throttle = _get(doc, "extensions", "cost", "throttleStatus")
    if isinstance(throttle, dict):  # Shopify GraphQL cost-based bucket
        out.append(
            (_int(throttle.get("maximumAvailable")), _int(throttle.get("currentlyAvailable")), None)
        )
    return [w for w in out if w != (None, None, None)]


def _binding(windows: list[Window]) -> Window:
    """The window with the fewest remaining (unknown counts last); on a tie, the latest reset."""
    return min(windows, key=lambda w: (w[1] is None, w[1] or 0, -(w[2] or 0.0)))


def _used_of(m: re.Match[str]) -> Window:
    used, limit = int(m.group(1)), int(m.group(2))
    return (limit, max(0, limit - used), None)


def _structured(value: str, policy_field: str, now: float) -> list[Window]:
    """`RateLimit`: draft-07 dictionary `limit=100, remaining=50, reset=5`, or -08+ named
    items `"default";r=50;t=30` whose quota `q` is in the `RateLimit-Policy` of that name."""
    quotas = _policies(policy_field)
    fields = dict(re.findall(r"(?<![\w-])(limit|remaining|reset)=([^,;\s]+)", value))
    if fields:
        limit = _int(fields.get("limit"))
        if limit is None and quotas:
            limit = next(iter(quotas.values()))
        reset = _reset(fields["reset"], now) if "reset" in fields else None
        return [(limit, _int(fields.get("remaining")), reset)]
    out: list[Window] = []
    for item in value.split(","):
        name = item.split(";")[0].strip().strip('"')
        params = dict(re.findall(r";\s*([a-z]+)=([^;,\s]+)", item))
        limit = quotas.get(name, next(iter(quotas.values())) if len(quotas) == 1 else None)
        reset = _reset(params["t"], now) if "t" in params else None
        out.append((limit, _int(params.get("r")), reset))
    return out


def _policies(value: str) -> dict[str, int | None]:
    """Policy name → quota: `"burst";q=100;w=60` (-08+) or unnamed `100;w=10` (earlier)."""
    out: dict[str, int | None] = {}
    for item in value.split(","):
        head = item.split(";")[0].strip()
        q = re.search(r";\s*q=(\d+)", item)
        if q:
            out[head.strip('"')] = int(q.group(1))
        elif head.isdigit():
            out.setdefault("", int(head))
    return out


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


def _date(value: str) -> float | None:
    """HTTP-date (RFC 9110) or ISO-8601 (Jira's `2026-11-27T18:05Z`); no zone means UTC."""
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _json(body: bytes | None) -> object:
    body = (body or b"").lstrip()
    if body[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
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
    """A non-negative count, or None for anything else (garbage, negative, NaN, inf)."""
    f = _float(value)
    return None if f is None or f < 0 else int(f)


def _float(value: object) -> float | None:
    if value is None:  # an absent header: skip the raised and caught ValueError
        return None
    try:
        f = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None
