"""What an agent reads about a job stays small: alike state-log entries merge, a job view
carries the newest entries only (the whole log pages on), and MCP `job_status` is a few
hundred bytes. Real workers, a paced sandbox portal, the real API and MCP endpoint."""

from __future__ import annotations

import json
from typing import Any

import anyio
from support import wait_until

from app.kernel import keys
from app.mcp.client import connect

PAGES = 60


def paced_jobs(api: Any, sandbox: Any) -> list[str]:
    """Two jobs sharing one account on a portal allowing 10 requests a second: most pages
    wait on the account's budget first."""
    sandbox.config(hubspot_contacts=PAGES * 10, rate_budget=10, rate_window_ms=1000)
    account = api.account(sandbox)
    return [api.call(account_id=account, args={"limit": 10}, fields=["id"])["job_id"]
            for _ in range(2)]  # fmt: skip


def test_a_paced_jobs_history_is_a_few_entries_with_counts(api, fresh_sandbox, r):
    job_id, other = paced_jobs(api, fresh_sandbox)
    done = api.wait(job_id, timeout=90)
    assert api.wait(other, timeout=90)["status"] == "succeeded"
    assert done["status"] == "succeeded" and done["progress"]["pages"] == PAGES
    waits = [h for h in done["history"] if h["status"] == "waiting_rate_limit"]
    assert waits, done["history"]
    # every wait before a page is counted, in few entries, each a run with its time span
    assert sum(h.get("count", 1) for h in waits) >= 10, done["history"]
    assert all(h["last_at"] >= h["at"] for h in waits if h.get("count"))
    assert done["history_total"] == len(done["history"]) <= 12
    assert len(json.dumps(done)) < 4096
    assert "k" not in done["history"][0]  # the merge key stays inside


def test_job_status_over_mcp_stays_under_2_kib_while_paced(api, api_url, fresh_sandbox):
    job_id, _ = paced_jobs(api, fresh_sandbox)
    sizes: list[int] = []

    async def main() -> None:
        async with connect(api_url, api.tenant["api_key"]) as client:
            while True:
                result = await client.call_tool("job_status", {"job_id": job_id})
                text = result.content[0].text  # type: ignore[union-attr]
                sizes.append(len(text.encode()))
                status = json.loads(text)
                if status["status"] == "succeeded":
                    return
                await anyio.sleep(0.5)

    anyio.run(main)
    assert api.get(f"/v1/jobs/{job_id}").json()["progress"]["pages"] == PAGES
    assert max(sizes) < 2048, sizes
    assert len(sizes) > 3


def test_the_whole_history_pages_in_order(api, fresh_sandbox, r):
    account = api.account(fresh_sandbox)
    job_id = api.call(account_id=account, args={"limit": 10}, max_pages=2)["job_id"]
    assert api.wait(job_id)["status"] == "succeeded"
    for n in range(30):  # distinct reasons: nothing merges (a token refresh each, say)
        r.rpush(keys.job_log(job_id), json.dumps({"status": None, "at": "x", "reason": f"r{n}",
                                                  "k": f"r{n}"}))  # fmt: skip
    view = api.get(f"/v1/jobs/{job_id}").json()
    total = view["history_total"]
    assert total > 30 and len(view["history"]) == 20
    assert view["history"][-1]["reason"] == "r29"
    entries, offset = [], 0
    while True:
        page = api.get(f"/v1/jobs/{job_id}/history", params={"offset": offset, "limit": 7}).json()
        assert page["total"] == total and len(page["entries"]) <= 7
        entries += page["entries"]
        if "next_offset" not in page:
            break
        offset = page["next_offset"]
    assert len(entries) == total
    assert entries[0]["reason"] == "enqueued" and entries[-20:] == view["history"]
    assert all("k" not in e for e in entries)
    assert api.get(f"/v1/jobs/{job_id}/history", params={"offset": 10**6}).json()[
        "entries"] == []  # fmt: skip
    assert api.get(f"/v1/jobs/{job_id}/history", params={"limit": 0}).status_code == 422


def test_another_tenants_history_is_not_found(api, api_url, fresh_sandbox):
    from app.store.tenants import create_tenant

    other_api = type(api)(api_url, create_tenant("other"))
    account = api.account(fresh_sandbox)
    job_id = api.call(account_id=account, args={"limit": 10}, max_pages=1)["job_id"]
    wait_until(lambda: api.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded", 30)
    resp = other_api.get(f"/v1/jobs/{job_id}/history")
    assert resp.status_code == 404 and resp.json()["error"] == "job_not_found"
