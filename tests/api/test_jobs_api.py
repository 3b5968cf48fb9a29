"""/v1/jobs and /v1/tools over real HTTP: enqueue-before-call, idempotency, cancel, result."""

from __future__ import annotations

import ast
import json
import time
import uuid

ALL_IDS = [str(i) for i in range(1, 1001)]


def test_enqueue_answers_202_before_any_vendor_call(api, fresh_sandbox, api_requests,
                                                     live_workers, r):
    account = api.account(fresh_sandbox)
    live_workers.stop_all()
    try:
        resp = api.post("/v1/jobs", {"tool": "hubspot.contacts.list", "account_id": account,
                                     "args": {"limit": 100}, "fields": ["id"]})
        assert resp.status_code == 202, resp.text
        body = resp.json()
        job_id = body["job_id"]
        assert body["status"] == "queued"
        assert resp.headers["Location"] == f"/v1/jobs/{job_id}"

        time.sleep(1.0)  # nothing may reach the vendor while no worker runs
        assert api_requests() == []
        job = api.get(resp.headers["Location"]).json()
        assert job["status"] == "queued" and job["progress"]["pages"] == 0
        assert job["started_at"] is None

        early = api.get(f"/v1/jobs/{job_id}/result")
        assert early.status_code == 409, early.text
        assert early.json()["error"] == "job_not_finished"
        assert early.json()["status"] == "queued"
        assert early.json()["message"]

        # The first step is a Celery message whose task id is the job id; it waits in the
        # interactive lane's queue and carries no secret (only the job id and step number).
        messages = [json.loads(m) for m in r.lrange("interactive", 0, -1)]
        mine = [m for m in messages if m["headers"]["id"] == job_id]
        assert len(mine) == 1, messages
        assert mine[0]["headers"]["task"] == "toolqueue.step"
        assert ast.literal_eval(mine[0]["headers"]["argsrepr"]) == [job_id, 0]
    finally:
        live_workers.start()

    done = api.wait(job_id)
    assert done["status"] == "succeeded", done
    assert [rec["id"] for rec in api.result(job_id)["records"]] == ALL_IDS
    assert len(api_requests()) == 10


