"""What every benchmark here starts, waits for and tears down, written once.

Each benchmark runs against its own throwaway stack (a LocalRedis, and as it needs the
sandbox, the API and Celery workers) on free loopback ports with a fresh home, so
``make bench`` needs nothing running and never touches a developer's data. The leading
underscore keeps ``make bench`` from running this file as a benchmark; a benchmark run as
``python bench/<name>.py`` has this folder on ``sys.path`` and imports it as ``_harness``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
ALL_LANES = ("interactive", "bulk", "webhooks", "housekeeping")  # app/dispatch/lanes.py
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `app`, `tasks`, `sandbox` import from the repo root

Proc = subprocess.Popen[Any]
LOG_MAX = 200_000  # sandbox.state.LOG_MAX: a log this long may have lost its oldest calls


def port() -> int:
    """A free loopback port: the OS picks it, so parallel runs and dev stacks never collide."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: Sequence[float], q: float, *, upper: bool = False) -> float:
    """The ``q`` quantile (0..1) as one of the samples, no interpolation: the sample at
    rank round(q * (n - 1)), or with ``upper`` at int(q * n) (what enqueue.py reports)."""
    ordered = sorted(values)
    rank = int(q * len(ordered)) if upper else round(q * (len(ordered) - 1))
    return ordered[min(len(ordered) - 1, rank)]


def wait_until(pred: Callable[[], object], timeout: float = 60.0, interval: float = 0.1) -> None:
    """Poll ``pred`` until it is true; a benchmark must fail, not hang, when something is off."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"bench: timed out after {timeout:g} s")
        time.sleep(interval)


def wait_http(url: str, timeout: float = 60.0) -> None:
    """Wait until ``url`` answers below 500: a starting server refuses connections first."""
    import requests

    def up() -> bool:
        try:
            return requests.get(url, timeout=1).status_code < 500
        except requests.RequestException:
            return False

    try:
        wait_until(up, timeout)
    except TimeoutError:
        raise RuntimeError(f"{url} did not come up") from None


def stop(procs: Iterable[Proc], timeout: float = 20.0) -> None:
    """SIGTERM every process first (they shut down in parallel), SIGKILL what outlives it."""
    procs = list(procs)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def env(
    home: Path, redis_port: int, *, log_level: str | None = "WARNING", **settings: object
) -> dict[str, str]:
    """The TOOLQUEUE_* variables of a throwaway stack: its home and Redis, a fresh secret key
    (nothing encrypted by an earlier run is read), the log level (None: the default) and
    ``settings`` as TOOLQUEUE_<NAME> (``sandbox_port=1`` gives TOOLQUEUE_SANDBOX_PORT=1)."""
    from cryptography.fernet import Fernet

    out = {
        "TOOLQUEUE_HOME": str(home),
        "TOOLQUEUE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "TOOLQUEUE_SECRET_KEY": Fernet.generate_key().decode(),
    }
    if log_level:
        out["TOOLQUEUE_LOG_LEVEL"] = log_level
    out.update({f"TOOLQUEUE_{k.upper()}": str(v) for k, v in settings.items()})
    return out


def tenant_account(
    vendor: str, base_url: str, credentials: dict[str, Any], tenant: str = "bench", **opts: Any
) -> tuple[dict[str, Any], str]:
    """A tenant (``opts`` go to ``create_tenant``) and one ``vendor`` account named "bench"
    on it: (the tenant with its ``api_key``, the account id), what any job needs."""
    from app.store.accounts import AccountCreate, create_account
    from app.store.tenants import create_tenant

    created = create_tenant(tenant, **opts)
    spec = {"vendor": vendor, "name": "bench", "base_url": base_url, "credentials": credentials}
    account = create_account(created["tenant_id"], AccountCreate.model_validate(spec))
    return created, account["account_id"]


class Sandbox:
    """The sandbox's admin endpoints (``/_sandbox/...``): setup and the upstream ground truth."""

    def __init__(self, base: str) -> None:
        import requests

        self.base = base
        self.http = requests.Session()

    def configure(self, **changes: Any) -> None:
        self.http.post(f"{self.base}/_sandbox/config", json=changes, timeout=5).raise_for_status()

    def reset(self, vendor: str, token: str, settle_s: float) -> None:
        """Fresh log, windows and tokens, ``token`` registered again; then wait ``settle_s``
        so calls made before the reset no longer count in any rolling window."""
        self.http.post(f"{self.base}/_sandbox/reset", timeout=5).raise_for_status()
        self.http.post(
            f"{self.base}/_sandbox/static-token", json={"vendor": vendor, "token": token}, timeout=5
        ).raise_for_status()
        time.sleep(settle_s)

    def mint(self, vendor: str, **fields: Any) -> dict[str, Any]:
        """A fresh OAuth token pair for ``vendor`` (client ``c`` / secret ``s``)."""
        body = {"vendor": vendor, "client_id": "c", "client_secret": "s", **fields}
        resp = self.http.post(f"{self.base}/_sandbox/tokens", json=body, timeout=5)
        resp.raise_for_status()
        return resp.json()

    def stats(self) -> dict[str, Any]:
        """The sandbox's counters since the last reset."""
        resp = self.http.get(f"{self.base}/_sandbox/stats", timeout=5)
        resp.raise_for_status()
        return resp.json()

    def calls(self, since: float, vendor: str, path: str) -> list[dict[str, Any]]:
        """Logged API calls to ``path`` from wall-clock ``since`` on, as the vendor saw them."""
        resp = self.http.get(
            f"{self.base}/_sandbox/requests", params={"since": since, "vendor": vendor}, timeout=30
        )
        resp.raise_for_status()
        entries = resp.json()
        if len(entries) >= LOG_MAX:
            print(f"  WARNING: sandbox log full ({LOG_MAX}); oldest calls may be missing")
        return [e for e in entries if e["path"] == path and e["kind"] == "api"]


