"""The sandbox's own settings: ``TOOLQUEUE_SANDBOX_*`` env vars, read once at start.

They seed the live config (``/_sandbox/config``), which tests and the demo then change at
runtime. The product's ``Settings`` knows none of them: the sandbox is a vendor stand-in.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SandboxSettings(BaseSettings):
    """Start-up knobs of one sandbox process (``TOOLQUEUE_SANDBOX_PORT`` and so on)."""

    model_config = SettingsConfigDict(env_prefix="TOOLQUEUE_SANDBOX_", extra="ignore")

    port: int = Field(8100, description="Vendor sandbox port")
    hubspot_contacts: int = Field(90000, description="Sandbox: HubSpot contacts seeded")
    volume: int = Field(1000, description="Sandbox: records per other collection")
    rate_budget: int = Field(100, description="Sandbox: requests allowed per window")
    rate_window_ms: int = Field(10000, description="Sandbox: rate window in ms")
    token_ttl_s: int = Field(1800, description="Sandbox: access-token lifetime")
    latency_ms: int = Field(0, description="Sandbox: added latency per request")
    error_rate: float = Field(0.0, description="Sandbox: share of requests answered 502/503")
