"""The MCP server, driven by the official SDK's client against the real API (streamable HTTP at
/mcp) and over stdio, with real workers and the vendor sandbox: tools generated from the
registry, task-augmented calls (io.modelcontextprotocol/tasks), the job_* fallback tools,
tenant isolation, authentication and the tenant's API limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
import requests
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import CallToolResult
from support import ROOT

from app.mcp.client import TASKS, CreateTaskResult, cancel_task, connect, get_task

CAP = 131072


async def poll(
    client: Client, task_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    """tasks/get until `done`, at the server's pollIntervalMs (capped so tests stay quick)."""
    deadline = time.monotonic() + timeout
    while True:
        task = await get_task(client, task_id)
        if done(task):
            return task
        assert time.monotonic() < deadline, f"task never got there: {task}"
        await anyio.sleep(min(task.get("pollIntervalMs", 200), 500) / 1000)


def run(fn: Callable[[], Awaitable[None]]) -> None:
    anyio.run(fn)


def body(result: CallToolResult) -> dict[str, Any]:
    assert len(result.content) == 1 and result.content[0].type == "text", result
    text = result.content[0].text
    assert len(text.encode()) <= CAP
    out: dict[str, Any] = json.loads(text)
    return out


def test_tools_are_generated_from_the_registry(api: Any, api_url: str) -> None:
    from app.kernel.registry import registry
    from app.services import toolschemas

    async def main() -> None:
        async with connect(api_url, api.tenant["api_key"], tasks=True) as client:
            assert client.protocol_version == "2026-07-28"
            assert TASKS in (client.server_capabilities.extensions or {})
            tools = {t.name: t for t in (await client.list_tools()).tools}
        own = {"job_status", "job_result", "job_wait", "job_cancel", "job_approve", "job_reject",
               "pipeline_run", "pipeline_status", "pipeline_cancel", "pipeline_rejected",
               "pipeline_retry_rejected"}  # fmt: skip
        assert own == toolschemas.RESERVED_NAMES
        assert own <= set(tools)  # the tenant's first key holds every scope, `approve` too
        assert len(tools) == len(registry().tools) + len(own)
        assert tools["job_cancel"].annotations.read_only_hint is False
        assert tools["job_wait"].annotations.read_only_hint is True
        rest_hints = {t["name"]: t["annotations"] for t in api.get("/v1/tools").json()["tools"]}
        for tool in tools.values():  # every read tool says so, as /v1/tools does
            assert tool.annotations is not None, tool.name
            if tool.title:
                wire = tool.annotations.model_dump(by_alias=True, exclude_none=True)
                assert wire == rest_hints[tool.title], tool.name
                writes = registry().tools[tool.title].write is not None
                routed = registry().tools[tool.title].routes is not None
                assert tool.annotations.read_only_hint is not (writes or routed), tool.name
                assert tool.annotations.open_world_hint is True, tool.name
        archive = tools["hubspot_contacts_archive"].annotations
        assert archive.read_only_hint is False and archive.destructive_hint is True
        comment = tools["zendesk_tickets_comment"].annotations
        assert comment.read_only_hint is False and comment.idempotent_hint is False
        contacts = tools["hubspot_contacts_list"]
        assert contacts.title == "hubspot.contacts.list"
        hubspot = registry().tools["hubspot.contacts.list"]
        assert contacts.input_schema == toolschemas.input_schema(hubspot)
        assert contacts.input_schema["required"] == ["account_id"]
        assert set(contacts.input_schema["properties"]["args"]["properties"]) == set(
            hubspot.args.model_json_schema()["properties"]
        )
        assert hubspot.description in (contacts.description or "")
        rest = {t["name"]: t for t in api.get("/v1/tools").json()["tools"]}
        assert {t.title for t in tools.values() if t.title} == set(rest)

    run(main)


def test_task_call_poll_and_inline_result(api: Any, api_url: str, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)  # 1,000 contacts: more than one capped result

    async def main() -> None:
        async with connect(api_url, api.tenant["api_key"], tasks=True) as client:
            t0 = time.monotonic()
            handle = await client.session.call_tool(
                "hubspot_contacts_list",
                {"account_id": account, "args": {"limit": 100}},
                allow_claimed=True,
            )
            assert time.monotonic() - t0 < 5
            assert isinstance(handle, CreateTaskResult), handle
            assert handle.status == "working" and handle.ttl_ms and handle.poll_interval_ms
            assert handle.created_at.endswith("Z") and handle.last_updated_at.endswith("Z")
            job = api.get(f"/v1/jobs/{handle.task_id}").json()  # the task id is the job id
            assert job["tool"] == "hubspot.contacts.list" and job["account_id"] == account

            task = await poll(client, handle.task_id, lambda t: t["status"] != "working")
            assert task["status"] == "completed", task
            assert task["resultType"] == "complete" and task["taskId"] == handle.task_id
            result = CallToolResult.model_validate(task["result"])
            assert result.is_error is False
            out = body(result)
            assert out["job_id"] == handle.task_id and out["status"] == "succeeded"
            assert out["records"] and out["record_count"] == len(out["records"])
            assert out["records"][0]["id"] == "1"
            assert out["truncated"] is True and out["continuation"].startswith("tqc_")
            assert out["record_count"] < 1000  # the 128 KiB cap cut it
            assert "truncated" in task["statusMessage"]

            # the SDK's transparent path: the claim's resolver polls to the final result
            final = await client.call_tool(
                "hubspot_contacts_list",
                {"account_id": account, "args": {"limit": 50}, "fields": ["id"], "max_pages": 1},
            )
            assert [r["id"] for r in body(final)["records"]] == [str(i) for i in range(1, 51)]

    run(main)


