"""Redis unreachable, for real: the session's redis-server is paused (SIGSTOP: connections open
but nothing answers) and then stopped (connections refused) while requests go to several
routes. Every answer is a 503 `store_unavailable` with `Retry-After` (an MCP `tools/call` a tool
error with that code), none a 500, each within the API's stated bound; afterwards the API
works again. The server is shared by the whole session, so each test puts it back and makes
sure the workers still answer."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest
import requests
from support import answers_ping, live, refresh_broker_connections, wait_until

from app.kernel.redis import API

BOUND_S = API.bound_s()  # 6.1 s: the longest one Redis command of the API waits
MCP_HEADERS = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}  # fmt: skip


@contextlib.contextmanager
def paused(redis_server: Any) -> Iterator[None]:
    """SIGSTOP the redis-server, SIGCONT it whatever happens."""
    os.kill(redis_server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(redis_server.pid, signal.SIGCONT)


def tools_call(rpc_id: int, account: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rpc_id, "method": "tools/call",
            "params": {"name": "hubspot_contacts_list",
                       "arguments": {"account_id": account, "args": {"limit": 10}}}}  # fmt: skip


def probes(api: Any, job_id: str, account: str) -> dict[str, tuple[requests.Response, float]]:
    """The same requests to several routes at once: name -> (answer, seconds it took)."""
    post_job = {"tool": "hubspot.contacts.list", "account_id": account, "args": {"limit": 10},
                "idempotency_key": f"outage-{time.time_ns()}"}  # fmt: skip
    calls = {
        "get_job": lambda: api.get(f"/v1/jobs/{job_id}", timeout=30),
        "tools": lambda: api.get("/v1/tools", params={"format": "openai"}, timeout=30),
        "post_job": lambda: api.s.post(api.url + "/v1/jobs", json=post_job, timeout=30),
        "healthz": lambda: requests.get(api.url + "/healthz", timeout=30),
        "mcp_tools_call": lambda: api.s.post(api.url + "/mcp", json=tools_call(3, account),
                                             headers=MCP_HEADERS, timeout=30),  # fmt: skip
        "mcp_tools_list": lambda: api.s.post(
            api.url + "/mcp", json={"jsonrpc": "2.0", "id": 4, "method": "tools/list"},
            headers=MCP_HEADERS, timeout=30),  # fmt: skip
    }

    def timed(fn: Any) -> tuple[requests.Response, float]:
        start = time.monotonic()
        resp = fn()
        return resp, time.monotonic() - start

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = {name: pool.submit(timed, fn) for name, fn in calls.items()}
        return {name: f.result() for name, f in futures.items()}


def assert_unavailable(answers: dict[str, tuple[requests.Response, float]], within: float) -> None:
    for name, (resp, took) in answers.items():
        assert resp.status_code != 500, (name, resp.text[:300])
        assert took < within, (name, f"{took:.1f} s")
        assert int(resp.headers["Retry-After"]) >= 1, (name, resp.headers)
        body = resp.json()
        if name == "mcp_tools_call":  # a tool error the model reads, on a 200 JSON-RPC result
            assert resp.status_code == 200, (name, resp.text[:300])
            assert body["id"] == 3 and body["result"]["isError"] is True, body
            error = body["result"]["structuredContent"]
        elif name == "mcp_tools_list":  # a JSON-RPC error an MCP client surfaces
            assert resp.status_code == 503, (name, resp.text[:300])
            assert body["id"] == 4, body
            error = body["error"]["data"]
        else:
            assert resp.status_code == 503, (name, resp.text[:300])
            error = body
        assert error["error"] == "store_unavailable", (name, body)
        assert error["message"] and error["retry_after_s"] >= 1, (name, body)


def assert_works_again(api: Any, account: str, job_id: str) -> None:
    wait_until(lambda: api.get(f"/v1/jobs/{job_id}").status_code == 200, 20, 0.2)
    assert requests.get(api.url + "/healthz", timeout=10).status_code in (200, 503)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    assert api.wait(job["job_id"], 60)["status"] == "succeeded"


def recover_workers(workers: Any) -> None:
    """After a Redis restart: a worker that neither reconnects nor exits is replaced (celery
    5.7 may lose one; see tests/integration/test_durability.py)."""
    running = live(workers)
    with contextlib.suppress(AssertionError):
        wait_until(lambda: all(p.proc.poll() is not None or answers_ping(p) for p in running),
                   20, 0.2)  # fmt: skip
    died = [p for p in running if p.proc.poll() is not None or not answers_ping(p)]
    for p in died:
        p.stop()
    workers.procs = live(workers)
    workers.ensure()


@pytest.fixture
def objects(api: Any, fresh_sandbox: Any) -> tuple[str, str]:
    """An account of the tenant and one of its finished jobs."""
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    assert api.wait(job["job_id"])["status"] == "succeeded"
    return account, job["job_id"]


def test_a_paused_redis_gets_503s_within_the_bound_and_the_api_recovers(
    api, redis_server, live_workers, objects
):
    account, job_id = objects
    with paused(redis_server):
        answers = probes(api, job_id, account)
    assert_unavailable(answers, within=BOUND_S + 1.5)
    assert_works_again(api, account, job_id)


def test_a_stopped_redis_gets_503s_at_once_and_the_api_recovers(
    api, api_url, redis_server, live_workers, objects
):
    from app.mcp.client import connect

    account, job_id = objects

    async def through_the_sdk() -> Any:
        """The official MCP client, connected while Redis was up, calls a tool during the
        outage: the tool error reaches the caller as a result, not a transport failure."""
        async with connect(api_url, api.tenant["api_key"]) as client:
            redis_server.stop()
            return await client.call_tool("hubspot_contacts_list", {"account_id": account})

    try:
        result = anyio.run(through_the_sdk)
        answers = probes(api, job_id, account)
    finally:
        if not redis_server.running:
            redis_server.start()
        refresh_broker_connections()
        recover_workers(live_workers)
    assert result.is_error and result.structured_content["error"] == "store_unavailable", result
    assert_unavailable(answers, within=2.0)
    assert_works_again(api, account, job_id)


def test_an_enqueue_storm_through_a_pause_leaves_no_job_its_caller_cannot_name(
    api, redis_server, live_workers, objects
):
    """Six clients enqueue while Redis pauses for 8 s (longer than the API waits): every
    answer is a 202 or a 503, never a 500, and every job that exists is one its caller was
    told of. A create Redis runs after its caller would stop waiting is refused as late
    (app/work/launch.py): its 503 created nothing. A create sent just before the pause may
    have run unanswered: its 503 names the job (`job_id`), and the same request again finds
    it. So a 503 whose job does not exist left no idempotency key, and one whose job exists
    is named and replays to it."""
    from app.kernel import keys
    from app.kernel.crypto import digest
    from app.kernel.redis import get_redis

    account, setup_job = objects
    tenant = api.tenant["tenant_id"]
    answers: list[tuple[dict[str, Any], int, dict[str, Any]]] = []
    stop = time.monotonic() + 12

    def client(n: int) -> None:
        session = requests.Session()
        session.headers.update(api.s.headers)
        i = 0
        while time.monotonic() < stop:
            key = f"storm-{n}-{i}-{time.time_ns()}"
            body = {"tool": "hubspot.contacts.list", "account_id": account,
                    "args": {"limit": 1}, "max_pages": 1, "idempotency_key": key}  # fmt: skip
            resp = session.post(api.url + "/v1/jobs", json=body, timeout=30)
            answers.append((body, resp.status_code, resp.json()))
            i += 1
            time.sleep(0.1)

    with ThreadPoolExecutor(6) as pool:
        futures = [pool.submit(client, n) for n in range(6)]
        time.sleep(2)
        with paused(redis_server):
            time.sleep(8)
        for f in futures:
            f.result()
    statuses = [status for _, status, _ in answers]
    assert set(statuses) <= {202, 503}, sorted(set(statuses))
    assert statuses.count(503) >= 3 and statuses.count(202) >= 20, statuses
    assert all(body["error"] == "store_unavailable" for _, s, body in answers if s == 503)
    r = get_redis()
    answered = {body["job_id"] for _, status, body in answers if status == 202}
    named: set[str] = set()
    for sent, status, body in answers:
        idem = bool(r.exists(keys.idempotency(tenant, digest(sent["idempotency_key"]))))
        if status == 202:
            assert idem, sent
            continue
        exists = "job_id" in body and bool(r.exists(keys.job(body["job_id"])))
        assert idem == exists, (sent, body)  # a 503 created nothing, or names what it made
        if exists:
            named.add(body["job_id"])
            again = api.s.post(api.url + "/v1/jobs", json=sent, timeout=30)
            assert again.status_code == 202, again.text
            assert again.json()["job_id"] == body["job_id"]
            assert again.json()["idempotent_replay"] is True
    indexed = set(r.zrange(keys.tenant_jobs(tenant), 0, -1)) - {setup_job}
    assert indexed == answered | named
    for job_id in indexed:
        assert api.wait(job_id, 60)["status"] == "succeeded"
