"""Webhook delivery: latency from a job's end to the receiver's 2xx, and throughput.

Standalone: its own Redis, the sandbox, one Celery worker (prefork, 4 processes) and a
loopback receiver (HTTP/1.1 keep-alive, answers 204 at once).

1. Latency. 200 small jobs (10 HubSpot contacts, one page) with a `callback_url`, one at a
   time (each waits for its webhook, so this is delivery on a quiet system, not queueing).
   Latency = receiver's 2xx (wall clock, just before it answers) - the job's `finished_at`
   (written by the last step). Target p50 <= 50 ms.
2. Throughput. The worker is stopped, 1,000 delivery tasks are queued (5 redeliveries of
   each job above), a fresh worker starts; rate = 999 / (last arrival - first arrival), so
   worker start-up is not counted.

    .venv/bin/python bench/webhooks.py [JOBS] [EVENTS]
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Records (webhook-id, wall time of its 2xx) per request."""

    def __init__(self) -> None:
        self.hits: list[tuple[str, float]] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the worker's pooled session reuses it

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", 0)))
                hits.append((self.headers.get("webhook-id", ""), time.time()))
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _wait(pred: Any, timeout: float = 60.0, interval: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError("bench: timed out")
        time.sleep(interval)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(jobs: int = 200, events: int = 1000) -> None:
    home = Path(tempfile.mkdtemp(prefix="tq-bench-"))
    redis_port, sandbox_port = _port(), _port()
    from cryptography.fernet import Fernet

    os.environ.update(
        {
            "TOOLQUEUE_HOME": str(home),
            "TOOLQUEUE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "TOOLQUEUE_SANDBOX_PORT": str(sandbox_port),
            "TOOLQUEUE_SANDBOX_HUBSPOT_CONTACTS": "1000",
            "TOOLQUEUE_SANDBOX_RATE_BUDGET": "100000000",
            "TOOLQUEUE_SECRET_KEY": Fernet.generate_key().decode(),
            "TOOLQUEUE_LOG_LEVEL": "WARNING",
        }
    )
    import requests

    from app.accounts import AccountCreate, create_account
    from app.jobs import JobCreate, enqueue
    from app.jobstore import load
    from app.localredis import LocalRedis
    from app.tenants import create_tenant
    from tasks.webhooks import deliver

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(home / "bench.log", "ab")  # noqa: SIM115

    def worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "app.celery",
                "worker",
                "--concurrency=4",
                "--loglevel=WARNING",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )

    rec = Receiver()
    with LocalRedis(redis_port, home / "redis"):
        sandbox = subprocess.Popen(
            [sys.executable, "-m", "sandbox"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        procs = [sandbox, worker()]
        try:
            base = f"http://127.0.0.1:{sandbox_port}"
            _wait(lambda: _ok(requests, f"{base}/healthz"), 30, 0.1)
            token = requests.post(
                f"{base}/_sandbox/tokens",
                json={
                    "vendor": "hubspot",
                    "client_id": "c",
                    "client_secret": "s",
                    "expires_in": 86400,
                },
                timeout=5,
            ).json()["access_token"]
            tenant = create_tenant("bench")["tenant_id"]
            account = create_account(
                tenant,
                AccountCreate.model_validate(
                    {
                        "vendor": "hubspot",
                        "name": "bench",
                        "base_url": f"{base}/hubspot",
                        "credentials": {"type": "bearer", "token": token},
                    }
                ),
            )["account_id"]
            req = JobCreate.model_validate(
                {
                    "tool": "hubspot.contacts.list",
                    "account_id": account,
                    "args": {"limit": 10},
                    "fields": ["id"],
                    "callback_url": rec.url,
                }
            )

            latencies, ids = [], []
            for i in range(jobs + 10):  # the first 10 warm every worker process up
                job_id = enqueue(tenant, req)["job_id"]
                _wait(lambda n=len(rec.hits): len(rec.hits) > n)
                hit_id, at = rec.hits[-1]
                assert hit_id == f"msg_{job_id}", (hit_id, job_id)
                if i >= 10:
                    latencies.append((at - load(job_id)["finished_at"]) * 1000)
                    ids.append(job_id)

            procs[1].terminate()
            procs[1].wait(30)
            t0 = time.perf_counter()
            for i in range(events):
                deliver.apply_async(args=[ids[i % len(ids)], 1, "redeliver"])
            queued_s = time.perf_counter() - t0
            before = len(rec.hits)
            procs.append(worker())
            _wait(lambda: len(rec.hits) >= before + events, 300, 0.01)
            burst = rec.hits[before:]
            rate = (len(burst) - 1) / (burst[-1][1] - burst[0][1])
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(30)

    print(f"webhook delivery, loopback receiver, 1 worker x 4 processes ({os.cpu_count()} CPUs):")
    print(f"  end-of-job -> receiver 2xx over {len(latencies)} jobs, one at a time:")
    print(
        f"    p50 {statistics.median(latencies):.1f} ms   p90 {_pct(latencies, 0.9):.1f} ms"
        f"   p99 {_pct(latencies, 0.99):.1f} ms   max {max(latencies):.1f} ms"
        f"   (target p50 <= 50 ms: {'met' if statistics.median(latencies) <= 50 else 'MISSED'})"
    )
    print(f"  {events} queued events (queued in {queued_s:.2f} s, worker then started):")
    print(f"    {rate:.0f} deliveries/s (first to last arrival)")


def _ok(requests: Any, url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
