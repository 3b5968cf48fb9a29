"""Fixtures for connector tests: run a tool's job through the real stack, read what the
sandbox saw of it, and make the accounts some vendors need.

Everything here builds on the session fixtures of tests/conftest.py (real Redis, sandbox,
workers and uvicorn); the tests of a connector alone use tests/fakes.py instead of the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

import pytest
import requests

Job = dict[str, Any]
LogEntry = dict[str, Any]

# Vendors whose token endpoint is on another host than their API (auth.atlassian.com,
# github.com): the sandbox serves it under a path of its own.
TOKEN_PATHS = {"jira": "jira/oauth/token", "github": "github/login/oauth/access_token"}


@pytest.fixture
def run(api: Any) -> Callable[..., Job]:
    """``run(account, tool, args, **body)``: a job of `tool` on `account`, waited for until
    it ends (60 s, or ``timeout=``); returns the ended job."""

    def go(account: str, tool: str, args: dict[str, Any], *, timeout: float = 60,
           **body: Any) -> Job:  # fmt: skip
        job = api.call(tool, account_id=account, args=args, **body)
        return api.wait(job["job_id"], timeout=timeout)

    return go


@pytest.fixture
def run_with_result(api: Any, run: Callable[..., Job]) -> Callable[..., tuple[Job, Job]]:
    """``done, body = run_with_result(account, tool, args, **body)``: ``run``, then the
    ended job's first result block."""

    def go(account: str, tool: str, args: dict[str, Any], **body: Any) -> tuple[Job, Job]:
        done = run(account, tool, args, **body)
        return done, api.result(done["job_id"])

    return go


@pytest.fixture
def record_ids(api: Any) -> Callable[..., list[Any]]:
    """``record_ids(job, field="id")``: that field of every record of an ended job, across
    all of its blocks, in order."""

    def ids(job: Job, field: str = "id") -> list[Any]:
        return [r[field] for r in api.records(job["job_id"])]

    return ids


@pytest.fixture
def api_log(sandbox: Any) -> Callable[..., list[LogEntry]]:
    """``api_log(vendor, path="*")``: the vendor API calls the sandbox logged, oldest first,
    whose path matches the glob `path`; token calls and the tests' own ``/_sandbox/`` control
    calls are not API calls."""

    def log(vendor: str, path: str = "*") -> list[LogEntry]:
        return [
            e
            for e in sandbox.requests(vendor)
            if e["kind"] == "api" and "/_sandbox/" not in e["path"] and fnmatchcase(e["path"], path)
        ]

    return log


@pytest.fixture
def oauth_account(api: Any, sandbox: Any) -> Callable[..., str]:
    """``oauth_account(vendor, **creds)``: ``api.account`` on the sandbox's `vendor`, at the
    sandbox's own token endpoint for vendors whose real one is on another host."""

    def make(vendor: str, **creds: Any) -> str:
        if vendor in TOKEN_PATHS:
            creds = {"token_url": f"{sandbox.url}/{TOKEN_PATHS[vendor]}", **creds}
        return api.account(sandbox, vendor, **creds)

    return make


@pytest.fixture
def bearer_account(api: Any, sandbox: Any) -> Callable[[str, str], str]:
    """``bearer_account(vendor, token)``: an account holding a static `token` the sandbox is
    told to accept (a Stripe key, a HubSpot private-app token); nothing to refresh."""

    def make(vendor: str, token: str) -> str:
        requests.post(f"{sandbox.url}/_sandbox/static-token",
                      json={"vendor": vendor, "token": token}, timeout=5).raise_for_status()
        resp = api.post("/v1/accounts", {
            "vendor": vendor, "name": f"{vendor} static token",
            "base_url": f"{sandbox.url}/{vendor}",
            "credentials": {"type": "bearer", "token": token},
        })  # fmt: skip
        assert resp.status_code == 201, resp.text
        return resp.json()["account_id"]

    return make