def test_task_cancel_and_tenant_isolation(
    api: Any, other_api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    account = api.account(fresh_sandbox)
    fresh_sandbox.config(rate_budget=1, rate_window_ms=20000)
    fresh_sandbox.spend("hubspot", "crm/v3/objects/contacts", 1)  # the window's one call

    async def main() -> None:
        async with (
            connect(api_url, api.tenant["api_key"], tasks=True) as client,
            connect(api_url, other_api.tenant["api_key"], tasks=True) as other,
        ):
            handle = await client.session.call_tool(
                "hubspot_contacts_list", {"account_id": account}, allow_claimed=True
            )
            assert isinstance(handle, CreateTaskResult)
            task = await poll(
                client, handle.task_id, lambda t: "waiting_rate_limit" in t["statusMessage"]
            )
            assert task["status"] == "working" and task["pollIntervalMs"] >= 1000
            assert api.get(f"/v1/jobs/{handle.task_id}").json()["status"] == "waiting_rate_limit"

            # another tenant's key: not found, and its cancel changes nothing
            for call in (get_task, cancel_task):
                with pytest.raises(MCPError) as err:
                    await call(other, handle.task_id)
                assert err.value.code == -32602
            denied = await other.call_tool("job_status", {"job_id": handle.task_id})
            assert denied.is_error and body(denied)["error"] == "job_not_found"
            assert api.get(f"/v1/jobs/{handle.task_id}").json()["status"] == "waiting_rate_limit"

            # job_wait's hard budget: the current state, not a hang
            t0 = time.monotonic()
            waited = await client.call_tool("job_wait", {"job_id": handle.task_id, "budget_s": 1})
            assert time.monotonic() - t0 < 4
            state = body(waited)
            assert state["done"] is False and state["status"] == "waiting_rate_limit"
            assert state["progress"]["pages"] == 0

            ack = await cancel_task(client, handle.task_id)  # an empty acknowledgement
            assert ack["resultType"] == "complete" and set(ack) <= {"resultType", "_meta"}
            task = await get_task(client, handle.task_id)
            assert task["status"] == "cancelled" and "result" not in task
        assert api.get(f"/v1/jobs/{handle.task_id}").json()["status"] == "cancelled"

    run(main)


def test_failed_job_completes_the_task_with_an_error_result(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    """SEP-2663: `failed` is for protocol faults; a failed tool is an `isError` result."""
    fresh_sandbox.config(error_rate=1.0)  # every vendor call a 5xx: the retry budget runs out
    account = api.account(fresh_sandbox)

    async def main() -> None:
        async with connect(api_url, api.tenant["api_key"], tasks=True) as client:
            handle = await client.session.call_tool(
                "hubspot_contacts_list", {"account_id": account}, allow_claimed=True
            )
            assert isinstance(handle, CreateTaskResult)
            task = await poll(client, handle.task_id, lambda t: t["status"] != "working")
        assert task["status"] == "completed" and "error" not in task, task
        assert task["result"]["isError"] is True
        failure = task["result"]["structuredContent"]
        assert failure["status"] == "failed"
        assert failure["error"]["code"] == "retry_budget_exhausted"
        assert task["statusMessage"].startswith("failed: retry_budget_exhausted")

    run(main)


def test_tasks_methods_need_the_declared_extension(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, max_pages=1)

    async def main() -> None:
        async with connect(api_url, api.tenant["api_key"], tasks=False) as client:
            with pytest.raises(MCPError) as err:
                await get_task(client, job["job_id"])
            assert err.value.code == -32021
            assert TASKS in json.dumps(err.value.error.data)

    run(main)


def test_fallback_tools_without_the_tasks_extension(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    account = api.account(fresh_sandbox)
    call = {"account_id": account, "args": {"limit": 100}, "fields": ["id"], "max_pages": 2}

    async def main() -> None:
        async with connect(api_url, api.tenant["api_key"], tasks=False) as client:
            t0 = time.monotonic()
            started = await client.call_tool("hubspot_contacts_list", call)
            assert time.monotonic() - t0 < 5
            handle = body(started)
            assert started.is_error is False and started.structured_content == handle
            assert handle["status"] == "queued" and "job_wait" in handle["next"]
            job_id = handle["job_id"]

            out = body(await client.call_tool("job_wait", {"job_id": job_id, "budget_s": 30}))
            assert out["status"] == "succeeded" and out["record_count"] == 200
            assert out["records"][-1] == {"id": "200"}
            assert out["truncated"] is True and out["continuation"]

            status = body(await client.call_tool("job_status", {"job_id": job_id}))
            assert status["status"] == "succeeded" and status["progress"]["pages"] == 2
            assert status["continuation"] == out["continuation"]
            again = body(await client.call_tool("job_result", {"job_id": job_id}))
            assert again == out

            wrong = await client.call_tool(
                "job_result", {"job_id": job_id, "continuation": "tqc_" + "x" * 43}
            )
            assert wrong.is_error and body(wrong)["error"] == "continuation_mismatch"
            nxt = body(
                await client.call_tool(
                    "job_result", {"job_id": job_id, "continuation": out["continuation"]}
                )
            )
            assert nxt["job_id"] != job_id and nxt["status"] == "queued"
            rest = body(await client.call_tool("job_wait", {"job_id": nxt["job_id"]}))
            assert rest["records"][0] == {"id": "201"} and rest["record_count"] == 200

            bad = await client.call_tool("hubspot_contacts_list", {"args": {"limit": 0}})
            assert bad.is_error and body(bad)["error"] == "invalid_arguments"
            assert "account_id" in body(bad)["message"]
            wrong_vendor = await client.call_tool(
                "salesforce_query",
                {"account_id": account, "args": {"soql": "SELECT Id FROM Contact"}},
            )
            assert body(wrong_vendor)["error"] == "account_vendor_mismatch"
            with pytest.raises(MCPError) as err:
                await client.call_tool("hubspot.contacts.list", call)
            assert err.value.code == -32602

    run(main)


def test_job_wait_budget_returns_records_so_far_and_a_continuation(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    """Frameworks without async tools: each job_wait returns what is spooled so far, and its
    continuation picks up exactly after it."""
    fresh_sandbox.config(latency_ms=400)  # ten pages: a few seconds
    account = api.account(fresh_sandbox)
    call = {"account_id": account, "args": {"limit": 100}, "fields": ["id"]}

    async def main() -> None:
        async with connect(api_url, api.tenant["api_key"], tasks=False) as client:
            job_id = body(await client.call_tool("hubspot_contacts_list", call))["job_id"]
            t0 = time.monotonic()
            first = body(await client.call_tool("job_wait", {"job_id": job_id, "budget_s": 1.5}))
            assert time.monotonic() - t0 < 4
            assert first["done"] is False and first["status"] in ("queued", "running")
            assert first["continuation"].startswith("p:0.") and "job_wait" in first["next"]
            assert first["record_count"] == len(first["records"])
            assert first["progress"]["records"] >= len(first["records"])
            assert "history" not in first  # state and progress; records are what matters

            job_cont = await client.call_tool(
                "job_wait", {"job_id": job_id, "continuation": "tqc_" + "x" * 43}
            )
            assert job_cont.is_error and body(job_cont)["error"] == "invalid_continuation"
            t1 = time.monotonic()
            bad = await client.call_tool("job_wait", {"job_id": job_id, "continuation": "p:x"})
            assert bad.is_error and body(bad)["error"] == "invalid_continuation"
            assert time.monotonic() - t1 < 1  # refused before any waiting

            outs, records = [first], list(first["records"])
            while not outs[-1]["done"]:
                assert len(outs) < 100, "the continuation chain does not end"
                wait = {"job_id": job_id, "budget_s": 0.8, "continuation": outs[-1]["continuation"]}
                outs.append(body(await client.call_tool("job_wait", wait)))
                records += outs[-1]["records"]
            assert outs[-1]["status"] == "succeeded" and "next" not in outs[-1]
            assert "continuation" not in outs[-1]
            assert sum(1 for o in outs if not o["done"] and o["records"]) >= 2
            assert records == [{"id": str(i)} for i in range(1, 1001)]
            # without a continuation, an ended job's job_wait is its result, as before
            full = body(await client.call_tool("job_wait", {"job_id": job_id}))
            assert full["records"] == records and "done" not in full

    run(main)


def test_job_cancel_without_the_tasks_extension(
    api: Any, other_api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    account = api.account(fresh_sandbox)
    done_job = api.call(account_id=account, args={"limit": 100}, max_pages=1)
    assert api.wait(done_job["job_id"])["status"] == "succeeded"
    fresh_sandbox.config(rate_budget=1, rate_window_ms=20000)
    fresh_sandbox.spend("hubspot", "crm/v3/objects/contacts", 1)  # the window's one call

    async def main() -> None:
        async with (
            connect(api_url, api.tenant["api_key"], tasks=False) as client,
            connect(api_url, other_api.tenant["api_key"], tasks=False) as other,
        ):
            handle = body(
                await client.call_tool("hubspot_contacts_list", {"account_id": account})
            )
            assert "job_cancel" in handle["next"]
            job_id = handle["job_id"]
            api.wait(job_id, states=("waiting_rate_limit",), timeout=30)

            # another tenant's key: not found, and nothing changes
            denied = await other.call_tool("job_cancel", {"job_id": job_id})
            assert denied.is_error and body(denied)["error"] == "job_not_found"
            assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "waiting_rate_limit"

            cancelled = await client.call_tool("job_cancel", {"job_id": job_id})
            assert cancelled.is_error is False
            view = body(cancelled)
            assert view["job_id"] == job_id and view["status"] == "cancelled"
            assert view["history"][-1]["status"] == "cancelled"
            again = body(await client.call_tool("job_cancel", {"job_id": job_id}))
            assert again["status"] == "cancelled"  # idempotent

            finished = await client.call_tool("job_cancel", {"job_id": done_job["job_id"]})
            assert finished.is_error and body(finished)["error"] == "job_already_finished"
        assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
        assert api.get(f"/v1/jobs/{done_job['job_id']}").json()["status"] == "succeeded"

    run(main)


def test_handshake_era_clients_get_the_fallback(api: Any, api_url: str, fresh_sandbox: Any) -> None:
    """A 2025-11-25 client (initialize handshake) has no per-request capabilities: no tasks,
    the same tools, the job handle and job_wait."""
    account = api.account(fresh_sandbox)

    async def main() -> None:
        async with connect(api_url, api.tenant["api_key"], tasks=True, mode="legacy") as client:
            assert client.protocol_version == "2025-11-25"
            assert "hubspot_contacts_list" in {t.name for t in (await client.list_tools()).tools}
            handle = body(
                await client.call_tool(
                    "hubspot_contacts_list",
                    {"account_id": account, "fields": ["id"], "max_pages": 1},
                )
            )
            out = body(await client.call_tool("job_wait", {"job_id": handle["job_id"]}))
            assert out["status"] == "succeeded" and out["record_count"] == 100

    run(main)


def test_http_auth_and_api_limit(api_url: str, redis_server: Any) -> None:
    from app.store.tenants import create_tenant

    for headers in ({}, {"Authorization": "Bearer tq_nope"}, {"Authorization": "Basic x"}):
        resp = requests.post(f"{api_url}/mcp", json={}, headers=headers, timeout=5)
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"] == "unauthorized"
        # where an MCP client starts its OAuth sign-in (tests/api/test_mcp_oauth.py)
        prm = f"{api_url}/.well-known/oauth-protected-resource/mcp"
        challenge = resp.headers["www-authenticate"]
        assert challenge.startswith("Bearer ") and f'resource_metadata="{prm}"' in challenge
    limited = create_tenant("mcp-limited", rate_limit=2, rate_window_s=60)
    auth = {"Authorization": f"Bearer {limited['api_key']}"}
    codes = [requests.post(f"{api_url}/mcp", json={}, headers=auth, timeout=5) for _ in range(3)]
    assert [r.status_code == 429 for r in codes] == [False, False, True], codes
    assert codes[0].headers["ratelimit-limit"] == "2"
    assert codes[2].json()["error"] == "rate_limit_exceeded" and codes[2].headers["retry-after"]


def test_stdio_server(api: Any, fresh_sandbox: Any) -> None:
    account = api.account(fresh_sandbox)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "app.cli", "mcp", "--stdio"],  # `toolqueue mcp --stdio`
        env={**os.environ, "TOOLQUEUE_API_KEY": api.tenant["api_key"]},
        cwd=str(ROOT),
    )

    async def main() -> None:
        async with Client(params) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"hubspot_contacts_list", "job_wait"} <= names
            handle = body(
                await client.call_tool(
                    "hubspot_contacts_list",
                    {"account_id": account, "fields": ["id"], "max_pages": 1},
                )
            )
            out = body(await client.call_tool("job_wait", {"job_id": handle["job_id"]}))
            assert out["status"] == "succeeded" and out["record_count"] == 100

    run(main)
    env = {k: v for k, v in os.environ.items() if k != "TOOLQUEUE_API_KEY"}
    refused = subprocess.run(
        [sys.executable, *params.args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert refused.returncode != 0 and "TOOLQUEUE_API_KEY" in refused.stderr
