"""Durability on the real stack: a worker killed with SIGKILL mid-job, Redis restarted
mid-job (AOF), and the per-job lease under duplicate deliveries.

Timing: the test env sets the broker's visibility timeout to 10 s (restore sweep every 2 s,
step soft limit 5 s, 3 pages per step; see ENV in tests/conftest.py), so a step lost with a
killed worker is redelivered about 10-12 s after it was taken.

Each test pages 1000 sandbox contacts at 150 ms per page with its own page size, and the
request log is filtered by that `limit`, so a straggler of an earlier test cannot pollute it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote

import pytest
from kombu.exceptions import OperationalError
from support import answers_ping, kill_worker_tree, live, refresh_broker_connections

from app.kernel import keys

LATENCY_MS = 150
CONTACTS = 1000


def wait_until(predicate: Any, timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)
    return value


# ---- the sandbox's request log ------------------------------------------------------------


def after_offset(query: str) -> int:
    """The sandbox's opaque `after` cursor is base64 of the offset; no cursor: offset 0."""
    raw = parse_qs(query).get("after")
    if not raw:
        return 0
    value = unquote(raw[0])
    return int(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode().strip())


def page_requests(sandbox: Any, limit: int) -> list[dict[str, Any]]:
    """This test's contact-page requests (logged when answered), in the order sent."""
    reqs = [e for e in sandbox.requests()
            if e["path"].endswith("/crm/v3/objects/contacts") and e["kind"] == "api"
            and parse_qs(e["query"]).get("limit") == [str(limit)]]
    return sorted(reqs, key=lambda e: e["t"])


def offsets(sandbox: Any, limit: int) -> list[int]:
    return [after_offset(e["query"]) for e in page_requests(sandbox, limit)]


def assert_pages_covered(sandbox: Any, limit: int, max_refetches: int) -> None:
    seen = offsets(sandbox, limit)
    assert set(seen) == set(range(0, CONTACTS, limit))
    dup = sum(n - 1 for n in Counter(seen).values())
    assert dup <= max_refetches, f"{dup} pages fetched twice: {Counter(seen).most_common(3)}"


# ---- jobs -------------------------------------------------------------------------------


@contextlib.contextmanager
def paged_job(api: Any, sandbox: Any, limit: int) -> Iterator[str]:
    """A slow 1000-contact job; cancelled on the way out if it has not ended (so it cannot
    leak requests into the next test) and the sandbox latency is reset."""
    sandbox.config(hubspot_contacts=CONTACTS, latency_ms=LATENCY_MS)
    job_id = ""
    try:
        account = api.account(sandbox)
        job_id = api.call(account_id=account, args={"limit": limit}, fields=["id"])["job_id"]
        yield job_id
    finally:
        sandbox.config(latency_ms=0)
        if job_id:
            with contextlib.suppress(Exception):
                api.post(f"/v1/jobs/{job_id}/cancel")


def assert_every_record_once(api: Any, job_id: str, timeout: float, r: Any) -> None:
    try:
        done = api.wait(job_id, timeout=timeout)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{step_whereabouts(r, job_id)}") from None
    assert done["status"] == "succeeded", done
    body = api.result(job_id)
    assert body["truncated"] is False
    assert [int(rec["id"]) for rec in body["records"]] == list(range(1, CONTACTS + 1))
    assert done["progress"]["records"] == CONTACTS


def step_whereabouts(r: Any, job_id: str) -> str:
    """Where the job's next step is (or is not), for failure messages."""
    job = r.hgetall(keys.job(job_id))
    unacked = [tag for tag, raw in r.hgetall("unacked").items() if job_id in raw]
    work = keys.step_work(job_id)
    return (f"job status={job.get('status')} seq={job.get('seq')} "
            f"records={job.get('records')}; "
            f"lease ttl={r.pttl(keys.job_lease(job_id))}ms; queued steps="
            f"{sum(job_id in m for m in r.lrange('celery', 0, -1))}; unacked={unacked}; "
            f"pending={r.hget(keys.PENDING, work)} due={r.zscore(keys.DUE, work)}")


# ---- tests --------------------------------------------------------------------------------


