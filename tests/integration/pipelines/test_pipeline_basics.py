"""A pipeline end to end on real workers and the sandbox: HubSpot contacts → map → filter →
Salesforce upsert, every record written once; the stages overlap; the webhook fires once at
the end, signed; cancel stops every stage."""

from __future__ import annotations

import time
from typing import Any

from pipelinekit import EXT, definition, sf_effects, stage, start, view, wait
from standardwebhooks import Webhook
from support import wait_until


def test_a_pipeline_reads_maps_and_upserts_every_record_once(api: Any, fresh_sandbox: Any) -> None:
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    pid = start(api, definition(src, dst))
    done = wait(api, pid)
    assert done["status"] == "succeeded", done
    source, mapped, kept, sink = done["stages"]
    assert [s["kind"] for s in done["stages"]] == ["source", "map", "filter", "sink"]
    assert (source["in"], source["out"]) == (1000, 1000)
    assert (mapped["in"], mapped["out"], kept["in"], kept["out"]) == (1000, 1000, 1000, 1000)
    assert (sink["in"], sink["out"], sink["rejected"]) == (1000, 1000, 0)
    assert all(s["state"] == "done" for s in done["stages"]), done["stages"]
    assert done["rejected"] == 0 and done["finished_at"] and done["started_at"]
    job = api.get(f"/v1/jobs/{sink['job_id']}").json()
    assert job["pipeline"] == {"pipeline_id": pid, "stage": 3, "kind": "sink", "block": "0"}
    per_object = sf_effects(fresh_sandbox)["per_object"]
    assert len(per_object) == 1000
    assert all(c["create"] == 1 and c["update"] == 0 for c in per_object.values())
    written = {e["fields"][EXT]: e["fields"] for e in sf_effects(fresh_sandbox)["effects"]}
    assert set(written) == {str(i) for i in range(1, 1001)}
    # the sink receives what the maps set, nothing the source read besides
    assert set(written["7"]) == {"Email", EXT, "LastName"}


def test_the_sink_writes_while_the_source_is_still_reading(api: Any, fresh_sandbox: Any) -> None:
    fresh_sandbox.config(hubspot_contacts=5000, rate_budgets={"hubspot": 12})
    try:
        src = api.account(fresh_sandbox, "hubspot")
        dst = api.account(fresh_sandbox, "salesforce")
        pid = start(api, definition(src, dst))
        done = wait(api, pid, 180)
        assert done["status"] == "succeeded", done
        assert stage(done, "sink")["out"] == 5000
        reads = [e["t"] for e in fresh_sandbox.requests("hubspot") if e["status"] == 200]
        writes = [e["t"] for e in fresh_sandbox.requests("salesforce") if e["method"] == "PATCH"]
        assert len(reads) == 50 and len(writes) >= 25
        assert min(writes) < max(reads), "the sink waited for the whole source"
        overlap = sum(t < max(reads) for t in writes)
        print(f"overlap: {overlap} of {len(writes)} writes before the source's last read")
    finally:
        fresh_sandbox.config(hubspot_contacts=1000, rate_budgets={})


def test_the_webhook_fires_once_at_the_end_signed(
    api: Any, fresh_sandbox: Any, receiver: Any
) -> None:
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    pid = start(api, definition(src, dst, callback_url=receiver.url))
    done = wait(api, pid)
    assert done["status"] == "succeeded"
    got = receiver.wait(1)
    time.sleep(1.5)  # a second event would come by now
    assert len(receiver.requests) == 1
    event = receiver.events()[0]
    assert event["type"] == "pipeline.succeeded"
    assert event["data"]["pipeline_id"] == pid
    assert [s["out"] for s in event["data"]["stages"]] == [1000, 1000, 1000, 1000]
    headers = got[0]["headers"]
    assert headers["webhook-id"] == f"msg_evt_{pid}"
    verified = Webhook(api.tenant["webhook_secret"]).verify(got[0]["body"], headers)
    assert verified["type"] == "pipeline.succeeded"
    log = api.get(f"/v1/pipelines/{pid}/deliveries").json()
    assert [(d["attempt"], d["status_code"]) for d in log["deliveries"]] == [(1, 200)]


def test_cancel_stops_every_stage(api: Any, fresh_sandbox: Any) -> None:
    fresh_sandbox.config(hubspot_contacts=5000, rate_budgets={"hubspot": 5})
    try:
        src = api.account(fresh_sandbox, "hubspot")
        dst = api.account(fresh_sandbox, "salesforce")
        pid = start(api, definition(src, dst))
        wait_until(lambda: stage(view(api, pid), "sink")["in"] > 0, 60, 0.2)
        resp = api.post(f"/v1/pipelines/{pid}/cancel")
        assert resp.status_code == 200, resp.text
        assert resp.json()["status"] == "cancelled"
        source_job = stage(resp.json(), "source")["job_id"]
        assert api.get(f"/v1/jobs/{source_job}").json()["status"] == "cancelled"
        reads = len(fresh_sandbox.requests("hubspot"))
        writes = len(fresh_sandbox.requests("salesforce"))
        time.sleep(3)
        assert len(fresh_sandbox.requests("hubspot")) <= reads + 1  # at most the one in flight
        assert len(fresh_sandbox.requests("salesforce")) <= writes + 1
        after = view(api, pid)
        assert after["status"] == "cancelled"
        assert all(s["state"] in ("cancelled", "done") for s in after["stages"]), after["stages"]
        again = api.post(f"/v1/pipelines/{pid}/cancel")
        assert again.status_code == 200 and again.json()["status"] == "cancelled"
    finally:
        fresh_sandbox.config(hubspot_contacts=1000, rate_budgets={})


def test_an_operators_registered_python_transform_runs_as_a_stage(
    api: Any, fresh_sandbox: Any
) -> None:
    """`normalize_email` is registered by entry point (pyproject's `toolqueue.transforms`);
    pointed at a field that holds no email it rejects every record, with its reason."""
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    body = definition(src, dst)
    body["stages"].append({"transform": {"name": "normalize_email", "options": {"field": "Email"}}})
    done = wait(api, start(api, body))
    assert done["status"] == "succeeded", done
    assert stage(done, "transform")["out"] == 1000
    body["stages"][-1]["transform"]["options"]["field"] = "LastName"
    pid = start(api, body)
    done = wait(api, pid)
    assert done["status"] == "partly_done", done
    assert stage(done, "transform")["rejected"] == 1000 and stage(done, "sink")["in"] == 0
    first = api.get(f"/v1/pipelines/{pid}/rejected", params={"limit": 1}).json()
    assert first["total"] == 1000 and first["next_offset"] == 1
    assert first["rejected"][0]["error"]["code"] == "invalid_email"
    assert "LastName is not an email address" in first["rejected"][0]["error"]["message"]
