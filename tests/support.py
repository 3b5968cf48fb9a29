"""Helpers shared by the test modules (import from here, not from conftest: every test
directory may have a conftest of its own)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


# Every lane a test worker consumes (app/dispatch/lanes.py; a literal: importing the app here
# would read settings before conftest has set the test environment; test_lane_routing checks it)
LANES = ("interactive", "bulk", "webhooks", "housekeeping")

def scrape(url: str) -> Samples:
    """`GET /metrics` unauthenticated, like a Prometheus scraper, parsed with
    prometheus_client's own parser."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    resp = requests.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A counter's total (`toolqueue_<name>_total`), 0 when it has not been counted yet."""
    return samples.get((f"toolqueue_{name}_total", tuple(sorted(labels.items()))), 0.0)


def statuses(job: dict[str, Any]) -> list[str]:
    """The states a job went through, oldest first (its history)."""
    return [h["status"] for h in job["history"]]


# One atomic look at the gauge of unfinished jobs by state beside a count of the job records
# themselves (every job hash with a status, ARGV[1] the SCAN pattern of job keys), so the two
# can be compared exactly.
_GAUGE_AND_RECORDS = """
local counts, cursor, ended = {}, '0', {}
for i = 2, #ARGV do ended[ARGV[i]] = true end
repeat
  local res = redis.call('SCAN', cursor, 'MATCH', ARGV[1], 'COUNT', 1000)
  cursor = res[1]
  for _, k in ipairs(res[2]) do
    if redis.call('TYPE', k).ok == 'hash' then
      local st = redis.call('HGET', k, 'status')
      if st and not ended[st] then
        counts[st] = (counts[st] or 0) + 1
      end
    end
  end
until cursor == '0'
local out = {}
for st, n in pairs(counts) do out[#out + 1] = st; out[#out + 1] = n end
return {redis.call('HGETALL', KEYS[1]), out}
"""


def job_gauge_and_records(r: Any) -> tuple[dict[str, int], dict[str, int]]:
    """(gauge, records): jobs per unfinished state, as the gauge says and as counted."""
    from app.kernel import keys
    from app.kernel.states import TERMINAL

    ended = sorted(TERMINAL)  # completed_with_errors too: a write some records of which failed
    gauge, counted = r.eval(_GAUGE_AND_RECORDS, 1, keys.JOBS_BY_STATE, keys.job("*"), *ended)
    pairs = [dict(zip(x[::2], map(int, x[1::2]), strict=True)) for x in (gauge, counted)]
    return {k: v for k, v in pairs[0].items() if v}, pairs[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


HOME = Path(tempfile.mkdtemp(prefix="toolqueue-test-"))


def wait_until(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


class Proc:
    """A child process whose output goes to a log file under the test home."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = HOME / "logs" / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = 15, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def kill(self) -> None:
        self.stop(9)


def start_api(
    name: str, port: str, env: dict[str, str] | None = None, ready: str = "/healthz"
) -> tuple[Proc, str]:
    """An API process (uvicorn on loopback, `env` over the session's) and its URL, once
    `ready` answers 200; its log in the raised error if it never does. A process on a Redis
    db of its own has no workers, so /healthz says 503 there: such callers wait on another
    route."""
    import sys

    import requests

    proc = Proc(name, [sys.executable, "-m", "uvicorn", "app.api.main:app", "--host",
                       "127.0.0.1", "--port", port, "--log-level", "warning"],
                env={"TOOLQUEUE_API_PORT": port, **(env or {})})  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(url + ready, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_until(up, 60, 0.2)
    except AssertionError:
        raise AssertionError(proc.log()) from None
    return proc, url


def refresh_grant(
    token_path: str, client: Any, account: dict, refresh_token: str | None = None, **over: str
) -> Any:
    """POST an OAuth refresh grant for a minted sandbox `account` to `token_path`."""
    form = {
        "grant_type": "refresh_token",
        "client_id": account["client_id"],
        "client_secret": account["client_secret"],
        "refresh_token": refresh_token or account["refresh_token"],
        **over,
    }
    return client.post(token_path, data=form)


# ---- worker processes ---------------------------------------------------------------


def proc_stat(pid: int) -> list[str] | None:
    """State, ppid, ... of a process from /proc; None when it is gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """Direct children of `pid` (the worker's prefork pool)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := proc_stat(int(entry.name))) and int(stat[1]) == pid:
            out.append(int(entry.name))
    return out


def gone(pid: int) -> bool:
    stat = proc_stat(pid)
    return stat is None or stat[0] in ("Z", "X")


def kill_worker_tree(proc: Any) -> None:
    """SIGKILL the worker and its pool processes, parent first, so no survivor can requeue
    or finish the step: the lost message comes back only through the broker."""
    pool = children(proc.proc.pid)
    proc.kill()
    for pid in pool:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: all(gone(pid) for pid in pool), 5)


def live(workers: Any) -> list[Any]:
    return [p for p in workers.procs if p.proc.poll() is None]


def answers_ping(proc: Any) -> bool:
    import redis
    from kombu.exceptions import OperationalError

    from app.celery import app

    try:
        return bool(app.control.ping(destination=[f"{proc.name}@{socket.gethostname()}"],
                                     timeout=0.5))
    except (redis.ConnectionError, OperationalError):
        return False


def refresh_broker_connections() -> None:
    """After a Redis restart this process's pooled broker connections are dead, and the
    workers fixture's ping does not retry: cycle them until a broadcast goes through."""
    import redis
    from kombu.exceptions import OperationalError

    from app.celery import app

    def ok() -> bool:
        try:
            app.control.ping(timeout=0.1)
        except (redis.ConnectionError, OperationalError):
            return False
        return True

    wait_until(ok, 10, 0.1)
