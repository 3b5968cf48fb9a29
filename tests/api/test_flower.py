"""Flower sees every step of a job under the job's own id, behind basic auth, and no secret
reaches Flower (task args/kwargs) or the worker logs."""

from __future__ import annotations

import ast
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "flower-user", f"pw-{uuid.uuid4().hex[:12]}"
# beat's periodic tasks, as they were sent before the sweeps ran inside beat, and as they are
HOUSEKEEPING = {"toolqueue.wake_due", "toolqueue.wake_parked", "toolqueue.send_unsent",
                "toolqueue.wake_parked_webhooks"}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Flower:
    def __init__(self, url: str, proc: subprocess.Popen, log_path: Path) -> None:
        self.url = url
        self.proc = proc
        self.log_path = log_path
        self.auth = (USER, PASSWORD)

    def get(self, path: str, **kw: Any) -> requests.Response:
        kw.setdefault("auth", self.auth)
        return requests.get(self.url + path, timeout=10, **kw)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def flower(workers: Any) -> Iterator[Flower]:
    port = _free_port()
    log_path = Path(os.environ["TOOLQUEUE_HOME"]) / "logs" / f"flower-test-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "FLOWER_UNAUTHENTICATED_API"}
    env.update(FLOWER_BASIC_AUTH=f"{USER}:{PASSWORD}", PYTHONUNBUFFERED="1")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "app.celery", "flower",
             "--address=127.0.0.1", f"--port={port}"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    fl = Flower(f"http://127.0.0.1:{port}", proc, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, fl.log()[-3000:]
            try:
                if fl.get("/api/workers").status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, fl.log()[-3000:]
            time.sleep(0.2)
        yield fl
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("auth", [None, ("flower-user", "wrong"), ("someone", PASSWORD)])
@pytest.mark.parametrize("path", ["/api/tasks", "/api/workers", "/"])
def test_flower_requires_basic_auth(flower, auth, path):
    resp = flower.get(path, auth=auth)
    assert resp.status_code == 401, (resp.status_code, resp.text[:300])
    assert PASSWORD not in resp.text


def _sealed_tokens(account_id: str) -> dict[str, Any]:
    from app.kernel import keys
    from app.kernel.crypto import unseal
    from app.kernel.redis import get_redis

    return unseal(get_redis().hget(keys.token(account_id), "sealed"))


def test_flower_lists_job_steps_without_secrets(flower, api, fresh_sandbox, receiver, workers):
    client_id, client_secret = f"cid-{uuid.uuid4().hex[:8]}", f"csec-{uuid.uuid4().hex}"
    # A short-lived access token, so the job also goes through an OAuth refresh.
    tokens = fresh_sandbox.mint(client_id=client_id, client_secret=client_secret, expires_in=5)
    account = api.account(fresh_sandbox, access_token=tokens["access_token"],
                          refresh_token=tokens["refresh_token"], expires_in=5,
                          client_id=client_id, client_secret=client_secret)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"],
                   callback_url=receiver.url)
    job_id = job["job_id"]
    done = api.wait(job_id)
    assert done["status"] == "succeeded", done
    receiver.wait(1)
    # pages_per_step is 3 in tests: 10 pages take steps 0..3.
    step_ids = [job_id] + [f"{job_id}.{n}" for n in range(1, 4)]

    def flower_tasks() -> dict[str, Any] | None:
        resp = flower.get("/api/tasks", params={"limit": 100000})
        assert resp.status_code == 200, resp.text[:300]
        tasks = resp.json()
        ok = all(tasks.get(t, {}).get("state") == "SUCCESS"
                 for t in [*step_ids[:2], *(f"{s}.turn" for s in step_ids[2:]),
                           f"{job_id}.webhook"])  # fmt: skip
        return tasks if ok else None

    deadline = time.monotonic() + 30
    while (tasks := flower_tasks()) is None:
        assert time.monotonic() < deadline, "Flower never saw every step succeed"
        time.sleep(0.2)
    raw = flower.get("/api/tasks", params={"limit": 100000}).text

    mine = {tid: t for tid, t in tasks.items() if tid == job_id or tid.startswith(job_id + ".")}
    # interactive steps are step messages; once the job has shown itself long (6 pages:
    # TOOLQUEUE_BULK_AFTER_PAGES 5) its steps are offered to the bulk lane's fair share and
    # run by turns, each named for the step whose offer sent it
    interactive, bulk = step_ids[:2], step_ids[2:]
    turns = {tid: t for tid, t in mine.items() if t.get("name") == "toolqueue.bulk_turn"}
    assert set(turns) == {f"{tid}.turn" for tid in bulk}, sorted(mine)
    assert all(t.get("state") == "SUCCESS" and ast.literal_eval(t["args"] or "[]") in ([], ())
               for t in turns.values()), turns  # fmt: skip
    step_ids = interactive
    steps = {tid: t for tid, t in mine.items() if t.get("name") == "toolqueue.step"}
    assert set(steps) == set(step_ids), sorted(steps)
    assert job_id in steps  # the first step's task id is the job id itself
    for n, tid in enumerate(step_ids):  # args are just (job id, step number)
        assert ast.literal_eval(steps[tid]["args"]) in ([job_id, n], (job_id, n)), steps[tid]
        assert ast.literal_eval(steps[tid]["kwargs"] or "{}") == {}, steps[tid]
    others = set(mine) - set(steps) - set(turns)
    assert all(tid.startswith(job_id + ".") for tid in others), others  # e.g. `<job>.webhook`
    assert mine.get(f"{job_id}.webhook", {}).get("name") == "toolqueue.deliver_webhook", mine
    for tid in step_ids:  # per-task detail view is clean too
        info = flower.get(f"/api/task/info/{tid}")
        assert info.status_code == 200
        raw += info.text

    current = _sealed_tokens(account)
    assert current["access_token"] != tokens["access_token"], "expected an OAuth refresh"
    secrets = {
        "access token": tokens["access_token"],
        "refreshed access token": current["access_token"],
        "refresh token": tokens["refresh_token"],
        "current refresh token": current.get("refresh_token", tokens["refresh_token"]),
        "client secret": client_secret,
        "api key": api.tenant["api_key"],
        "webhook secret": api.tenant["webhook_secret"],
        "webhook secret key": api.tenant["webhook_secret"].removeprefix("whsec_"),
    }
    logs = workers.logs()
    assert job_id in logs  # the logs are the right ones
    for what, secret in secrets.items():
        assert secret and len(secret) >= 16, what
        assert secret not in raw, f"{what} appears in Flower's /api/tasks"
        assert secret not in logs, f"{what} appears in the worker logs"
        assert secret not in flower.log(), f"{what} appears in Flower's log"


