"""Fixtures for sandbox tests: a fresh app per test, and account minting via the admin API."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import uvicorn
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


@dataclass
class LiveSandbox:
    """A sandbox served by uvicorn on loopback, so dropped answers are real cut connections."""

    url: str

    def config(self, **changes: Any) -> dict[str, Any]:
        resp = requests.post(f"{self.url}/_sandbox/config", json=changes, timeout=5)
        assert resp.status_code == 200, resp.text
        return resp.json()

    def effects(self, vendor: str) -> list[dict[str, Any]]:
        resp = requests.get(f"{self.url}/{vendor}/_sandbox/effects", timeout=5)
        assert resp.status_code == 200, resp.text
        effects: list[dict[str, Any]] = resp.json()["effects"]
        return effects


@pytest.fixture
def live_sandbox() -> Iterator[LiveSandbox]:
    """A fresh sandbox app under uvicorn in a thread, on a free loopback port."""
    defaults = {n: f.default for n, f in SandboxSettings.model_fields.items()}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # "critical": the server's one-line error for each deliberately unfinished answer stays quiet
    server = uvicorn.Server(
        uvicorn.Config(create_app(SandboxSettings(**defaults)), log_level="critical")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "sandbox did not start"
        time.sleep(0.01)
    yield LiveSandbox(f"http://127.0.0.1:{sock.getsockname()[1]}")
    server.should_exit = True
    thread.join(10)
    sock.close()