class Stack:
    """A running throwaway stack; every process started through it is stopped with it."""

    def __init__(self, home: Path, child_env: dict[str, str], log: IO[bytes] | None) -> None:
        self.home, self.env, self.log = home, child_env, log
        self.procs: list[Proc] = []
        self.workers: list[Proc] = []  # the ones ``stack(workers=...)`` started
        self.sandbox_url = self.api_url = ""
        self._sandbox: Sandbox | None = None

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            raise RuntimeError("the stack was started without sandbox=True")
        return self._sandbox

    def spawn(self, argv: Sequence[str], **popen: Any) -> Proc:
        """``python <argv>`` from the repo root with the stack's env, output to its log."""
        kwargs: dict[str, Any] = {"stdout": self.log, "stderr": self.log, **popen}
        proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=self.env, **kwargs)
        self.procs.append(proc)
        return proc

    def start_workers(self, flag_sets: Iterable[Sequence[str]], wait: bool = True) -> list[Proc]:
        """One Celery worker per flag set (``("-P", "solo")``); with ``wait``, returns once
        every one answers a ping, so start-up is never part of a measurement."""
        procs = [
            self.spawn(["-m", "celery", "-A", "app.celery", "worker", *flags,
                        "--loglevel=WARNING", "--without-mingle", "--without-gossip",
                        *(() if "-Q" in flags else ("-Q", ",".join(ALL_LANES)))])
            for flags in flag_sets
        ]  # fmt: skip
        if wait:
            self.await_workers(procs)
        return procs

    def await_workers(self, procs: Sequence[Proc], timeout: float = 60.0) -> None:
        """Block until ``procs`` answer a ping (fail fast if one of them died)."""
        from app.celery import app as celery_app

        deadline = time.monotonic() + timeout
        while len(celery_app.control.ping(timeout=0.5) or []) < len(procs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(f"workers did not come up; see {self.home / 'bench.log'}")


@contextlib.contextmanager
def stack(
    prefix: str = "tq-bench-",
    *,
    sandbox: bool = False,
    api: bool = False,
    workers: Sequence[Sequence[str]] = (),
    beat: bool = False,
    log: bool = True,
    log_level: str | None = "WARNING",
    **settings: object,
) -> Iterator[Stack]:
    """Start LocalRedis (and the sandbox, the API, ``workers``: see ``Stack.start_workers``,
    and ``beat``) on free ports, set this process's env to match (``app`` reads it on import:
    import it inside the block), yield, then stop everything even on error. The home is
    removed after a clean run and kept for its logs (``bench.log``; ``log=False`` sends child
    output to this terminal) after a failed one."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    redis_port, sandbox_port, api_port = port(), port(), port()
    if sandbox:
        settings["sandbox_port"] = sandbox_port
    if api:
        settings["api_port"] = api_port
    os.environ.update(env(home, redis_port, log_level=log_level, **settings))
    from app.cli.localredis import LocalRedis

    log_file = open(home / "bench.log", "ab") if log else None  # noqa: SIM115
    st = Stack(home, {**os.environ, "PYTHONUNBUFFERED": "1"}, log_file)
    ok = False
    try:
        with LocalRedis(redis_port, home / "redis"):
            try:
                if sandbox:
                    st.sandbox_url = f"http://127.0.0.1:{sandbox_port}"
                    st._sandbox = Sandbox(st.sandbox_url)
                    st.spawn(["-m", "sandbox"])
                if api:
                    st.api_url = f"http://127.0.0.1:{api_port}"
                    st.spawn(["-m", "uvicorn", "app.api.main:app", "--host", "127.0.0.1",
                              "--port", str(api_port), "--log-level", "warning"])  # fmt: skip
                if workers:
                    st.workers = st.start_workers(workers, wait=False)
                if beat:  # the sweeps of pending work run inside beat (app/dispatch/beat.py)
                    st.spawn(["-m", "celery", "-A", "app.celery", "beat", "--loglevel=WARNING",
                              "-s", str(home / "celerybeat-schedule")])  # fmt: skip
                if sandbox:
                    wait_http(f"{st.sandbox_url}/healthz")
                if api:
                    wait_http(f"{st.api_url}/openapi.json")
                if st.workers:
                    st.await_workers(st.workers)
                yield st
                ok = True
            finally:
                stop(st.procs)
                if log_file:
                    log_file.close()
    finally:
        if ok:
            shutil.rmtree(home, ignore_errors=True)
        else:
            print(f"logs kept in {home}", file=sys.stderr)
