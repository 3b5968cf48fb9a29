"""Recovery time after a lost step, with the production defaults (dispatch_grace_s 15 s,
step_lease_s 10 s, visibility timeout 300 s, beat's sweep every second).

1. Lost at the pop: a job's step message is taken off the queue and dropped, exactly what
   kombu's Redis transport does to a message whose worker dies between BRPOP and recording
   it as unacked. Before this sweep existed nothing ever brought it back.
2. A worker SIGKILLed mid-step (a second worker idles beside it): before, its step waited out
   the visibility timeout plus the restore sweep (~300 s and more).

Printed: seconds from the loss to the job's next vendor request.

    .venv/bin/python bench/recovery.py
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import _harness as h

PATH = "/hubspot/crm/v3/objects/contacts"


def main() -> None:
    with h.stack(sandbox=True, beat=True) as st:
        from app.kernel.settings import get_settings

        s = get_settings()
        token = "bench-token"
        st.sandbox.configure(hubspot_contacts=3000, latency_ms=200)
        st.sandbox.reset("hubspot", token, 0)
        tenant, account = h.tenant_account(
            "hubspot", f"{st.sandbox_url}/hubspot", {"type": "bearer", "token": token}
        )
        from app.kernel.redis import get_redis
        from app.services.jobs import JobCreate, enqueue

        def start_job() -> str:
            req = JobCreate(tool="hubspot.contacts.list", account_id=account,
                            args={"limit": 10}, fields=["id"])  # fmt: skip
            return str(enqueue(tenant["tenant_id"], req)["job_id"])

        r = get_redis()
        job = start_job()
        h.wait_until(lambda: any(job in m for m in r.lrange("celery", 0, -1)), 10, 0.01)
        raw = r.rpop("celery")  # what BRPOP takes; the worker "dies" before HSET unacked
        assert raw and json.loads(raw)["headers"]["id"] == job
        dropped = time.time()
        st.workers = st.start_workers([("-c", "1", "-n", "w1@%h"), ("-c", "1", "-n", "w2@%h")])
        h.wait_until(lambda: st.sandbox.calls(dropped, "hubspot", PATH), 120, 0.05)
        popped = st.sandbox.calls(dropped, "hubspot", PATH)[0]["t"] - dropped
        h.wait_until(lambda: len(st.sandbox.calls(dropped, "hubspot", PATH)) >= 15, 60, 0.05)
        victim = st.workers[_holder(job)]
        pool = _children(victim.pid)
        for pid in [victim.pid, *pool]:  # the worker and its pool: nothing survives to ack
            os.kill(pid, signal.SIGKILL)
        killed = time.time()
        h.wait_until(lambda: st.sandbox.calls(killed + 0.5, "hubspot", PATH), 600, 0.05)
        mid = st.sandbox.calls(killed + 0.5, "hubspot", PATH)[0]["t"] - killed
        st.workers.remove(victim)

    print("recovery after a lost step (production defaults):")
    print(f"  dispatch_grace_s {s.dispatch_grace_s:g} s, step_lease_s {s.step_lease_s:g} s, "
          f"visibility_timeout_s {s.visibility_timeout_s} s")  # fmt: skip
    print(f"  lost at the pop (never recorded unacked): next request after {popped:5.1f} s")
    print(f"  worker SIGKILLed mid-step:                 next request after {mid:5.1f} s")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.name.isdigit() and int(stat[1]) == pid:
            out.append(int(entry.name))
    return out


def _holder(job: str) -> int:
    """Which of the workers w1, w2 (0 or 1) runs the job's step now."""
    from app.celery import app as celery

    for name, tasks in (celery.control.inspect(timeout=1).active() or {}).items():
        if any(t["id"].startswith(job) for t in tasks):
            return 0 if name.startswith("w1@") else 1
    raise RuntimeError("no worker runs the job")


if __name__ == "__main__":
    main()
