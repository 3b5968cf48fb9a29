"""Enqueue latency: raw Celery `apply_async` vs toolqueue in-process enqueue vs HTTP POST.

All three measured in one run against one real Redis on loopback (no worker runs, so the
queue only grows; it is a throwaway Redis). Targets: in-process ≤ 1.3× raw, HTTP ≤ 5× raw.

    .venv/bin/python bench/enqueue.py [N]
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main(n: int = 2000) -> None:
    home = Path(tempfile.mkdtemp(prefix="tq-bench-"))
    redis_port, api_port = _port(), _port()
    os.environ.update(
        {
            "TOOLQUEUE_HOME": str(home),
            "TOOLQUEUE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "TOOLQUEUE_API_PORT": str(api_port),
        }
    )
    from cryptography.fernet import Fernet

    os.environ["TOOLQUEUE_SECRET_KEY"] = Fernet.generate_key().decode()

    import requests

    from app.accounts import AccountCreate, create_account
    from app.jobs import JobCreate, enqueue
    from app.localredis import LocalRedis
    from app.tenants import create_tenant
    from tasks.steps import run_step

    with LocalRedis(redis_port, home / "redis"):
        tenant = create_tenant("bench")
        account = create_account(
            tenant["tenant_id"],
            AccountCreate.model_validate(
                {
                    "vendor": "hubspot",
                    "name": "bench",
                    "base_url": "http://127.0.0.1:9/hubspot",
                    "credentials": {"type": "bearer", "token": "t"},
                }
            ),
        )["account_id"]
        req = {
            "tool": "hubspot.contacts.list",
            "account_id": account,
            "args": {"limit": 100},
            "fields": ["id", "properties.email"],
        }

        def raw() -> None:
            job_id = str(uuid.uuid4())
            run_step.apply_async(args=[job_id, 0], task_id=job_id)

        def inproc() -> None:
            enqueue(tenant["tenant_id"], JobCreate.model_validate(req))

        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "app.api.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=os.environ.copy(),
        )
        try:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {tenant['api_key']}"
            url = f"http://127.0.0.1:{api_port}/v1/jobs"
            deadline = time.monotonic() + 30
            while True:
                try:
                    session.get(f"http://127.0.0.1:{api_port}/openapi.json", timeout=1)
                    break
                except requests.RequestException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

            def http() -> None:
                resp = session.post(url, json=req, timeout=5)
                assert resp.status_code == 202, resp.text

            results = {}
            for fn in (raw, inproc, http):
                for _ in range(200):  # warm-up: connections, script cache, imports
                    fn()
            # Interleave rounds so drift (GC, Redis memory growth) hits all three alike.
            samples: dict[str, list[float]] = {"raw": [], "inproc": [], "http": []}
            for _ in range(n // 100):
                for name, fn in (("raw", raw), ("inproc", inproc), ("http", http)):
                    for _ in range(100):
                        t0 = time.perf_counter()
                        fn()
                        samples[name].append(time.perf_counter() - t0)
            for name, s in samples.items():
                results[name] = (_pct(s, 0.5), _pct(s, 0.99), statistics.fmean(s) * 1000)
        finally:
            api.terminate()
            api.wait(10)

    print(f"enqueue latency over {n} calls each (ms):")
    print(f"{'':24}{'p50':>8}{'p99':>8}{'mean':>8}")
    labels = {
        "raw": "raw Celery apply_async",
        "inproc": "toolqueue in-process",
        "http": "HTTP POST /v1/jobs",
    }
    for name, (p50, p99, mean) in results.items():
        print(f"{labels[name]:24}{p50:8.3f}{p99:8.3f}{mean:8.3f}")
    base = results["raw"]
    for name, target in (("inproc", 1.3), ("http", 5.0)):
        p50, p99 = results[name][0] / base[0], results[name][1] / base[1]
        print(f"{labels[name]} / raw: p50 {p50:.2f}x, p99 {p99:.2f}x (target <= {target}x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)