def test_worker_killed_mid_job_resumes_without_loss(api, fresh_sandbox, workers, r):
    limit = 20  # 50 pages
    workers.stop_all()
    try:
        victim = workers.start(concurrency=1)
        with paged_job(api, fresh_sandbox, limit) as job_id:
            wait_until(lambda: len(page_requests(fresh_sandbox, limit)) >= 5, 30)
            before = api.get(f"/v1/jobs/{job_id}").json()
            assert before["status"] == "running" and before["progress"]["records"] < CONTACTS

            kill_worker_tree(victim)
            killed_at = time.time()
            fetched_at_kill = len(page_requests(fresh_sandbox, limit))
            time.sleep(1)  # nothing runs the job while no worker is alive
            assert len(page_requests(fresh_sandbox, limit)) <= fetched_at_kill + 1  # in flight

            # A live worker's restore sweep puts the dead worker's unacked step back on the
            # queue once it is older than the visibility timeout (10 s here): ~10-12 s.
            survivor = workers.start(concurrency=1)
            assert_every_record_once(api, job_id, 60, r)
            resumed = [e["t"] for e in page_requests(fresh_sandbox, limit)
                       if e["t"] > killed_at + 1]
            assert resumed, "no page was fetched after the kill"
            # the dead step's lease (3 s here) lapsed and the sweep sent it again: well inside
            # the broker's visibility timeout (10 s here), which no longer decides recovery
            recovery = resumed[0] - killed_at
            print(f"mid-step SIGKILL: first page again {recovery:.1f}s after the kill")
            assert recovery < 9, f"the lost step took {recovery:.1f}s to be sent again"
            assert job_id in survivor.log()
        # at most the page in flight at the kill is fetched twice; nothing is spooled twice
        assert_pages_covered(fresh_sandbox, limit, max_refetches=1)
    finally:
        workers.stop_all()
        workers.start()  # the session's normal worker, for the tests that follow


def test_redis_restart_mid_job(api, fresh_sandbox, workers, redis_server, r):
    limit = 40  # 25 pages
    workers.ensure()
    running = live(workers)
    with paged_job(api, fresh_sandbox, limit) as job_id:
        wait_until(lambda: len(page_requests(fresh_sandbox, limit)) >= 5, 30)
        spooled = r.llen(keys.job_spool(job_id, 0))
        assert spooled > 0

        redis_server.stop()  # SIGTERM: Redis fsyncs its AOF and exits
        time.sleep(1)
        redis_server.start()  # same port and data dir: the AOF is replayed
        assert r.llen(keys.job_spool(job_id, 0)) >= spooled  # the spool survived the restart
        refresh_broker_connections()  # this process's, for pings and workers.start()

        # Each worker either reconnects (answers a ping again) or gives up and exits.
        with contextlib.suppress(AssertionError):
            wait_until(lambda: all(p.proc.poll() is not None or answers_ping(p)
                                   for p in running), 20, 0.2)
        died = [p for p in running if p.proc.poll() is not None or not answers_ping(p)]
        for p in died:
            p.stop()  # dead already, or alive but deaf: not a worker any more
        if died:
            # Stand-in for the process supervisor (compose `restart:`): see the xfail below.
            workers.start()

        assert_every_record_once(api, job_id, 60, r)
    # the page in flight when Redis went away may be fetched again (its commit failed)
    assert_pages_covered(fresh_sandbox, limit, max_refetches=2)
    if died:
        pytest.xfail(
            f"{[p.name for p in died]} did not survive the broker connection loss: celery "
            "5.7.0's Consumer.on_connection_error_after_connected() collects, then closes the "
            "lost connection, and the close (and any later ack on it) hits kombu's redis "
            "_connparams with the transport's client gone -> AttributeError -> 'Unrecoverable "
            "error'. Celery 5.6.3 reconnects. The job itself survived a worker restart")


