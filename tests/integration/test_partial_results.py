"""Partial results with a continuation: `Client.wait` with a budget that runs out returns the job's
state and progress plus the records spooled so far and a partial cursor; following the cursors
yields every record exactly once, in order. Real API, workers, Redis spool and vendor sandbox
(a per-call latency makes the job take several seconds)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from app.client import Client
from app.store import spool

TOOL = "hubspot.contacts.list"


def slow_job(api: Any, sandbox: Any, latency_ms: int = 400, **options: Any) -> tuple[Client, str]:
    """1000 contacts, 100 a page, each page `latency_ms` late: ten pages, a few seconds."""
    sandbox.config(latency_ms=latency_ms)
    client = Client(api.url, api.tenant["api_key"])
    job = client.call(TOOL, api.account(sandbox), {"limit": 100}, fields=["id"], **options)
    return client, job["job_id"]


def test_short_budget_returns_a_partial_result_whose_continuation_yields_the_rest(
    api: Any, fresh_sandbox: Any
) -> None:
    client, job_id = slow_job(api, fresh_sandbox)
    started = time.monotonic()
    first = client.wait(job_id, budget_s=1.5)
    assert time.monotonic() - started < 4
    assert first["done"] is False, first
    assert first["status"] in ("queued", "running")
    assert first["job_id"] == job_id and first["tool"] == TOOL
    assert "history" in first and "progress" in first  # the job's view, as before
    assert first["continuation"].startswith("p:0.")
    assert first["record_count"] == len(first["records"])
    # every record spooled by the time of the read (whole pages only)
    assert len(first["records"]) % 100 == 0 and len(first["records"]) <= first["progress"][
        "records"
    ]

    outcomes, records = [first], list(first["records"])
    while not outcomes[-1]["done"]:
        assert len(outcomes) < 100, "the continuation chain does not end"
        nxt = client.wait(job_id, budget_s=0.8, continuation=outcomes[-1]["continuation"])
        outcomes.append(nxt)
        records += nxt["records"]
    last = outcomes[-1]
    assert last["status"] == "succeeded" and "continuation" not in last
    assert last["truncated"] is False and last["progress"]["records"] == 1000
    # some reads came while the job still ran, with records in them
    assert sum(1 for o in outcomes if not o["done"] and o["records"]) >= 2
    assert records == [{"id": str(i)} for i in range(1, 1001)]  # each once, in order
    full = client.result(job_id)
    assert full["record_count"] == 1000 and full["records"] == records


def test_wait_without_continuation_still_returns_the_result(api: Any, fresh_sandbox: Any) -> None:
    client, job_id = slow_job(api, fresh_sandbox, latency_ms=0)
    out = client.wait(job_id, budget_s=30)
    assert out["done"] is True and out["status"] == "succeeded" and out["record_count"] == 1000
    assert out == {**client.result(job_id), "done": True}
    # a continuation read from the start of an ended job: the whole result, done
    rest = client.wait(job_id, budget_s=1, continuation="p:0.0")
    assert rest["done"] is True and rest["records"] == out["records"]


def test_blocks_job_walked_with_partial_cursors_under_its_cap(
    api: Any, fresh_sandbox: Any
) -> None:
    max_bytes = 4096  # ~130 ids a block: ten pages cross several blocks
    client, job_id = slow_job(api, fresh_sandbox, latency_ms=250, delivery="blocks",
                              max_bytes=max_bytes)
    after, records, seen_blocks, tokens = "p:0.0", [], set(), []
    running_reads = 0
    for _ in range(500):
        resp = api.get(f"/v1/jobs/{job_id}/result", params={"after": after})
        assert resp.status_code == 200, resp.text
        assert len(resp.content) <= max_bytes  # a full block's partial body fits the cap
        body = json.loads(resp.content)
        assert body["record_count"] == len(body["records"])
        records += body["records"]
        seen_blocks.add(body["block"])
        if body["done"]:
            break
        running_reads += body["status"] not in ("succeeded", "failed", "cancelled")
        tokens.append(body["continuation"])
        after = body["continuation"]
        time.sleep(0.1)
    else:
        pytest.fail("the partial cursor never reached the end")
    assert body["status"] == "succeeded" and body["block"] == body["blocks"] - 1
    assert running_reads >= 1
    assert body["blocks"] >= 3 and seen_blocks == set(range(body["blocks"]))
    # moving to a new block starts it at its first run
    assert {f"p:{b}.0" for b in range(1, body["blocks"])} <= set(tokens)
    assert records == [{"id": str(i)} for i in range(1, 1001)]
    blocks = [client.result(job_id, block=b)["records"] for b in range(body["blocks"])]
    assert [r for block in blocks for r in block] == records


def test_partial_read_of_a_full_block_stays_under_the_cap(api: Any, fresh_sandbox: Any) -> None:
    """The smallest cap whose record budget holds one whole block: the partial body (which adds
    `done`, `progress` and a cursor) still fits."""
    reserve = spool.reserve(str(uuid.uuid4()), TOOL)
    ids = [spool.dumps({"id": str(i)}) for i in range(1, 201)]
    max_bytes = max(4096, reserve + len("[" + ",".join(ids) + "]"))
    client = Client(api.url, api.tenant["api_key"])
    job = client.call(TOOL, api.account(fresh_sandbox), {"limit": 100}, fields=["id"],
                      max_bytes=max_bytes, delivery="blocks")
    assert client.wait(job["job_id"], budget_s=30)["done"] is True
    resp = api.get(f"/v1/jobs/{job['job_id']}/result", params={"after": "p:0.0"})
    assert resp.status_code == 200 and len(resp.content) <= max_bytes
    body = json.loads(resp.content)
    assert body["done"] is False and body["continuation"] == "p:1.0"
    assert body["record_count"] >= 200 and body["progress"]["records"] == 1000


def test_wait_refuses_a_job_continuation(api: Any) -> None:
    client = Client(api.url, api.tenant["api_key"])
    with pytest.raises(ValueError, match="continue_"):
        client.wait(str(uuid.uuid4()), budget_s=1, continuation="tqc_" + "x" * 43)
