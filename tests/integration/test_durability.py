"""Durability on the real stack: a worker killed with SIGKILL mid-job, Redis restarted
mid-job (AOF), and the per-job lease under duplicate deliveries.

Timing: the test env sets the broker's visibility timeout to 10 s (restore sweep every 2 s,
step soft limit 5 s, 3 pages per step; see ENV in tests/conftest.py), so a step lost with a
killed worker is redelivered about 10-12 s after it was taken.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
import redis
from kombu.exceptions import OperationalError

from app import keys

LATENCY_MS = 150
LIMIT = 20
CONTACTS = 1000
PAGES = CONTACTS // LIMIT


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)
    return value


def after_offset(query: str) -> int:
    """The sandbox's opaque `after` cursor is base64 of the offset; no cursor: offset 0."""
    raw = parse_qs(query).get("after")
    if not raw:
        return 0
    value = unquote(raw[0])
    return int(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode().strip())


def page_requests(sandbox: Any) -> list[dict[str, Any]]:
    """Contact-page requests (logged when answered), in the order they were sent."""
    reqs = [e for e in sandbox.requests()
            if e["path"].endswith("/crm/v3/objects/contacts") and e["kind"] == "api"]
    return sorted(reqs, key=lambda e: e["t"])


def offsets(sandbox: Any) -> list[int]:
    return [after_offset(e["query"]) for e in page_requests(sandbox)]


def proc_stat(pid: int) -> list[str] | None:
    """State and ppid (and the rest) of a process from /proc, None when it is gone."""
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
    assert pool, "expected the worker's pool processes"
    wait_until(lambda: all(gone(pid) for pid in pool), 5)


def refresh_broker_connections() -> None:
    """After a Redis restart this process's pooled broker connections are dead, and the
    workers fixture's ping does not retry: cycle them until a broadcast goes through."""
    from app.celery import app

    def ok() -> bool:
        try:
            app.control.ping(timeout=0.1)
        except (redis.ConnectionError, OperationalError):
            return False
        return True

    wait_until(ok, 10, 0.1)


def broker_state(r: Any, job_id: str) -> str:
    """Where the job's step is (or is not), for failure messages."""
    job = r.hgetall(keys.job(job_id))
    unacked = [tag for tag, raw in r.hgetall("unacked").items() if job_id in raw]
    return (f"job status={job.get('status')} seq={job.get('seq')} "
            f"enqueued_seq={job.get('enqueued_seq')} records={job.get('records')}; "
            f"lease ttl={r.pttl(keys.job_lease(job_id))}ms; queued steps="
            f"{sum(job_id in m for m in r.lrange('celery', 0, -1))}; unacked={unacked}; "
            f"parked={r.zscore(keys.PARKED, job_id)}")


def start_paged_job(api: Any, sandbox: Any) -> tuple[str, str]:
    sandbox.config(hubspot_contacts=CONTACTS, latency_ms=LATENCY_MS)
    account = api.account(sandbox)
    job = api.call(account_id=account, args={"limit": LIMIT}, fields=["id"])
    return account, job["job_id"]


def assert_every_record_once(api: Any, job_id: str, timeout: float) -> dict[str, Any]:
    done = api.wait(job_id, timeout=timeout)
    assert done["status"] == "succeeded", done
    body = api.result(job_id)
    assert body["truncated"] is False
    assert [int(rec["id"]) for rec in body["records"]] == list(range(1, CONTACTS + 1))
    assert done["progress"]["records"] == CONTACTS
    return done


def assert_pages_covered(sandbox: Any, max_refetches: int) -> list[int]:
    seen = offsets(sandbox)
    assert set(seen) == {k * LIMIT for k in range(PAGES)}
    dup = sum(n - 1 for n in Counter(seen).values())
    assert dup <= max_refetches, f"{dup} pages fetched twice: {Counter(seen).most_common(3)}"
    return seen