def test_job_never_runs_on_two_workers_at_once(api, fresh_sandbox, workers, r):
    from tasks.steps import run_step

    limit = 25  # 40 pages
    while len(live(workers)) < 2:
        workers.start()
    procs = live(workers)
    with paged_job(api, fresh_sandbox, limit) as job_id:
        # Duplicate deliveries of the current step (what an early redelivery looks like),
        # spread over both workers, all through the job: during steps and at hand-overs.
        wait_until(lambda: len(page_requests(fresh_sandbox, limit)) >= 1, 30)
        for n in range(150):
            job = r.hgetall(keys.job(job_id))
            if job["status"] != "running":
                break
            for k in range(2):
                run_step.apply_async(args=[job_id, int(job["seq"])],
                                     task_id=f"{job_id}.dup-{n}-{k}")
            time.sleep(0.05)
        assert_every_record_once(api, job_id, 60, r)
    reqs = page_requests(fresh_sandbox, limit)
    # strictly sequential cursors: each page once, in order...
    assert [after_offset(e["query"]) for e in reqs] == list(range(0, CONTACTS, limit)), [
        (after_offset(e["query"]), round(e["t"] % 100, 3), e["status"]) for e in reqs]
    # ...never two requests of the job in flight at once (each takes >= the latency)...
    gaps = [b["t"] - a["t"] for a, b in zip(reqs, reqs[1:], strict=False)]
    assert min(gaps) >= LATENCY_MS / 1000 * 0.9, min(gaps)
    # ...although the job's messages really were spread over more than one worker process
    assert sum(f"toolqueue.step[{job_id}" in p.log() for p in procs) >= 2


