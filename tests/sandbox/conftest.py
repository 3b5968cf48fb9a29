"""Fixtures for sandbox tests: a fresh app per test, and account minting via the admin API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sandbox.app import create_app
from sandbox.settings import SandboxSettings


@pytest.fixture
def make_client() -> Callable[..., TestClient]:
    """``make_client(hubspot_contacts=250, rate_budget=3)`` → client of a new sandbox.

    Unlisted knobs take the field defaults, not ``TOOLQUEUE_SANDBOX_*`` from the environment
    (tests/conftest.py exports some for the integration stack).
    """
    defaults = {n: f.default for n, f in SandboxSettings.model_fields.items()}

    def make(**sandbox: Any) -> TestClient:
        return TestClient(create_app(SandboxSettings(**{**defaults, **sandbox})))

    return make


@pytest.fixture
def mint() -> Callable[..., dict[str, Any]]:
    """Create a HubSpot account on ``client``; returns the token pair plus client credentials."""

    def do(client: TestClient, vendor: str = "hubspot", **extra: Any) -> dict[str, Any]:
        creds = {"client_id": "cid-1", "client_secret": "secret-1"}
        resp = client.post("/_sandbox/tokens", json={"vendor": vendor, **creds, **extra})
        assert resp.status_code == 200, resp.text
        return {**resp.json(), **creds}

    return do