def test_enqueue_does_not_wait_for_a_slow_vendor(api, fresh_sandbox, api_requests, r, until):
    fresh_sandbox.config(latency_ms=3000)
    account = api.account(fresh_sandbox)
    started = time.monotonic()
    resp = api.post("/v1/jobs", {"tool": "hubspot.contacts.list", "account_id": account,
                                 "fields": ["id"]})
    elapsed = time.monotonic() - started
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "queued"
    assert elapsed < 1.5, f"enqueue took {elapsed:.2f}s: it waited on the vendor"
    assert api_requests() == []  # none completed (a request is logged when it completes)
    job_id = resp.json()["job_id"]
    assert api.post(f"/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    # Let a step that was already waiting on the vendor finish, so its late request does not
    # land in the next test's sandbox log.
    from app.kernel import keys

    time.sleep(0.5)
    until(lambda: not r.exists(keys.job_lease(job_id)), 10)


def test_result_is_409_while_running(api, fresh_sandbox):
    fresh_sandbox.config(latency_ms=300)
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    api.wait(job["job_id"], states=("running",), timeout=15)
    resp = api.get(f"/v1/jobs/{job['job_id']}/result")
    assert resp.status_code == 409, resp.text
    body = resp.json()
    assert body["error"] == "job_not_finished"
    assert body["status"] == "running"
    assert isinstance(body["message"], str) and body["message"]
    assert api.wait(job["job_id"])["status"] == "succeeded"


def test_partial_read_while_running_and_bad_cursors(api, other_api, fresh_sandbox):
    fresh_sandbox.config(latency_ms=300)
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    job_id = job["job_id"]
    api.wait(job_id, states=("running",), timeout=15)
    # without `after`: still 409 while it runs; with it: what is spooled so far
    assert api.get(f"/v1/jobs/{job_id}/result").status_code == 409
    resp = api.get(f"/v1/jobs/{job_id}/result", params={"after": "p:0.0"})
    assert resp.status_code == 200, resp.text
    part = resp.json()
    assert part["done"] is False and part["status"] == "running"
    assert part["continuation"] == f"p:0.{len(part['records']) // 100}"
    assert set(part["progress"]) == {"pages", "records", "bytes", "blocks"}

    for bad in ("0", "p:0", "p:x.1", "p:00.1", "p:-1.0", "tqc_" + "x" * 43, "x" * 500):
        resp = api.get(f"/v1/jobs/{job_id}/result", params={"after": bad})
        assert resp.status_code == 422, (bad, resp.text)  # InvalidInput, like unknown_tool
        body = resp.json()
        assert body["error"] == "invalid_continuation" and "p:<block>.<run>" in body["message"]
    resp = api.get(f"/v1/jobs/{job_id}/result", params={"after": "p:5.0"})
    assert resp.status_code == 404 and resp.json()["error"] == "block_not_found"
    # another tenant: the same 404 as for a job that does not exist
    resp = other_api.get(f"/v1/jobs/{job_id}/result", params={"after": "p:0.0"})
    assert resp.status_code == 404 and resp.json()["error"] == "job_not_found"

    assert api.wait(job_id)["status"] == "succeeded"
    end = api.get(f"/v1/jobs/{job_id}/result", params={"after": part["continuation"]}).json()
    assert end["done"] is True and "continuation" not in end
    assert part["records"] + end["records"] == [{"id": i} for i in ALL_IDS]


def test_idempotency_key_same_tenant_one_job(api, fresh_sandbox, api_requests):
    account = api.account(fresh_sandbox)
    key = f"idem-{uuid.uuid4()}"
    call = {"account_id": account, "args": {"limit": 100}, "fields": ["id"],
            "idempotency_key": key}
    first = api.call(**call)
    second = api.call(**call)
    assert second["job_id"] == first["job_id"]
    done = api.wait(first["job_id"])
    assert done["status"] == "succeeded", done
    third = api.post("/v1/jobs", {"tool": "hubspot.contacts.list", **call})
    assert third.status_code == 202 and third.json()["job_id"] == first["job_id"]
    assert third.headers["Location"] == f"/v1/jobs/{first['job_id']}"
    time.sleep(1.0)  # a duplicate job, if one had been started, would be paging by now
    calls = api_requests()
    assert len(calls) == 10, calls  # one traversal of 1000 contacts at 100 per page
    assert sum(1 for c in calls if "after=" not in c["query"]) == 1
    assert [rec["id"] for rec in api.result(first["job_id"])["records"]] == ALL_IDS


def test_idempotency_key_is_per_tenant(api, other_api, fresh_sandbox):
    key = f"idem-{uuid.uuid4()}"
    mine = api.call(account_id=api.account(fresh_sandbox), args={"limit": 100},
                    fields=["id"], idempotency_key=key)
    theirs = other_api.call(account_id=other_api.account(fresh_sandbox),
                            args={"limit": 100}, fields=["id"], idempotency_key=key)
    assert theirs["job_id"] != mine["job_id"]
    assert api.wait(mine["job_id"])["status"] == "succeeded"
    assert other_api.wait(theirs["job_id"])["status"] == "succeeded"
    assert other_api.get(f"/v1/jobs/{mine['job_id']}").status_code == 404


def test_cancel_mid_way_stops_vendor_calls_and_keeps_partial_result(
    api, fresh_sandbox, api_requests, until, receiver
):
    fresh_sandbox.config(latency_ms=200)
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 10}, fields=["id"],
                   callback_url=receiver.url)  # 100 pages at 0.2 s: ~20 s uncancelled
    job_id = job["job_id"]
    until(lambda: api.get(f"/v1/jobs/{job_id}").json()["progress"]["pages"] >= 4, 20)

    resp = api.post(f"/v1/jobs/{job_id}/cancel")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "cancelled"

    time.sleep(1.0)  # the page in flight at cancel time may still land
    settled = len(api_requests())
    time.sleep(2.0)  # ten more pages' worth of time
    assert len(api_requests()) == settled, "vendor requests continued after cancel"
    assert settled < 100

    view = api.get(f"/v1/jobs/{job_id}").json()
    assert view["status"] == "cancelled"
    assert view["finished_at"] is not None
    assert any(h["status"] == "cancelled" for h in view["history"])
    body = api.result(job_id)
    assert body["status"] == "cancelled"
    ids = [rec["id"] for rec in body["records"]]
    assert ids == ALL_IDS[: len(ids)]  # a prefix, in order, no duplicates
    assert 40 <= len(ids) < 1000
    assert body["record_count"] == len(ids) == view["progress"]["records"]

    hook = receiver.wait(1)[0]
    assert json.loads(hook["body"])["type"] == "job.cancelled"

    again = api.post(f"/v1/jobs/{job_id}/cancel")  # cancelling twice is harmless
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_cancel_finished_job_is_409(api, fresh_sandbox):
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    assert api.wait(job["job_id"])["status"] == "succeeded"
    resp = api.post(f"/v1/jobs/{job['job_id']}/cancel")
    assert resp.status_code == 409, resp.text
    body = resp.json()
    assert body["error"] == "job_already_finished"
    assert body["message"]
    assert api.get(f"/v1/jobs/{job['job_id']}").json()["status"] == "succeeded"


def test_tools_lists_hubspot_contacts_with_schema(api):
    resp = api.get("/v1/tools")
    assert resp.status_code == 200, resp.text
    tools = {t["name"]: t for t in resp.json()["tools"]}
    tool = tools["hubspot.contacts.list"]
    assert tool["vendors"] == ["hubspot"]
    assert tool["description"]
    schema = tool["input_schema"]
    assert schema["type"] == "object"
    props = schema["properties"]
    assert props["properties"]["type"] == "array"
    assert props["properties"]["items"]["type"] == "string"
    assert props["limit"]["type"] == "integer"
    assert props["limit"]["maximum"] == 100
    assert props["limit"]["minimum"] == 1
    assert schema.get("additionalProperties") is False


def test_job_view_shape(api, fresh_sandbox):
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100, "properties": ["email"]},
                   fields=["id", "properties.email"])
    assert job["tool"] == "hubspot.contacts.list" and job["account_id"] == account
    done = api.wait(job["job_id"])
    assert done["job_id"] == job["job_id"]
    assert done["progress"] == {"pages": 10, "records": 1000, "bytes": done["progress"]["bytes"],
                                "blocks": 1}
    statuses = [h["status"] for h in done["history"]]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses
    body = api.result(job["job_id"])
    assert set(body["records"][0]) == {"id", "properties"}
    assert set(body["records"][0]["properties"]) == {"email"}