def test_enqueue_whose_send_fails_is_sent_by_beat(api, fresh_sandbox, monkeypatch, r):
    """The API records the job, then the broker refuses its first step (here the send raises
    in this process, leaving exactly what a SIGKILL at that instant would leave, except that
    the API still answers: the job exists, so it says 202). The job's step was pending work
    from the moment it was recorded; beat's sweep sends it after `dispatch_grace_s` (3 s in
    the test env)."""
    from app import dispatch
    from app.services import jobs

    account = api.account(fresh_sandbox)

    def killed(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("the broker took nothing")

    monkeypatch.setattr(dispatch, "send", killed)
    req = jobs.JobCreate(tool="hubspot.contacts.list", account_id=account, args={"limit": 10},
                         max_pages=2)  # fmt: skip
    job_id = jobs.enqueue(api.tenant["tenant_id"], req)["job_id"]
    monkeypatch.undo()
    work = keys.step_work(job_id)
    assert r.hget(keys.PENDING, work) == "0:s:0"
    assert r.zscore(keys.DUE, work) is not None
    assert r.hget(keys.job(job_id), "status") == "queued"
    done = api.wait(job_id, timeout=30)
    assert done["status"] == "succeeded", done
    assert done["progress"]["records"] == 20
    assert r.hget(keys.PENDING, work) is None and r.zscore(keys.DUE, work) is None
    # a job sent normally is not sent again: its step started well inside the grace
    sent = api.call(account_id=account, args={"limit": 10}, max_pages=1)["job_id"]
    assert api.wait(sent)["status"] == "succeeded"
    history = [h["reason"] for h in api.get(f"/v1/jobs/{sent}").json()["history"]]
    assert history.count("step 0 started") == 1
    assert r.zscore(keys.DUE, keys.step_work(sent)) is None


def lost_anywhere(r: Any, task_id: str) -> bool:
    """Is a message of this task id still queued or recorded as unacked?"""
    queued = any(f'"{task_id}"' in m for m in r.lrange("celery", 0, -1))
    return queued or any(f'"{task_id}"' in v for v in r.hgetall("unacked").values())


def test_a_step_lost_at_the_pop_is_sent_again_and_the_job_completes_exactly(
    api, fresh_sandbox, workers, r
):
    """kombu's Redis transport pops a message (BRPOP) and records it as unacked (HSET) in two
    steps; a worker killed between them takes the message with it, and the visibility
    timeout cannot restore what was never recorded. Here a real worker process SIGKILLs
    itself exactly there, at the message that was to run step 2 (the job has shown itself
    long by then: its step 2 waits in the bulk lane's fair share, and the message lost is its
    turn); the sweep offers the step again, with a turn, once its deadline (the bulk wait
    guard, 3 s here) has passed."""
    from support import scrape, value

    limit = 50  # 20 pages; 3 pages a step, so steps 0 and 1 fetch 6 pages before step 2
    before = value(scrape(api.url), "work_resent", kind="step")
    workers.stop_all()
    try:
        victim = workers.start(kill_at_pop=".2.turn")
        with paged_job(api, fresh_sandbox, limit) as job_id:
            wait_until(lambda: victim.proc.poll() is not None, 30)
            died_at = time.time()
            assert f"dying at the pop of {job_id}.2.turn" in victim.log()
            assert not lost_anywhere(r, f"{job_id}.2.turn"), "the message should be gone for good"
            assert len(page_requests(fresh_sandbox, limit)) == 6
            workers.start(concurrency=1)
            assert_every_record_once(api, job_id, 60, r)
            resumed = page_requests(fresh_sandbox, limit)[6]["t"]
            print(f"step lost at the pop: sent again, first page {resumed - died_at:.1f}s later")
            assert resumed - died_at < 10
        assert_pages_covered(fresh_sandbox, limit, max_refetches=0)
        assert value(scrape(api.url), "work_resent", kind="step") >= before + 1
    finally:
        workers.stop_all()
        workers.start()


def test_a_webhook_lost_at_the_pop_is_sent_again_and_delivered_once(
    api, fresh_sandbox, workers, receiver, r
):
    """The same loss for the first attempt of a job's webhook: the ended job's webhook was
    pending work from the moment it ended, so the sweep sends the attempt again."""
    workers.stop_all()
    try:
        victim = workers.start(kill_at_pop=".webhook")
        account = api.account(fresh_sandbox)
        job_id = api.call(account_id=account, args={"limit": 10}, max_pages=1,
                          callback_url=receiver.url)["job_id"]  # fmt: skip
        wait_until(lambda: victim.proc.poll() is not None, 30)
        assert f"dying at the pop of {job_id}.webhook" in victim.log()
        assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
        assert not lost_anywhere(r, f"{job_id}.webhook") and not receiver.requests
        workers.start(concurrency=1)
        [delivery] = receiver.wait(1, timeout=30)
        assert delivery["headers"]["webhook-id"] == f"msg_{job_id}"
        wait_until(lambda: r.hget(keys.PENDING, keys.webhook_work(job_id)) is None, 10)
        time.sleep(1.5)
        assert len(receiver.requests) == 1
    finally:
        workers.stop_all()
        workers.start()



def test_chaos_workers_sigkilled_at_random_and_redis_restarted(
    api, fresh_sandbox, workers, redis_server, r
):
    """Multi-page jobs on three worker processes; workers SIGKILLed at random moments (each
    replaced, as a supervisor would) and Redis itself SIGKILLed and restarted once. Every job
    ends, every record exactly once, nothing left pending. TOOLQUEUE_CHAOS_SEED replays a run."""
    import random

    from support import job_gauge_and_records

    seed = int(os.environ.get("TOOLQUEUE_CHAOS_SEED") or time.time())
    rng = random.Random(seed)
    print(f"chaos seed {seed}")
    fresh_sandbox.config(hubspot_contacts=CONTACTS, latency_ms=60)
    workers.stop_all()
    try:
        for _ in range(3):
            workers.start(concurrency=1)
        jobs = []
        for limit in (21, 23, 27, 29, 31, 33):  # distinct page sizes: distinct request logs
            account = api.account(fresh_sandbox)
            jobs.append(api.call(account_id=account, args={"limit": limit},
                                 fields=["id"])["job_id"])  # fmt: skip
        redis_at = rng.randrange(1, 5)
        for n in range(6):
            time.sleep(rng.uniform(0.5, 2.0))
            if n == redis_at:
                redis_server.kill()
                time.sleep(rng.uniform(0.1, 0.8))
                redis_server.start()
                refresh_broker_connections()
            victims = live(workers)
            if victims:
                kill_worker_tree(rng.choice(victims))
            for p in [p for p in workers.procs if p.proc.poll() is not None]:
                p.stop()
                workers.procs.remove(p)
            while len(live(workers)) < 3:
                workers.start(concurrency=1)
        for job_id in jobs:
            assert_every_record_once(api, job_id, 120, r)
        for job_id in jobs:
            assert r.hget(keys.PENDING, keys.step_work(job_id)) is None
        gauge, records = job_gauge_and_records(r)
        assert gauge == records, (gauge, records)
    finally:
        fresh_sandbox.config(latency_ms=0)
        workers.stop_all()
        workers.procs.clear()
        workers.start()
