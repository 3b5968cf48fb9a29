"""A write job whose vendor rejected some records (HubSpot's 207 multi-status) completes the
rest and says so everywhere an agent or a service reads it: the status view, the signed
webhook's event type and body, and the MCP task's `isError` result."""

from __future__ import annotations

import json
from typing import Any

import anyio

from app.mcp.client import CreateTaskResult, connect, get_task
from app.services import jobs

TOOL = "hubspot.contacts.upsert"


def mixed(tag: str, n: int, bad: set[int]) -> list[dict[str, Any]]:
    return [{"id": f"{tag}-{i}" if i in bad else f"{tag}-{i}@example.com",
             "properties": {"firstname": "P"}} for i in range(n)]  # fmt: skip


def test_partial_rejection_in_status_and_webhook(
    api: Any, fresh_sandbox: Any, receiver: Any
) -> None:
    account = api.account(fresh_sandbox)
    job = api.call(TOOL, account_id=account, args={"records": mixed("wh", 120, {5, 110})},
                   callback_url=receiver.url)  # fmt: skip
    done = api.wait(job["job_id"])
    assert done["status"] == "completed_with_errors"
    assert done["writes"]["rejected"] == 2 and done["writes"]["created"] == 118
    brief = jobs.brief(api.tenant["tenant_id"], job["job_id"])  # the MCP job_status view
    assert brief["status"] == "completed_with_errors" and brief["writes"]["rejected"] == 2
    assert len(json.dumps(brief)) < 1200
    (event,) = [json.loads(r["body"]) for r in receiver.wait(1)]
    assert event["type"] == "job.completed_with_errors"
    assert event["data"]["writes"]["rejected"] == 2
    rejected = [r for r in event["data"]["records"] if r["status"] == "rejected"]
    assert [r["index"] for r in rejected] == [5, 110]
    assert all("invalid" in r["error"]["message"] for r in rejected)


def test_partial_rejection_is_an_mcp_error_result(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    account = api.account(fresh_sandbox)
    args = {"account_id": account, "args": {"records": mixed("mcp", 4, {2})}}

    async def main() -> dict[str, Any]:
        async with connect(api_url, api.tenant["api_key"], tasks=True) as client:
            handle = await client.session.call_tool(
                "hubspot_contacts_upsert", args, allow_claimed=True
            )
            assert isinstance(handle, CreateTaskResult)

            async def ended() -> dict[str, Any] | None:
                task = await get_task(client, handle.task_id)
                return None if task["status"] == "working" else task

            for _ in range(300):
                if (task := await ended()) is not None:
                    return task
                await anyio.sleep(0.1)
            raise AssertionError("the task never ended")

    task = anyio.run(main)
    assert task["status"] == "completed" and task["result"]["isError"] is True
    assert task["statusMessage"].startswith("completed_with_errors: some_rejected: 1 of 4")
    text = json.loads(task["result"]["content"][0]["text"])
    assert text["status"] == "completed_with_errors" and text["writes"]["rejected"] == 1
    assert [r["status"] for r in text["records"]] == ["created", "created", "rejected", "created"]
