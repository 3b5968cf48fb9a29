"""Enqueue latency: raw Celery `apply_async` vs toolqueue in-process enqueue vs HTTP POST.

All three measured in one run against one real Redis on loopback (no worker runs, so the
queue only grows; it is a throwaway Redis). Targets: in-process ≤ 1.3× raw, HTTP ≤ 5× raw.

    .venv/bin/python bench/enqueue.py [N]
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid

import _harness as h


def main(n: int = 2000) -> None:
    # No worker runs; the API's output goes to this terminal; toolqueue's default log level.
    with h.stack(api=True, log=False, log_level=None) as st:
        import requests

        from app.services.jobs import JobCreate, enqueue
        from tasks.steps import run_step

        tenant, account = h.tenant_account(
            "hubspot", "http://127.0.0.1:9/hubspot", {"type": "bearer", "token": "t"}
        )
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

        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {tenant['api_key']}"
        url = f"{st.api_url}/v1/jobs"

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
            results[name] = (
                h.pct(s, 0.5, upper=True) * 1000,
                h.pct(s, 0.99, upper=True) * 1000,
                statistics.fmean(s) * 1000,
            )

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
