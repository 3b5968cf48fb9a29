"""In-memory state shared by every vendor router; one instance per app, guarded by one lock.

Admin endpoints are sync (threadpool) and vendor endpoints async (event loop), so every
mutation happens under ``lock`` and never across an ``await``.
"""

from __future__ import annotations

import base64
import hashlib
import random
import secrets
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sandbox.settings import SandboxSettings
from sandbox.writes import WriteStore

LOG_MAX = 200_000  # request-log entries kept; a full 90k-contact crawl needs ~900


class LiveConfig(BaseModel):
    """Knobs tests and the demo change at runtime; replaced whole on update (atomic swap)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hubspot_contacts: int = Field(ge=0)
    rate_budget: int = Field(ge=0, description="Accepted requests per rolling window, per vendor")
    rate_window_ms: int = Field(ge=1)
    token_ttl_s: int = Field(ge=0, description="Lifetime of issued access tokens")
    latency_ms: int = Field(ge=0)
    error_rate: float = Field(ge=0.0, le=1.0)
    rotate_refresh_tokens: dict[str, bool] = Field(description="Per vendor: rotate on refresh")
    daily_budget: int = Field(500_000, ge=0)
    default_volume: int = Field(1000, ge=0, description="Records per collection by default")
    volumes: dict[str, int] = Field(
        default_factory=dict, description='Per collection, e.g. {"zendesk.tickets": 0}'
    )
    rate_budgets: dict[str, int] = Field(
        default_factory=dict, description="Per vendor override of rate_budget"
    )
    token_latency_ms: int = Field(
        0, ge=0, description="Extra latency of token-endpoint calls only (on top of latency_ms)"
    )
    token_faults: int = Field(
        0, ge=0, description="The next N token-endpoint calls answer 503; counts down to 0"
    )
    fail_before_commit_next: int = Field(
        0, ge=0, description="The next N write requests answer 5xx and commit nothing"
    )
    drop_after_commit_next: int = Field(
        0, ge=0, description="The next N committed writes lose their answer (connection cut)"
    )
    drop_after_commit_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of committed writes whose answer is lost (seeded)"
    )
    write_latency_ms: int = Field(
        0, ge=0, description="Time a write spends between claiming its key and committing"
    )
    github_content_per_minute: int = Field(
        80, ge=0, description="GitHub: content-creating requests a minute (secondary limit; 0: off)"
    )
    github_content_per_hour: int = Field(
        500, ge=0, description="GitHub: content-creating requests an hour (secondary limit; 0: off)"
    )
    slack_channel_post_interval_ms: int = Field(
        1000, ge=0, description="Slack: least time between two posts to one channel (0: off)"
    )
    idempotency_ttl_s: int = Field(
        7200, ge=0, description="Zendesk: Idempotency-Key lifetime (Stripe keeps keys for good)"
    )
    hubspot_hub_id: int = Field(
        62515, ge=1, description="HubSpot: the portal a consent grants (`hub_id` in token answers)"
    )
    salesforce_locked_fields: list[str] = Field(
        default_factory=list,
        description="Salesforce: fields the integration user may not write (field-level "
        "security); a record setting one to a value is refused, INVALID_FIELD_FOR_INSERT_UPDATE",
    )

    def volume(self, collection: str) -> int:
        """How many records a `vendor.collection` holds (hubspot.contacts has its own knob)."""
        if collection == "hubspot.contacts":
            return self.hubspot_contacts
        return self.volumes.get(collection, self.default_volume)

    def budget(self, vendor: str) -> int:
        return self.rate_budgets.get(vendor, self.rate_budget)


@dataclass
class AccessToken:
    vendor: str
    expires_at: float | None  # wall clock; None: static, never expires


@dataclass
class RefreshToken:
    vendor: str
    client_id: str


@dataclass(frozen=True)
class Issued:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True)
class RateDecision:
    """Outcome of one rate check; ``policy`` is None when accepted, else the exhausted one."""

    policy: Literal["TEN_SECONDLY_ROLLING", "DAILY"] | None
    limit: int
    remaining: int
    window_ms: int
    daily_limit: int
    daily_remaining: int


@dataclass
class AuthCode:
    """An authorization code: single use, bound to its client, redirect URI and PKCE
    challenge (S256; None when the app sent none)."""

    vendor: str
    client_id: str
    redirect_uri: str
    challenge: str | None
    scope: str
    expires_at: float


CODE_TTL_S = 600  # HubSpot and Salesforce codes live minutes; Shopify's likewise


class TokenError(Exception):
    """A refresh was refused; each vendor renders ``reason`` in its own dialect."""

    def __init__(self, reason: Literal["client", "refresh_token", "code"]) -> None:
        super().__init__(reason)
        self.reason = reason


class SandboxState:
    """Config, request log, rate windows, tokens and counters of one sandbox instance."""

    def __init__(
        self, settings: SandboxSettings, rotate_defaults: dict[str, bool], seed: int = 0
    ) -> None:
        self.lock = threading.Lock()
        self.vendors: tuple[str, ...] = tuple(rotate_defaults)
        self._seed = seed
        self.config = LiveConfig(
            hubspot_contacts=settings.hubspot_contacts,
            default_volume=settings.volume,
            rate_budget=settings.rate_budget,
            rate_window_ms=settings.rate_window_ms,
            token_ttl_s=settings.token_ttl_s,
            latency_ms=settings.latency_ms,
            error_rate=settings.error_rate,
            rotate_refresh_tokens=dict(rotate_defaults),
        )
        self.reset()

    # ---- lifecycle / config -------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything but the config; re-seed faults so runs repeat exactly."""
        with self.lock:
            self.log: deque[dict[str, Any]] = deque(maxlen=LOG_MAX)
            self.windows: dict[str, deque[float]] = defaultdict(deque)
            self.daily: dict[str, tuple[int, int]] = {}  # vendor -> (UTC day, accepted count)
            self.access: dict[str, AccessToken] = {}
            self.refresh_tokens: dict[str, RefreshToken] = {}
            self.retired: dict[str, str] = {}  # rotated-out refresh token -> vendor
            self.clients: dict[tuple[str, str], str] = {}  # (vendor, client_id) -> secret
            self.codes: dict[str, AuthCode] = {}  # authorization codes not yet exchanged
            self.requests_total = 0
            self.refresh_calls: dict[str, int] = dict.fromkeys(self.vendors, 0)
            self.refresh_reuse: dict[str, int] = dict.fromkeys(self.vendors, 0)
            self.rate_limited = 0
            self.rng = random.Random(self._seed)
            self.writes = WriteStore()

    def update_config(self, changes: dict[str, Any]) -> LiveConfig:
        """Partial update; raises ``pydantic.ValidationError`` (unknown key, bad value).

        ``rotate_refresh_tokens`` may be a bool (all vendors) or a partial per-vendor map.
        """
        with self.lock:
            merged = self.config.model_dump()
            rotate = changes.get("rotate_refresh_tokens")
            if isinstance(rotate, bool):
                changes = {**changes, "rotate_refresh_tokens": dict.fromkeys(self.vendors, rotate)}
            elif isinstance(rotate, dict):
                if unknown := set(rotate) - set(self.vendors):
                    raise ValueError(f"rotate_refresh_tokens: unknown vendor(s) {sorted(unknown)}")
                rotate = {**merged["rotate_refresh_tokens"], **rotate}
                changes = {**changes, "rotate_refresh_tokens": rotate}
            self.config = LiveConfig.model_validate({**merged, **changes})
            return self.config

    # ---- request log & counters -----------------------------------------------------------

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.log.append(entry)
            self.requests_total += 1

    def requests(self, since: float | None = None, vendor: str | None = None) -> list[dict]:
        with self.lock:
            entries = list(self.log)
        return [
            e
            for e in entries
            if (since is None or e["t"] >= since) and (vendor is None or e["vendor"] == vendor)
        ]

    def clear_requests(self) -> None:
        with self.lock:
            self.log.clear()

    def count_refresh(self, vendor: str) -> None:
        with self.lock:
            self.refresh_calls[vendor] = self.refresh_calls.get(vendor, 0) + 1

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": self.requests_total,
                "refresh_calls": dict(self.refresh_calls),
                "refresh_reuse": dict(self.refresh_reuse),
                "rate_limited": self.rate_limited,
            }

    # ---- faults & rate limits --------------------------------------------------------------

    def roll_fault(self) -> int | None:
        """502/503 for an ``error_rate`` share of calls; seeded so a run is reproducible."""
        rate = self.config.error_rate
        if rate <= 0:
            return None
        with self.lock:
            if self.rng.random() >= rate:
                return None
            return self.rng.choice((502, 503))

    def take_token_fault(self) -> bool:
        """Spend one of the configured ``token_faults`` (the config shows how many remain)."""
        with self.lock:
            left = self.config.token_faults
            if left <= 0:
                return False
            self.config = self.config.model_copy(update={"token_faults": left - 1})
            return True

    def _countdown(
        self, knob: Literal["fail_before_commit_next", "drop_after_commit_next"]
    ) -> bool:
        """Spend one of a write fault's remaining count (the live config shows what is left)."""
        with self.lock:
            left: int = getattr(self.config, knob)
            if left <= 0:
                return False
            self.config = self.config.model_copy(update={knob: left - 1})
            return True

    def take_fail_before_commit(self) -> bool:
        return self._countdown("fail_before_commit_next")

    def take_window(self, key: str, limit: int, window_s: float) -> float | None:
        """A rolling window of ``limit`` accepted calls per ``window_s`` under
        ``self.windows[key]``: None (accepted and counted), else the seconds until the oldest
        call leaves the window. ``limit`` 0 turns the window off."""
        if limit <= 0:
            return None
        now = time.monotonic()
        with self.lock:
            window = self.windows[key]
            while window and window[0] <= now - window_s:
                window.popleft()
            if len(window) >= limit:
                return float(window[0] + window_s - now)
            window.append(now)
            return None

    def take_drop_after_commit(self) -> bool:
        """Whether a write just committed loses its answer: a counted drop, else the rate."""
        if self._countdown("drop_after_commit_next"):
            return True
        rate = self.config.drop_after_commit_rate
        if rate <= 0:
            return False
        with self.lock:
            return self.rng.random() < rate

    def take_rate(self, vendor: str) -> RateDecision:
        """Rolling window of accepted calls per vendor (one portal budget); refusals are free."""
        cfg = self.config
        now = time.monotonic()
        day = int(time.time() // 86400)
        with self.lock:
            window = self.windows[vendor]
            while window and window[0] <= now - cfg.rate_window_ms / 1000:
                window.popleft()
            d_day, d_used = self.daily.get(vendor, (day, 0))
            if d_day != day:
                d_used = 0
            policy: Literal["TEN_SECONDLY_ROLLING", "DAILY"] | None = None
            if d_used >= cfg.daily_budget:
                policy = "DAILY"
            elif len(window) >= cfg.budget(vendor):
                policy = "TEN_SECONDLY_ROLLING"
            else:
                window.append(now)
                d_used += 1
            self.daily[vendor] = (day, d_used)
            if policy:
                self.rate_limited += 1
            return RateDecision(
                policy=policy,
                limit=cfg.budget(vendor),
                remaining=max(0, cfg.budget(vendor) - len(window)),
                window_ms=cfg.rate_window_ms,
                daily_limit=cfg.daily_budget,
                daily_remaining=max(0, cfg.daily_budget - d_used),
            )

    # ---- tokens -----------------------------------------------------------------------------

    def _issue(self, vendor: str, client_id: str, expires_in: int, now: float) -> Issued:
        access = "C" + secrets.token_urlsafe(48)
        refresh = f"na1-{uuid.uuid4()}"
        self.access[access] = AccessToken(vendor, now + expires_in)
        self.refresh_tokens[refresh] = RefreshToken(vendor, client_id)
        return Issued(access, refresh, expires_in)

    def mint(
        self, vendor: str, client_id: str, client_secret: str, expires_in: int | None = None
    ) -> Issued:
        """Create an account: register the client and hand out a fresh token pair."""
        ttl = self.config.token_ttl_s if expires_in is None else expires_in
        with self.lock:
            self.clients[(vendor, client_id)] = client_secret
            return self._issue(vendor, client_id, ttl, time.time())

    def add_static(self, vendor: str, token: str) -> None:
        with self.lock:
            self.access[token] = AccessToken(vendor, None)

    def revoke(self, vendor: str, refresh_token: str | None = None) -> int:
        """Drop one refresh token, or every one of ``vendor``; access tokens live on to expiry."""
        with self.lock:
            doomed = [
                t
                for t, r in self.refresh_tokens.items()
                if r.vendor == vendor and (refresh_token is None or t == refresh_token)
            ]
            for t in doomed:
                del self.refresh_tokens[t]
            return len(doomed)

    def revoke_access(self, vendor: str) -> int:
        """Drop every access token of ``vendor`` (a deauthorization: Stripe revokes a connected
        account's key at once); the next call with one is a 401."""
        with self.lock:
            doomed = [t for t, a in self.access.items() if a.vendor == vendor]
            for t in doomed:
                del self.access[t]
            return len(doomed)

    def check_access(self, vendor: str, token: str | None) -> float | None | Literal["invalid"]:
        """``None`` if valid, seconds since expiry if expired, ``"invalid"`` if unknown."""
        if not token:
            return "invalid"
        with self.lock:
            found = self.access.get(token)
        if found is None or found.vendor != vendor:
            return "invalid"
        if found.expires_at is None:
            return None
        late = time.time() - found.expires_at
        return late if late >= 0 else None

    def refresh(
        self, vendor: str, client_id: str, client_secret: str, refresh_token: str
    ) -> Issued:
        """OAuth refresh grant; rotates the refresh token when the vendor's config says so."""
        cfg = self.config
        with self.lock:
            if self.clients.get((vendor, client_id)) != client_secret or not client_id:
                raise TokenError("client")
            found = self.refresh_tokens.get(refresh_token)
            if found is None or found.vendor != vendor or found.client_id != client_id:
                if self.retired.get(refresh_token) == vendor:
                    # a rotated-out token presented again: a client lost a race or a write
                    self.refresh_reuse[vendor] = self.refresh_reuse.get(vendor, 0) + 1
                raise TokenError("refresh_token")
            now = time.time()
            if cfg.rotate_refresh_tokens.get(vendor, False):
                del self.refresh_tokens[refresh_token]
                self.retired[refresh_token] = vendor
                return self._issue(vendor, client_id, cfg.token_ttl_s, now)
            access = "C" + secrets.token_urlsafe(48)
            self.access[access] = AccessToken(vendor, now + cfg.token_ttl_s)
            return Issued(access, refresh_token, cfg.token_ttl_s)

    # ---- authorization codes -------------------------------------------------------------

    def client_known(self, vendor: str, client_id: str) -> bool:
        with self.lock:
            return (vendor, client_id) in self.clients

    def client_secret(self, vendor: str, client_id: str) -> str | None:
        with self.lock:
            return self.clients.get((vendor, client_id))

    def client_by_secret(self, vendor: str, client_secret: str) -> str | None:
        """The client whose secret this is (Stripe: a platform is known by its secret key)."""
        with self.lock:
            found = [c for (v, c), s in self.clients.items() if v == vendor and s == client_secret]
        return found[0] if client_secret and len(found) == 1 else None

    def code_scope(self, code: str) -> str | None:
        """The scope an unexchanged code was approved for (None: no such code)."""
        with self.lock:
            found = self.codes.get(code)
        return found.scope if found else None

    def issue_code(
        self, vendor: str, client_id: str, redirect_uri: str, challenge: str | None, scope: str
    ) -> str:
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = AuthCode(
                vendor, client_id, redirect_uri, challenge, scope, time.time() + CODE_TTL_S
            )
        return code

    def exchange_code(
        self,
        vendor: str,
        client_id: str,
        client_secret: str,
        code: str,
        redirect_uri: str | None,
        verifier: str | None,
    ) -> Issued:
        """The authorization-code grant: the code is spent on the first try, right or wrong
        (a replay fails too); the client, its redirect URI and the PKCE verifier must match."""
        with self.lock:
            if self.clients.get((vendor, client_id)) != client_secret or not client_id:
                raise TokenError("client")
            found = self.codes.pop(code, None)
            if not _code_matches(found, vendor, client_id, redirect_uri, verifier):
                raise TokenError("code")
            return self._issue(vendor, client_id, self.config.token_ttl_s, time.time())


def _code_matches(
    found: AuthCode | None, vendor: str, client_id: str, redirect_uri: str | None,
    verifier: str | None,
) -> bool:  # fmt: skip
    if found is None or found.vendor != vendor or found.client_id != client_id:
        return False
    if found.expires_at < time.time():
        return False
    if redirect_uri is not None and redirect_uri != found.redirect_uri:
        return False
    if found.challenge is None:
        return True
    return verifier is not None and s256(verifier) == found.challenge


def s256(verifier: str) -> str:
    """RFC 7636 S256."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
