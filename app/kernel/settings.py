"""The one settings class. Every knob is an env var with the ``TOOLQUEUE_`` prefix."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRET_FIELDS = ("secret_key", "flower_password")


class Settings(BaseSettings):
    """Effective configuration; unset secrets get generated local defaults under ``home``."""

    model_config = SettingsConfigDict(env_prefix="TOOLQUEUE_", extra="ignore")

    redis_url: str | None = Field(
        None, description="Redis for broker, backend, jobs, spool and locks; unset: local Redis"
    )
    connectors_dir: Path | None = Field(
        None, description="Extra declarative connector specs (*.json, *.yaml) to load"
    )
    home: Path = Field(Path(".toolqueue"), description="Data dir: local Redis AOF, keys, logs")
    local_redis_port: int = Field(6390, description="Port of the local Redis `toolqueue up` starts")
    api_host: str = Field("127.0.0.1", description="Interface the HTTP API binds")
    api_port: int = Field(8000, description="HTTP API port")
    api_workers: int = Field(
        default_factory=lambda: min(8, 2 * (os.cpu_count() or 1)),
        ge=1,
        description="uvicorn processes of the API (`toolqueue up`, docker-compose); default two "
        "per CPU, at most 8: a request spends much of its time waiting on Redis, so on 2 "
        "cores 4 processes enqueue the most (bench/fairness.py)",
    )
    flower_port: int = Field(5555, description="Flower port")
    flower_user: str = Field("admin", description="Flower basic-auth user")
    flower_password: SecretStr | None = Field(
        None, description="Flower basic-auth password; unset: generated under home"
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Fernet key(s), comma-separated, first one writes; unset: generated under home",
    )

    spool_max_bytes: int = Field(131072, description="Cap of every result body, in bytes")
    spool_ttl_s: int = Field(86400, description="Seconds a job's spool and record live")
    continuation_ttl_s: int = Field(7 * 86400, description="Seconds a continuation stays usable")
    block_limit: int = Field(1024, description="Max blocks of an export-mode (`blocks`) job")
    pipeline_guard_s: float = Field(
        5.0,
        gt=0,
        description="A running pipeline's coordinator looks at its stages at least this often "
        "(stage jobs also wake it as they commit)",
    )
    pipeline_job_records: int = Field(
        1000, ge=1, description="Most records one pipeline stage job (an enrich, a sink) takes"
    )
    pages_per_step: int = Field(200, description="Most pages a step fetches before handing over")
    step_budget_s: float = Field(
        10.0, description="A step hands over after this long, so jobs share workers fairly"
    )
    step_time_limit_s: int = Field(60, description="Soft time limit of one step")
    visibility_timeout_s: int = Field(
        300, description="Broker visibility timeout: a lost message is redelivered after it"
    )
    restore_interval_s: float = Field(
        10.0, description="How often a worker sweeps for unacked messages of dead workers"
    )
    http_timeout_s: float = Field(30.0, description="Timeout of one vendor request")
    max_request_bytes: int = Field(1_048_576, description="Largest accepted API request body")
    max_json_depth: int = Field(
        32, ge=2, le=512, description="Most nested objects and arrays in a JSON request body"
    )
    api_rate_limit: int = Field(
        1000, ge=0, description="API requests per tenant per api_rate_window_s (the burst); 0: off"
    )
    api_rate_window_s: float = Field(
        1.0, gt=0, description="Window of api_rate_limit in seconds; tenants may override both"
    )

    webhook_timeout_s: float = Field(15.0, description="Timeout of one webhook attempt")
    webhook_retry_schedule_s: list[float] = Field(
        [0, 5, 300, 1800, 7200, 18000, 36000, 36000],
        min_length=1,
        description="Delays of successive webhook attempts (JSON list); long ones are parked",
    )
    webhook_secret_overlap_s: float = Field(
        86400.0, ge=0, description="After a secret rotation, the old one also signs this long"
    )
    bulk_after_pages: int = Field(
        5,
        ge=1,
        description="A job moves to the bulk lane after this many pages (app/dispatch/lanes)",
    )
    bulk_after_s: float = Field(
        2.0, gt=0, description="A job moves to the bulk lane after this long since its first step"
    )
    bulk_step_budget_s: float = Field(
        1.0,
        gt=0,
        description="A bulk step hands over after this long: a running step is never "
        "interrupted, so shorter steps let a tenant that just arrived have its turn sooner",
    )
    bulk_weight: float = Field(
        1.0,
        gt=0,
        le=1000,
        description="A tenant's share of the bulk lane (a tenant's `bulk_weight` overrides)",
    )
    bulk_tenant_concurrency: int = Field(
        0,
        ge=0,
        description="Bulk steps one tenant may run at once (0: no limit; a tenant's "
        "`bulk_concurrency` overrides)",
    )
    bulk_wait_guard_s: float = Field(
        30.0,
        gt=0,
        description="A bulk step waiting this long for its turn is offered again with a turn "
        "of its own (its turn may have been lost with a killed worker)",
    )
    dispatch_grace_s: float = Field(
        15.0,
        gt=0,
        description="A task (job step, webhook attempt) that has not started this long after "
        "it was due is sent again: its message was lost or its worker died",
    )
    step_lease_s: float = Field(
        10.0,
        gt=0,
        description="Lease of a running step, renewed every third of it: a step whose worker "
        "died is sent again about this long after",
    )
    vendor_wait_max_s: float = Field(
        86400.0,
        gt=0,
        description="Total time a job may wait on a vendor's async job (an export, a bulk "
        "query) before it fails with vendor_timeout",
    )
    vendor_webhook_fallback_s: float = Field(
        300.0,
        gt=0,
        description="An async vendor job whose end a webhook announces is polled after this "
        "long anyway, should the webhook never come (accounts may override it)",
    )
    salesforce_bulk_threshold: int = Field(
        2000,
        ge=1,
        description="salesforce.records.upsert: a job of more records than this goes through "
        "Bulk API 2.0 ingest instead of sObject Collections (a call's `bulk_threshold` wins)",
    )
    public_url: str | None = Field(
        None,
        description="The API's public base URL (as vendors and MCP clients call it), for "
        "signatures over the URL (HubSpot v3) and as the OAuth issuer of /mcp; default: the URL "
        "of the request as received (the issuer: the local API on loopback)",
    )
    oauth_access_ttl_s: int = Field(
        3600, ge=60, description="Lifetime of an MCP OAuth access token (seconds)"
    )
    oauth_refresh_ttl_s: int = Field(
        30 * 86400,
        ge=3600,
        description="Lifetime of an MCP OAuth refresh token (rotated on every use) and of an "
        "unused client registration (seconds)",
    )
    oauth_code_ttl_s: int = Field(
        600, ge=30, description="Lifetime of an MCP OAuth sign-in request and its code (seconds)"
    )
    oauth_unused_client_ttl_s: int = Field(
        86400,
        ge=600,
        description="A client registration no sign-in has used yet expires after this long "
        "(seconds); its first token exchange keeps it oauth_refresh_ttl_s from each use",
    )
    oauth_max_clients: int = Field(
        20000,
        ge=1,
        description="Most client registrations kept at once (expired ones leave); past it "
        "/register answers 503 until one expires",
    )
    oauth_register_rate_limit: int = Field(
        20, ge=0, description="Client registrations (/register) per client IP per window; 0: off"
    )
    oauth_register_rate_window_s: float = Field(
        3600.0, gt=0, description="Window of oauth_register_rate_limit in seconds"
    )
    oauth_token_rate_limit: int = Field(
        60, ge=0, description="/token requests per client_id per window; 0: off"
    )
    oauth_token_rate_window_s: float = Field(
        60.0, gt=0, description="Window of oauth_token_rate_limit in seconds"
    )
    oauth_signin_rate_limit: int = Field(
        10,
        ge=0,
        description="Failed sign-ins (an API key that is no key) per client IP per window on "
        "the MCP sign-in page; 0: off",
    )
    oauth_signin_rate_window_s: float = Field(
        60.0, gt=0, description="Window of oauth_signin_rate_limit in seconds"
    )
    connect_session_ttl_s: float = Field(
        600.0,
        gt=0,
        le=86400,
        description="A connect session's link (and its vendor round trip) works this long",
    )
    reauth_timeout_s: float = Field(
        7 * 86400.0,
        gt=0,
        description="A job parked in needs_reauth fails (reauth_timeout) after this long",
    )
    approval_timeout_s: float = Field(
        86400.0,
        gt=0,
        description="A job awaiting approval is cancelled (approval_expired) after this long",
    )
    audit_retention_s: float = Field(
        90 * 86400.0, gt=0, description="How long audit log entries are kept (default 90 days)"
    )
    reauth_sweep_every_s: float = Field(
        60.0, gt=0, description="Beat: how often parked needs_reauth jobs are checked for expiry"
    )
    outbound_allow_networks: list[str] = Field(
        ["127.0.0.0/8", "::1/128"],
        description="Private networks callback and base URLs may resolve into (JSON list)",
    )
    token_hosts_allow: list[str] = Field(
        [],
        description="Hosts besides the vendor's token host and the account's base_url host "
        "that an account's token_url (which receives its client secret) may name (JSON list; "
        "`*.example.com` covers subdomains)",
    )
    retry_max_attempts: int = Field(
        6, description="Consecutive retries of transient vendor failures (5xx, timeouts)"
    )
    retry_max_wait_s: float = Field(
        900.0, gt=0, description="Total backoff a job may spend on transient-failure retries"
    )
    retry_backoff_base_s: float = Field(1.0, description="First transient-retry backoff ceiling")
    retry_backoff_cap_s: float = Field(60.0, description="Largest transient-retry backoff")
    rate_limit_max_wait_s: float = Field(
        93600.0,
        description="Total time a job may spend waiting on vendor refusals (a daily quota's wait "
        "to midnight fits, on a 25-hour day too)",
    )
    token_refresh_buffer_s: float = Field(
        30.0, description="Refresh an access token this long (plus 0–30 s jitter) before expiry"
    )
    token_refresh_every_s: float = Field(
        30.0, gt=0, description="Beat: how often tokens near expiry are refreshed ahead of use"
    )
    token_refresh_horizon_s: float = Field(
        120.0, ge=0, description="Beat: refresh tokens that expire within this long"
    )
    token_refresh_timeout_s: float = Field(
        15.0, gt=0, description="Timeout of one token-endpoint call; the refresh lock outlives it"
    )
    token_default_lifetime_s: float = Field(
        7200.0, gt=0, description="Access-token lifetime assumed when a grant has no expires_in"
    )

    log_level: str = Field("INFO", description="Log level of every process")

    @field_validator("outbound_allow_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for net in value:
            ipaddress.ip_network(net, strict=False)
        return value

    @field_validator("token_hosts_allow")
    @classmethod
    def _token_hosts(cls, value: list[str]) -> list[str]:
        out = [h.strip().lower().strip("[]") for h in value]
        for host in out:
            if not re.fullmatch(r"(\*\.)?[a-z0-9._-]+|[0-9a-f:.]+", host):
                raise ValueError(
                    f"token_hosts_allow: {host!r} is not a host name (no scheme, "
                    "port or path; `*.example.com` for subdomains)"
                )
        return out

    @field_validator("spool_max_bytes")
    @classmethod
    def _cap(cls, value: int) -> int:
        if not 4096 <= value <= 131072:
            raise ValueError("spool_max_bytes must be between 4096 and 131072")
        return value

    @model_validator(mode="after")
    def _limits(self) -> Settings:
        if self.step_budget_s >= self.step_time_limit_s:
            raise ValueError("step_budget_s must be below step_time_limit_s")
        if any(d < 0 for d in self.webhook_retry_schedule_s):
            raise ValueError("webhook_retry_schedule_s delays must be 0 or more")
        if self.step_time_limit_s + 4 >= self.visibility_timeout_s:
            raise ValueError(
                "step_time_limit_s + 4 must stay below visibility_timeout_s, or a running "
                "step would be redelivered to a second worker"
            )
        return self

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.local_redis_port}/0"

    @property
    def issuer_url(self) -> str:
        """toolqueue's own base URL as MCP clients reach it: the OAuth issuer, and the origin of
        the `/mcp` resource. `public_url` when set; else the local API (a wildcard bind is
        reached on loopback)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host
        return f"http://{host}:{self.api_port}"

    @property
    def uses_local_redis(self) -> bool:
        return self.redis_url is None

    def fernet_keys(self) -> list[bytes]:
        """Keys for MultiFernet: the first encrypts, all decrypt (rotation)."""
        raw = (
            self.secret_key.get_secret_value()
            if self.secret_key
            else _local_secret(self.home, "secret.key", lambda: Fernet.generate_key().decode())
        )
        return [k.strip().encode() for k in raw.split(",") if k.strip()]

    def flower_basic_auth(self) -> str:
        pw = (
            self.flower_password.get_secret_value()
            if self.flower_password
            else _local_secret(self.home, "flower.password", lambda: secrets.token_urlsafe(12))
        )
        return f"{self.flower_user}:{pw}"

    def public(self) -> dict[str, object]:
        """Effective settings as JSON-able values, secrets masked."""
        out: dict[str, object] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                value = "********" if value else "(generated under home)"
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        out["effective_redis_url"] = _mask_url(self.effective_redis_url)
        if self.redis_url:
            out["redis_url"] = _mask_url(self.redis_url)
        return out


def _mask_url(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username or ''}:********@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _local_secret(home: Path, name: str, make: Callable[[], str]) -> str:
    """Read or create a secret file (mode 0600) under the data dir; race-safe across processes."""
    path = home / name
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / f".{name}.{os.getpid()}.tmp"
    tmp.write_text(make())
    tmp.chmod(0o600)
    try:
        os.link(tmp, path)  # atomic: the first writer wins, the others read its value
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
