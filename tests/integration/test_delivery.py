"""Webhook delivery worth trusting: retries under one webhook-id, 410, Retry-After, parked long
delays, redelivery, the dead-letter list and secret rotation. Real workers, beat and API; the
test env's schedule is [0, 0.5, 1] and its visibility timeout 10 s (tests/conftest.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook
from support import free_port, wait_until

from app.kernel import keys


class Scripted:
    """A loopback receiver answering from a script of (status, headers[, delay s]), then 200;
    it records each request with its arrival time (monotonic)."""

    def __init__(self, script: list[tuple[Any, ...]] | None = None,
                 port: int = 0) -> None:
        self.script = list(script or [])
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                                       "body": body, "t": time.monotonic()})
                status, headers, *delay = outer.script.pop(0) if outer.script else (200, {})
                if delay:
                    time.sleep(delay[0])  # a slow receiver (the test's, not a worker)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        wait_until(lambda: len(self.requests) >= n, timeout)
        return self.requests

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Any]:
    made: list[Scripted] = []

    def make(script: list[tuple[Any, ...]] | None = None, port: int = 0) -> Scripted:
        made.append(Scripted(script, port))
        return made[-1]

    yield make
    for s in made:
        s.close()


def _job(api: Any, sandbox: Any, url: str, **body: Any) -> str:
    account = api.account(sandbox)
    return api.call(account_id=account, args={"limit": 10}, fields=["id"], callback_url=url,
                    **body)["job_id"]


def _log(api: Any, job_id: str) -> list[dict[str, Any]]:
    return api.get(f"/v1/jobs/{job_id}/deliveries").json()["deliveries"]


def _verify(secret: str, hook: dict[str, Any]) -> dict[str, Any]:
    return Webhook(secret).verify(hook["body"], hook["headers"])


def test_receiver_down_gets_the_event_later_under_one_id(api, fresh_sandbox, scripted):
    port = free_port()  # nothing listens yet: the first attempts are refused
    job_id = _job(api, fresh_sandbox, f"http://127.0.0.1:{port}/hook")
    wait_until(lambda: len(_log(api, job_id)) >= 1, 30)
    rec = scripted(port=port)  # then up (the schedule's next delay is 0.5 s)
    hooks = rec.wait(1, timeout=15)
    wait_until(lambda: _log(api, job_id)[-1]["status_code"] == 200, 10)
    log = _log(api, job_id)
    assert log[0]["status_code"] is None and log[0]["error"] == "ConnectionError"
    assert len(hooks) == 1 and [e["status_code"] for e in log][-1] == 200
    assert {h["headers"]["webhook-id"] for h in hooks} == {f"msg_{job_id}"}
    for h in hooks:
        assert _verify(api.tenant["webhook_secret"], h)["type"] == "job.succeeded"
    assert api.get("/v1/webhooks/dead-letters").json()["dead_letters"] == []


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(api, fresh_sandbox, scripted):
    """An attempt gives up at TOOLQUEUE_WEBHOOK_TIMEOUT_S (15 s; 2 s in the test env); the next
    one, under the same webhook-id, is delivered. The log keeps each attempt's time, status,
    latency and error."""
    rec = scripted([(200, {}, 3.5)])  # it would answer, but after the timeout
    job_id = _job(api, fresh_sandbox, rec.url)
    wait_until(lambda: (log := _log(api, job_id)) and log[-1]["status_code"] == 200, 30)
    log = _log(api, job_id)
    assert [e["status_code"] for e in log] == [None, 200]
    assert log[0]["error"] == "ReadTimeout" and 2000 <= log[0]["latency_ms"] < 3500
    assert log[1]["error"] in ("", None) and log[1]["latency_ms"] < 2000
    assert log[0]["at"] <= log[1]["at"] and log[0]["at"].endswith("Z")
    hooks = rec.wait(2)
    assert {h["headers"]["webhook-id"] for h in hooks} == {f"msg_{job_id}"}


def test_410_disables_the_endpoint_and_dead_letters(api, fresh_sandbox, scripted):
    rec = scripted([(410, {})])
    job_id = _job(api, fresh_sandbox, rec.url)
    rec.wait(1)
    dead = wait_until(lambda: api.get("/v1/webhooks/dead-letters").json()["dead_letters"], 10)
    time.sleep(2)  # the compressed schedule would have tried twice more by now
    assert len(rec.requests) == 1
    log = _log(api, job_id)
    assert len(log) == 1 and log[0]["status_code"] == 410 and log[0]["disabled"] is True
    assert dead == [{**dead[0], "job_id": job_id, "event": "delivery.disabled",
                     "type": "job.succeeded", "last_status_code": 410, "attempts": 1,
                     "webhook_id": f"msg_{job_id}"}]


def test_429_retry_after_is_honoured(api, fresh_sandbox, scripted):
    rec = scripted([(429, {"Retry-After": "1"})])
    job_id = _job(api, fresh_sandbox, rec.url)
    first, second = rec.wait(2, timeout=15)
    assert second["t"] - first["t"] >= 1.0  # not the schedule's 0.5 s
    assert second["headers"]["webhook-id"] == first["headers"]["webhook-id"]
    assert _log(api, job_id)[0]["next_attempt_in_s"] == 1.0


def test_long_retry_is_parked_not_a_countdown_and_fires_on_time(api, fresh_sandbox, scripted,
                                                                 r):
    # 6 s > visibility timeout (10 s) / 2: a countdown would be redelivered early by Redis
    rec = scripted([(503, {"Retry-After": "6"})])
    job_id = _job(api, fresh_sandbox, rec.url)
    first = rec.wait(1)[0]

    work = keys.webhook_work(job_id)

    def parked() -> float | None:  # attempt 1 pending, parked (no message), due at its time
        return r.zscore(keys.DUE, work) if r.hget(keys.PENDING, work) == "1:p:0" else None

    wake = wait_until(parked, 5) - time.time() + time.monotonic()  # on the receiver's clock
    assert 6.0 <= wake - first["t"] <= 6.5
    second = rec.wait(2, timeout=15)[1]
    assert 6.0 <= second["t"] - first["t"] <= 8.5  # beat wakes parked retries every second
    # delivered: nothing pending any more (the deliverer settles it once the answer is in,
    # just after the receiver recorded the request)
    wait_until(lambda: r.hget(keys.PENDING, work) is None, 5, 0.05)
    time.sleep(1)
    assert len(rec.requests) == 2  # delivered once, no early redelivery
    _verify(api.tenant["webhook_secret"], second)


def test_redeliver_by_hand(api, fresh_sandbox, scripted):
    rec = scripted()
    job_id = _job(api, fresh_sandbox, rec.url)
    first = rec.wait(1)[0]
    time.sleep(1.1)  # timestamps are whole seconds
    resp = api.post(f"/v1/jobs/{job_id}/deliveries/redeliver")
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"job_id": job_id, "webhook_id": f"msg_{job_id}", "status": "queued"}
    second = rec.wait(2)[1]
    assert second["headers"]["webhook-id"] == first["headers"]["webhook-id"]
    assert int(second["headers"]["webhook-timestamp"]) > int(first["headers"]["webhook-timestamp"])
    assert _verify(api.tenant["webhook_secret"], second)["type"] == "job.succeeded"
    wait_until(lambda: len(_log(api, job_id)) == 2, 10)
    log = _log(api, job_id)
    assert log[1]["manual"] == "redeliver" and log[1]["status_code"] == 200

    # refused: a job without callback_url, a job still running, another tenant's job (404)
    account = api.account(fresh_sandbox)
    plain = api.call(account_id=account, args={"limit": 10})["job_id"]
    api.wait(plain)
    resp = api.post(f"/v1/jobs/{plain}/deliveries/redeliver")
    assert resp.status_code == 409 and resp.json()["error"] == "no_callback_url"
    fresh_sandbox.config(latency_ms=300)
    running = api.call(account_id=account, args={"limit": 100}, callback_url=rec.url)["job_id"]
    resp = api.post(f"/v1/jobs/{running}/deliveries/redeliver")
    assert resp.status_code == 409 and resp.json()["error"] == "job_not_finished"
    api.post(f"/v1/jobs/{running}/cancel")
    assert api.post("/v1/jobs/nope/deliveries/redeliver").status_code == 404


def test_a_landed_redelivery_ends_the_scheduled_series(api, fresh_sandbox, scripted):
    rec = scripted([(503, {"Retry-After": "3"})])  # the series' next attempt: 3 s later
    job_id = _job(api, fresh_sandbox, rec.url)
    rec.wait(1)
    assert api.post(f"/v1/jobs/{job_id}/deliveries/redeliver").status_code == 202
    assert rec.wait(2)[1]["headers"]["webhook-id"] == f"msg_{job_id}"
    time.sleep(4)  # past the scheduled attempt's time
    assert len(rec.requests) == 2  # the receiver has it: the series did not send it again
    assert [e.get("manual") for e in _log(api, job_id)] == [None, "redeliver"]


def test_exhaustion_dead_letters_and_replay_delivers(api, fresh_sandbox, scripted):
    rec = scripted([(500, {})] * 3 + [(302, {"Location": "http://127.0.0.1:1/"})])
    events = scripted()  # the account's events_url
    tokens = fresh_sandbox.mint()
    resp = api.post("/v1/accounts", {
        "vendor": "hubspot", "name": "x", "base_url": f"{fresh_sandbox.url}/hubspot",
        "events_url": events.url,
        "credentials": {"type": "bearer", "token": tokens["access_token"]}})  # fmt: skip
    assert resp.status_code == 201, resp.text
    job_id = api.call(account_id=resp.json()["account_id"], args={"limit": 10},
                      callback_url=rec.url)["job_id"]  # fmt: skip
    rec.wait(3)
    dead = wait_until(lambda: api.get("/v1/webhooks/dead-letters").json()["dead_letters"], 10)
    assert dead[0]["job_id"] == job_id and dead[0]["event"] == "delivery.exhausted"
    assert dead[0]["attempts"] == 3 and dead[0]["last_status_code"] == 500
    assert dead[0]["last_error"] == "receiver answered 500"
    # ... and `delivery.exhausted` goes, signed, to the account's events_url
    exhausted = _verify(api.tenant["webhook_secret"], events.wait(1)[0])
    assert exhausted["type"] == "delivery.exhausted"
    assert exhausted["data"]["dead_letter"] == dead[0]

    # a replay that fails (a 3xx: redirects are not followed) leaves it in the list
    assert api.post(f"/v1/webhooks/dead-letters/{job_id}/replay").status_code == 202
    rec.wait(4)
    wait_until(lambda: len(_log(api, job_id)) == 4, 10)
    assert _log(api, job_id)[3]["status_code"] == 302
    assert [d["job_id"] for d in api.get("/v1/webhooks/dead-letters").json()["dead_letters"]] \
        == [job_id]
    # the next one lands and clears it
    assert api.post(f"/v1/webhooks/dead-letters/{job_id}/replay").status_code == 202
    hook = rec.wait(5)[4]
    assert _verify(api.tenant["webhook_secret"], hook)["type"] == "job.succeeded"
    assert hook["headers"]["webhook-id"] == f"msg_{job_id}"
    wait_until(lambda: not api.get("/v1/webhooks/dead-letters").json()["dead_letters"], 10)
    resp = api.post(f"/v1/webhooks/dead-letters/{job_id}/replay")
    assert resp.status_code == 404 and resp.json()["error"] == "dead_letter_not_found"
    time.sleep(1.5)
    assert len(rec.requests) == 5  # replays are single attempts: no series of their own


def test_secret_rotation_signs_with_both_during_the_overlap(api, fresh_sandbox, scripted, r):
    old = api.tenant["webhook_secret"]
    resp = api.post("/v1/tenants/me/webhook-secret/rotate")
    assert resp.status_code == 200, resp.text
    new = resp.json()["webhook_secret"]
    assert new.startswith("whsec_") and new != old
    assert resp.json()["overlap_s"] == 86400
    record = r.hgetall(keys.tenant(api.tenant["tenant_id"]))
    assert old[6:] not in json.dumps(record) and new[6:] not in json.dumps(record)  # sealed
    rec = scripted()
    _job(api, fresh_sandbox, rec.url)
    hook = rec.wait(1)[0]
    assert len(hook["headers"]["webhook-signature"].split(" ")) == 2
    assert _verify(old, hook) == _verify(new, hook)

    # once the overlap is over, only the new secret signs
    r.hset(keys.tenant(api.tenant["tenant_id"]), "webhook_secret_prev_until", 0)
    _job(api, fresh_sandbox, rec.url)
    hook = rec.wait(2)[1]
    assert len(hook["headers"]["webhook-signature"].split(" ")) == 1
    _verify(new, hook)
    with pytest.raises(Exception, match="signature"):
        _verify(old, hook)