def test_flower_shows_jobs_not_housekeeping(flower, api, fresh_sandbox, receiver):
    """Beat's once-a-second sweeps run inside beat (app/dispatch/beat.py), not as tasks: Flower's
    newest tasks are a job's steps and webhook attempts (`<job>.webhook`, then
    `<job>.webhook.<n>` for retries, like steps), however long ago beat started."""
    receiver.status = 503  # the first attempt fails; the retry (0.5 s later) lands
    account = api.account(fresh_sandbox)
    job_id = api.call(account_id=account, args={"limit": 10}, max_pages=1,
                      callback_url=receiver.url)["job_id"]  # fmt: skip
    receiver.wait(1)
    receiver.status = 200
    receiver.wait(2)
    time.sleep(4)  # four beat ticks

    def newest() -> dict[str, Any]:
        resp = flower.get("/api/tasks", params={"limit": 10, "sort_by": "-received"})
        assert resp.status_code == 200, resp.text[:300]
        return resp.json()

    wanted = {job_id, f"{job_id}.webhook", f"{job_id}.webhook.1"}
    deadline = time.monotonic() + 20
    while not wanted <= set(tasks := newest()):
        assert time.monotonic() < deadline, sorted((t, v.get("name")) for t, v in tasks.items())
        time.sleep(0.5)
    names = {t.get("name") for t in tasks.values()}
    assert not names & HOUSEKEEPING, names
    assert tasks[f"{job_id}.webhook.1"]["name"] == "toolqueue.deliver_webhook"


def test_a_connected_account_leaves_no_secret_in_flower(flower, api, fresh_sandbox, receiver,
                                                         workers):  # fmt: skip
    """Connect's secrets: the OAuth app's client secret, the tokens the callback stored, and
    the connect link's token; the account.connected event and a job on the account go
    through Celery, and none of them reaches Flower or the logs."""
    from connectkit import Browser, oauth_app, sealed_tokens, session
    from support import wait_until

    from app.kernel.redis import get_redis

    app = oauth_app(api, fresh_sandbox, "hubspot")
    link = session(api, "hubspot", events_url=receiver.url).json()["connect_url"]
    account = Browser().connect(link)["account_id"]
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"], max_pages=1)
    assert api.wait(job["job_id"])["status"] == "succeeded"
    receiver.wait(1)  # account.connected, delivered by a task

    def seen() -> str | None:
        tasks = flower.get("/api/tasks", params={"limit": 100000})
        ended = tasks.json().get(job["job_id"], {}).get("state") == "SUCCESS"
        return tasks.text if ended else None

    raw = wait_until(seen, 30, 0.2)
    assert job["job_id"] in raw
    secrets = {"client secret": app["client_secret"], "connect token": link.rsplit("/", 1)[1],
               **sealed_tokens(get_redis(), account)}  # fmt: skip
    logs = workers.logs() + flower.log()
    for what, secret in secrets.items():
        assert secret and len(secret) >= 16, what
        assert secret not in raw, f"{what} appears in Flower's /api/tasks"
        assert secret not in logs, f"{what} appears in a log"
