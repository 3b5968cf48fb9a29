"""Fixtures for HTTP API tests: a second tenant, a raw (unauthenticated) session, helpers.

Everything here builds on the session fixtures of tests/conftest.py (real Redis, sandbox,
workers and uvicorn); nothing is mocked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from support import wait_until


@pytest.fixture
def until() -> Callable[..., Any]:
    """``until(predicate, timeout=30)``: poll until truthy, return the value."""
    return wait_until


@pytest.fixture
def other_api(api: Any, api_url: str) -> Any:
    """The same HTTP API seen by a second, unrelated tenant."""
    from app.store.tenants import create_tenant

    return type(api)(api_url, create_tenant("other"))


@pytest.fixture
def anon(api_url: str) -> Iterator[requests.Session]:
    """A session with no credentials at all."""
    with requests.Session() as s:
        yield s


@pytest.fixture
def api_requests(fresh_sandbox: Any) -> Callable[[], list[dict[str, Any]]]:
    """Vendor API calls (token endpoint calls excluded) the sandbox has logged."""

    def calls() -> list[dict[str, Any]]:
        return [e for e in fresh_sandbox.requests() if e.get("kind", "api") == "api"]

    return calls


@pytest.fixture
def live_workers(workers: Any) -> Iterator[Any]:
    """The session's workers, guaranteed running again after the test (tests stop them)."""
    yield workers
    workers.ensure()