def test_worker_killed_mid_job_resumes_without_loss(api, fresh_sandbox, workers):
    workers.stop_all()
    try:
        victim = workers.start(concurrency=1)
        _, job_id = start_paged_job(api, fresh_sandbox)
        wait_until(lambda: len(page_requests(fresh_sandbox)) >= 5, 30)
        before = api.get(f"/v1/jobs/{job_id}").json()
        assert before["status"] == "running" and before["progress"]["records"] < CONTACTS

        kill_worker_tree(victim)
        killed_at = time.time()
        fetched_at_kill = len(page_requests(fresh_sandbox))
        time.sleep(1)  # nothing runs the job while no worker is alive
        assert len(page_requests(fresh_sandbox)) <= fetched_at_kill + 1  # the page in flight

        # A live worker's restore sweep puts the dead worker's unacked step back on the queue
        # once it is older than the visibility timeout (10 s here): ~10-12 s, not ~100 s.
        survivor = workers.start(concurrency=1)
        assert_every_record_once(api, job_id, timeout=60)
        resumed = [e["t"] for e in page_requests(fresh_sandbox) if e["t"] > killed_at + 1]
        assert resumed, "no page was fetched after the kill"
        assert resumed[0] - killed_at < 25, "the lost step was not redelivered promptly"
        assert job_id in survivor.log()
        # at most the page in flight at the kill is fetched twice; nothing is spooled twice
        assert_pages_covered(fresh_sandbox, max_refetches=1)
    finally:
        fresh_sandbox.config(latency_ms=0)
        workers.stop_all()
        workers.start()  # the session's normal worker, for the tests that follow


def test_redis_restart_mid_job(api, fresh_sandbox, workers, redis_server, r):
    workers.ensure()
    running = [p for p in workers.procs if p.proc.poll() is None]
    _, job_id = start_paged_job(api, fresh_sandbox)
    wait_until(lambda: len(page_requests(fresh_sandbox)) >= 5, 30)
    spooled = r.llen(keys.job_spool(job_id, 0))
    assert spooled > 0

    redis_server.stop()  # SIGTERM: Redis fsyncs its AOF and exits
    time.sleep(1)
    redis_server.start()  # same port and data dir: the AOF is replayed
    assert r.llen(keys.job_spool(job_id, 0)) >= spooled  # the spool survived the restart
    refresh_broker_connections()  # for workers.start() here and in later tests
    # a worker that fails to reconnect exits within a few seconds (it stops its pool first)
    records = api.get(f"/v1/jobs/{job_id}").json()["progress"]["records"]
    with contextlib.suppress(AssertionError):
        wait_until(lambda: any(p.proc.poll() is not None for p in running) or
                   api.get(f"/v1/jobs/{job_id}").json()["progress"]["records"] > records, 6, 0.2)
    died = [p.name for p in running if p.proc.poll() is not None]
    if died:
        # Stand-in for the process supervisor (compose `restart:`): see the xfail below.
        workers.start()

    try:
        assert_every_record_once(api, job_id, timeout=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{broker_state(r, job_id)}") from None
    finally:
        fresh_sandbox.config(latency_ms=0)
    # the page in flight when Redis went away may be fetched again (its commit failed)
    assert_pages_covered(fresh_sandbox, max_refetches=2)
    if died:
        pytest.xfail(
            f"{died} exited on the broker connection loss instead of reconnecting: celery "
            "5.7.0's Consumer.on_connection_error_after_connected() collects, then closes the "
            "lost connection, and the close (and any later ack on it) hits kombu's redis "
            "_connparams with the transport's client gone -> AttributeError -> 'Unrecoverable "
            "error'. Celery 5.6.3 reconnects. The job itself survived a worker restart")


def test_job_never_runs_on_two_workers_at_once(api, fresh_sandbox, workers, r):
    from tasks.steps import run_step

    while sum(p.proc.poll() is None for p in workers.procs) < 2:
        workers.start()
    live = [p for p in workers.procs if p.proc.poll() is None]
    _, job_id = start_paged_job(api, fresh_sandbox)
    try:
        # Duplicate deliveries of the current step (what an early redelivery looks like),
        # spread over both workers, all through the job: during steps and at hand-overs.
        wait_until(lambda: len(page_requests(fresh_sandbox)) >= 1, 30)
        for n in range(150):
            job = r.hgetall(keys.job(job_id))
            if job["status"] == "succeeded":
                break
            for k in range(2):
                run_step.apply_async(args=[job_id, int(job["seq"])],
                                     task_id=f"{job_id}.dup-{n}-{k}")
            time.sleep(0.05)
        assert_every_record_once(api, job_id, timeout=60)
    finally:
        fresh_sandbox.config(latency_ms=0)
    reqs = page_requests(fresh_sandbox)
    # strictly sequential cursors: each page once, in order...
    assert [after_offset(e["query"]) for e in reqs] == [k * LIMIT for k in range(PAGES)], [
        (after_offset(e["query"]), round(e["t"] % 100, 3), e["status"]) for e in reqs]
    # ...and never two requests of the job in flight at once (each takes >= the latency)
    gaps = [b["t"] - a["t"] for a, b in zip(reqs, reqs[1:], strict=False)]
    assert min(gaps) >= LATENCY_MS / 1000 * 0.9, min(gaps)
    # and the job's messages really were spread over more than one worker process
    assert sum(f"toolqueue.step[{job_id}" in p.log() for p in live) >= 2
