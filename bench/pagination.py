"""Pagination cost: toolqueue (spool + checkpoint included) vs a bare requests + json loop.

Both walk the same sandbox HubSpot pages (zero latency, no rate limit) in one run. The
worker runs `-P solo` so its whole cost is one process; CPU is read from /proc. Target:
toolqueue CPU per page ≤ 1.25× the bare loop's.

    .venv/bin/python bench/pagination.py [PAGES]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import _harness as h

TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def bare_loop(url: str, token: str, pages: int) -> tuple[float, float, int]:
    """The baseline, in its own process so its CPU is measured the same way."""
    code = f"""
import json, time, requests
s = requests.Session(); s.headers["Authorization"] = "Bearer {token}"
after, n, recs, t0, c0 = None, 0, 0, time.perf_counter(), time.process_time()
while n < {pages}:
    params = {{"limit": 100, "archived": "false"}}
    if after: params["after"] = after
    doc = s.get("{url}", params=params, timeout=30).json()
    recs += len(doc["results"]); n += 1
    after = ((doc.get("paging") or {{}}).get("next") or {{}}).get("after")
    if not after: break
print(json.dumps([time.perf_counter() - t0, time.process_time() - c0, n]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    wall, cpu, n = json.loads(out)
    return wall, cpu, n


def main(pages: int = 600) -> None:
    with h.stack(
        sandbox=True,
        workers=[("-P", "solo")],
        sandbox_hubspot_contacts=pages * 100,
        sandbox_rate_budget=100_000_000,
    ) as st:
        from app.services.jobs import JobCreate, enqueue
        from app.store.jobstore import load

        worker = st.workers[0]
        token = st.sandbox.mint("hubspot", expires_in=86400)["access_token"]
        url = f"{st.sandbox_url}/hubspot/crm/v3/objects/contacts"
        bare_loop(url, token, 20)  # warm the sandbox
        b_wall, b_cpu, b_pages = bare_loop(url, token, pages)

        tenant, account = h.tenant_account(
            "hubspot", f"{st.sandbox_url}/hubspot", {"type": "bearer", "token": token}
        )
        req = {
            "tool": "hubspot.contacts.list",
            "account_id": account,
            "args": {"limit": 100},
            "delivery": "blocks",
        }
        # warm-up job (imports, connections, script cache) on a few pages
        warm = enqueue(tenant["tenant_id"], JobCreate.model_validate({**req, "max_pages": 10}))
        while load(warm["job_id"])["status"] not in ("succeeded", "failed"):
            time.sleep(0.05)
        c0, t0 = cpu_s(worker.pid), time.perf_counter()
        job = enqueue(tenant["tenant_id"], JobCreate.model_validate({**req, "max_pages": pages}))
        while (state := load(job["job_id"]))["status"] not in ("succeeded", "failed"):
            time.sleep(0.02)
        t_wall, t_cpu = time.perf_counter() - t0, cpu_s(worker.pid) - c0
        t_pages = state["pages"]
        assert state["status"] == "succeeded", state

    print(f"pagination over {pages} sandbox pages of 100 HubSpot contacts (zero latency):")
    print(f"{'':34}{'pages':>7}{'pages/s':>10}{'CPU ms/page':>13}")
    print(
        f"{'bare requests + json loop':34}{b_pages:7d}{b_pages / b_wall:10.1f}"
        f"{b_cpu / b_pages * 1000:13.3f}"
    )
    print(
        f"{'toolqueue worker (spool+checkpoint)':34}{t_pages:7d}{t_pages / t_wall:10.1f}"
        f"{t_cpu / t_pages * 1000:13.3f}"
    )
    ratio = (t_cpu / t_pages) / (b_cpu / b_pages)
    print(f"toolqueue / bare CPU per page: {ratio:.2f}x (target <= 1.25x)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 600)
