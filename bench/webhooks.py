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
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import _harness as h

WORKER = ("--concurrency=4",)  # prefork, 4 processes


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


def main(jobs: int = 200, events: int = 1000) -> None:
    rec = Receiver()
    with h.stack(
        sandbox=True,
        workers=[WORKER],
        sandbox_hubspot_contacts=1000,
        sandbox_rate_budget=100_000_000,
    ) as st:
        from app.services.jobs import JobCreate, enqueue
        from app.store.jobstore import load
        from tasks.webhooks import deliver

        token = st.sandbox.mint("hubspot", expires_in=86400)["access_token"]
        tenant, account = h.tenant_account(
            "hubspot", f"{st.sandbox_url}/hubspot", {"type": "bearer", "token": token}
        )
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
            job_id = enqueue(tenant["tenant_id"], req)["job_id"]
            h.wait_until(lambda n=len(rec.hits): len(rec.hits) > n, 60, 0.002)
            hit_id, at = rec.hits[-1]
            assert hit_id == f"msg_{job_id}", (hit_id, job_id)
            if i >= 10:
                latencies.append((at - load(job_id)["finished_at"]) * 1000)
                ids.append(job_id)

        h.stop(st.workers, 30)
        t0 = time.perf_counter()
        for i in range(events):
            deliver.apply_async(args=[ids[i % len(ids)], 1, "redeliver"])
        queued_s = time.perf_counter() - t0
        before = len(rec.hits)
        st.start_workers([WORKER], wait=False)
        h.wait_until(lambda: len(rec.hits) >= before + events, 300, 0.01)
        burst = rec.hits[before:]
        rate = (len(burst) - 1) / (burst[-1][1] - burst[0][1])

    print(f"webhook delivery, loopback receiver, 1 worker x 4 processes ({os.cpu_count()} CPUs):")
    print(f"  end-of-job -> receiver 2xx over {len(latencies)} jobs, one at a time:")
    print(
        f"    p50 {statistics.median(latencies):.1f} ms   p90 {h.pct(latencies, 0.9):.1f} ms"
        f"   p99 {h.pct(latencies, 0.99):.1f} ms   max {max(latencies):.1f} ms"
        f"   (target p50 <= 50 ms: {'met' if statistics.median(latencies) <= 50 else 'MISSED'})"
    )
    print(f"  {events} queued events (queued in {queued_s:.2f} s, worker then started):")
    print(f"    {rate:.0f} deliveries/s (first to last arrival)")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
