"""`Client.pipeline(...)` and the other pipeline methods against the real API, workers and the
vendor sandbox: run and wait, list, the rejected records page by page, a retry once the cause
is fixed, a re-run from the sink, a wait whose budget runs out, cancel, typed errors."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pipelinekit import EXT, definition, sf_effects
from surfacekit import LOCK, PHONED, UNLOCK, some_phones

from app.client import PIPELINE_ENDED, Client, ClientError


def client_of(api: Any) -> Client:
    return Client(api.url, api.tenant["api_key"])


def test_pipeline_starts_at_once_and_pipeline_wait_returns_it_ended(
    api: Any, fresh_sandbox: Any
) -> None:
    from app.store.pipelines import ENDED

    assert set(ENDED) == PIPELINE_ENDED  # the client's copy of the server's list
    client = client_of(api)
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    started = client.pipeline({**definition(src, dst), "name": "contacts to sf"})
    assert started["status"] == "queued"
    pid = started["pipeline_id"]
    assert started["location"] == f"/v1/pipelines/{pid}"
    done = client.pipeline_wait(pid, budget_s=120, poll_s=0.2)
    assert done["status"] == "succeeded", done
    assert [s["out"] for s in done["stages"]] == [1000, 1000, 1000, 1000]
    assert done["history"][-1]["status"] == "succeeded"
    assert client.pipeline_get(pid) == done  # ended: nothing moves any more
    rows = client.pipelines(limit=5)
    assert rows[0]["pipeline_id"] == pid and rows[0]["name"] == "contacts to sf"
    assert rows[0]["status"] == "succeeded"
    assert len(sf_effects(fresh_sandbox)["per_object"]) == 1000


def test_rejected_pages_retry_and_rerun(api: Any, fresh_sandbox: Any) -> None:
    client = client_of(api)
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    fresh_sandbox.config(**LOCK)
    try:
        pid = client.pipeline(some_phones(src, dst))["pipeline_id"]
        done = client.pipeline_wait(pid, budget_s=120, poll_s=0.2)
        assert done["status"] == "partly_done" and done["rejected"] == 100, done
        pages = [client.pipeline_rejected(pid, 0, 30)]
        while "next_offset" in pages[-1]:
            pages.append(client.pipeline_rejected(pid, pages[-1]["next_offset"], 30))
        assert [len(p["rejected"]) for p in pages] == [30, 30, 30, 10]
        entries = [e for p in pages for e in p["rejected"]]
        assert {e["record"][EXT] for e in entries} == PHONED
        assert {e["error"]["code"] for e in entries} == {"INVALID_FIELD_FOR_INSERT_UPDATE"}
        with pytest.raises(ClientError) as missing:
            client.pipeline_retry_rejected("nope")
        assert missing.value.status == 404 and missing.value.code == "pipeline_not_found"

        rerun = client.pipeline_rerun(pid, from_stage=4)  # the sink, with what entered it
        assert rerun["pipeline_id"] != pid
        second = client.pipeline_wait(rerun["pipeline_id"], budget_s=120, poll_s=0.2)
        assert second["rerun_of"] == {"pipeline_id": pid, "from_stage": 4}
        assert second["status"] == "partly_done", second  # still locked: the same 100
        assert second["stages"][0]["out"] == 0  # nothing read again
        assert (second["stages"][-1]["in"], second["stages"][-1]["out"]) == (1000, 900)
        with pytest.raises(ClientError) as bad_stage:
            client.pipeline_rerun(pid, from_stage=9)
        assert bad_stage.value.code == "invalid_stage"

        fresh_sandbox.config(**UNLOCK)
        retried = client.pipeline_retry_rejected(pid)
        assert retried["pipeline_id"] == pid and retried["status"] == "running"
        again = client.pipeline_wait(pid, budget_s=120, poll_s=0.2)
        assert again["status"] == "succeeded" and again["rejected"] == 0, again
        assert again["retries"] == 1
        assert client.pipeline_rejected(pid)["total"] == 0
    finally:
        fresh_sandbox.config(**UNLOCK)


def test_pipeline_wait_returns_when_its_budget_is_spent_then_cancel(
    api: Any, fresh_sandbox: Any
) -> None:
    client = client_of(api)
    fresh_sandbox.config(hubspot_contacts=5000, rate_budgets={"hubspot": 5})
    try:
        src = api.account(fresh_sandbox, "hubspot")
        dst = api.account(fresh_sandbox, "salesforce")
        pid = client.pipeline(definition(src, dst))["pipeline_id"]
        t0 = time.monotonic()
        view = client.pipeline_wait(pid, budget_s=1.0, poll_s=0.2)
        assert time.monotonic() - t0 < 3
        assert view["status"] in ("queued", "running"), view
        cancelled = client.pipeline_cancel(pid)
        assert cancelled["status"] == "cancelled"
        assert client.pipeline_wait(pid, budget_s=5)["status"] == "cancelled"
    finally:
        fresh_sandbox.config(hubspot_contacts=1000, rate_budgets={})


def test_a_definition_that_cannot_run_raises_naming_the_problem(
    api: Any, fresh_sandbox: Any
) -> None:
    client = client_of(api)
    spec = definition(api.account(fresh_sandbox, "hubspot"), "acc_nope")
    spec["sink"]["tool"] = "salesforce.recordz.upsert"
    with pytest.raises(ClientError) as err:
        client.pipeline(spec)
    assert err.value.status == 422 and err.value.code == "unknown_tool"
    assert "sink" in err.value.message and "salesforce.recordz.upsert" in err.value.message
    assert client.pipelines() == []
