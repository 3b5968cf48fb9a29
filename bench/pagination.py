"""Pagination cost: toolqueue (spool + checkpoint included) vs a bare requests + json loop.

Both walk the same sandbox HubSpot pages (zero latency, no rate limit) in one run. The
worker runs `-P solo` so its whole cost is one process; CPU is read from /proc. Target:
toolqueue CPU per page ≤ 1.25× the bare loop's.

    .venv/bin/python bench/pagination.py [PAGES]
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TICK = os.sysconf("SC_CLK_TCK")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    home = Path(tempfile.mkdtemp(prefix="tq-bench-"))
    redis_port, sandbox_port = _port(), _port()
    from cryptography.fernet import Fernet

    os.environ.update(
        {
            "TOOLQUEUE_HOME": str(home),
            "TOOLQUEUE_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "TOOLQUEUE_SANDBOX_PORT": str(sandbox_port),
            "TOOLQUEUE_SANDBOX_HUBSPOT_CONTACTS": str(pages * 100),
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

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(home / "bench.log", "ab")  # noqa: SIM115
    with LocalRedis(redis_port, home / "redis"):
        sandbox = subprocess.Popen(
            [sys.executable, "-m", "sandbox"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "app.celery",
                "worker",
                "-P",
                "solo",
                "--loglevel=WARNING",
                "--without-mingle",
                "--without-gossip",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            base = f"http://127.0.0.1:{sandbox_port}"
            for _ in range(300):
                try:
                    requests.get(f"{base}/healthz", timeout=1)
                    break
                except requests.RequestException:
                    time.sleep(0.1)
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
            url = f"{base}/hubspot/crm/v3/objects/contacts"
            bare_loop(url, token, 20)  # warm the sandbox
            b_wall, b_cpu, b_pages = bare_loop(url, token, pages)

            tenant = create_tenant("bench")
            account = create_account(
                tenant["tenant_id"],
                AccountCreate.model_validate(
                    {
                        "vendor": "hubspot",
                        "name": "bench",
                        "base_url": f"{base}/hubspot",
                        "credentials": {"type": "bearer", "token": token},
                    }
                ),
            )["account_id"]
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
            job = enqueue(
                tenant["tenant_id"], JobCreate.model_validate({**req, "max_pages": pages})
            )
            while (state := load(job["job_id"]))["status"] not in ("succeeded", "failed"):
                time.sleep(0.02)
            t_wall, t_cpu = time.perf_counter() - t0, cpu_s(worker.pid) - c0
            t_pages = state["pages"]
            assert state["status"] == "succeeded", state
        finally:
            for proc in (worker, sandbox):
                proc.terminate()
                proc.wait(15)

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
