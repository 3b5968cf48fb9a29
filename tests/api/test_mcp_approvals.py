"""Consent over MCP, driven by the official SDK client against the real API, workers and the
vendor sandbox: every request runs as its API key (tools/list, calls, refusals), a write held
for approval is a task in `input_required` until a person decides (over HTTP, the fallback
tools, or an elicitation its key may answer), then `working` and `completed`, or `cancelled`."""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
import pytest
import requests
from consentkit import consent_tenant, key, seeded_contacts
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientRequestContext
from mcp.shared.exceptions import MCPError
from mcp_consent_kit import body, follow
from mcp_types import CallToolResult, ElicitRequestParams, ElicitResult
from support import ROOT

from app.mcp.client import CreateTaskResult, answer_inputs, connect, get_task, update_task

HELD = ("input_required", "completed", "cancelled")
ENDED = ("completed", "cancelled")
OWN = {"job_status", "job_result", "job_wait", "job_cancel", "pipeline_run", "pipeline_status",
       "pipeline_cancel", "pipeline_rejected", "pipeline_retry_rejected"}  # fmt: skip
DECIDE = {"job_approve", "job_reject"}


def update(account: str, cid: str) -> dict[str, Any]:
    return {"account_id": account, "args": {"id": cid, "properties": {"firstname": "Grace"}}}


async def start(client: Client, tool: str, arguments: dict[str, Any]) -> CreateTaskResult:
    handle = await client.session.call_tool(tool, arguments, allow_claimed=True)
    assert isinstance(handle, CreateTaskResult), handle
    assert handle.status == "working"
    return handle


def counts(job: dict[str, Any]) -> str:
    """The preview's counts as the task's message states them (`1 update, 2 delete`)."""
    actions = ("create", "update", "unchanged", "delete", "reject")
    shown = ", ".join(f"{job['preview'][k]} {k}" for k in actions if job["preview"].get(k))
    assert shown and job["preview"]["records"] == 1, job["preview"]
    return shown


def effects(sandbox: Any) -> dict[str, Any]:
    """The sandbox's ledger of applied HubSpot writes, per contact id (reads never count)."""
    out = requests.get(f"{sandbox.url}/hubspot/_sandbox/effects", timeout=5).json()
    return dict(out["per_object"])


def test_a_held_task_waits_for_another_keys_approval_then_completes(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    owner = consent_tenant(api)
    account = owner.account(fresh_sandbox)
    (cid,) = seeded_contacts(owner, account, ["grace@example.com"])
    before = effects(fresh_sandbox)[cid]
    agent = key(owner, scopes=["read", "write"], name="agent")
    person = key(owner, scopes=["approve"], name="person")
    seen: list[str] = []

    async def main() -> dict[str, Any]:
        async with connect(api_url, agent.tenant["api_key"], tasks=True) as client:
            handle = await start(client, "hubspot_contacts_update", update(account, cid))
            seen.append(handle.status)
            job_id = handle.task_id
            held = await follow(client, job_id, HELD, seen)
            assert held["status"] == "input_required", held
            job = agent.get(f"/v1/jobs/{job_id}").json()
            assert job["status"] == "awaiting_approval"
            binding, message = job["approval"]["binding"], held["statusMessage"]
            assert message.startswith("awaiting_approval: hubspot.contacts.update")
            assert counts(job) in message and "policy `destructive: approve`" in message
            assert job["approval"]["expires_at"] in message and binding in message
            assert f"POST /v1/jobs/{job_id}/approve" in message and "events_url" in message
            assert held["pollIntervalMs"] == 1000 and "inputRequests" not in held
            assert effects(fresh_sandbox)[cid] == before  # nothing sent while it waits

            # the agent's own key has no way to approve it over MCP
            assert not DECIDE & {t.name for t in (await client.list_tools()).tools}
            with pytest.raises(MCPError) as err:
                await client.call_tool("job_approve", {"job_id": job_id, "binding": binding})
            assert err.value.code == -32602
            assert (await get_task(client, job_id))["status"] == "input_required"

            fresh_sandbox.config(latency_ms=1000)  # the write takes a while: its `working` shows
            resp = person.post(f"/v1/jobs/{job_id}/approve", {"binding": binding})
            assert resp.status_code == 200, resp.text
            return await follow(client, job_id, ENDED, seen)

    done = anyio.run(main)
    assert seen == ["working", "input_required", "working", "completed"], seen
    result = CallToolResult.model_validate(done["result"])
    assert result.is_error is False
    assert [r["status"] for r in body(result)["records"]] == ["updated"]
    view = agent.get(f"/v1/jobs/{done['taskId']}").json()
    assert view["approval"]["decided_by"] == person.tenant["key_id"]
    assert effects(fresh_sandbox)[cid].get("update", 0) == before.get("update", 0) + 1


def test_a_task_rejected_through_the_fallback_tool_ends_cancelled(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    owner = consent_tenant(api)
    account = owner.account(fresh_sandbox)
    agent = key(owner, scopes=["read", "write"], name="agent")
    person = key(owner, scopes=["read", "approve"], name="person")
    (cid,) = seeded_contacts(owner, account, ["keep@example.com"])
    before = effects(fresh_sandbox)[cid]
    seen: list[str] = []

    async def main() -> dict[str, Any]:
        async with (
            connect(api_url, agent.tenant["api_key"], tasks=True) as client,
            connect(api_url, person.tenant["api_key"], tasks=False) as approver,
        ):
            args = {"account_id": account, "args": {"id": cid}}
            handle = await start(client, "hubspot_contacts_archive", args)
            seen.append(handle.status)
            held = await follow(client, handle.task_id, HELD, seen)
            assert held["status"] == "input_required", held
            job = agent.get(f"/v1/jobs/{handle.task_id}").json()
            assert f"would make {counts(job)} (1 record;" in held["statusMessage"]

            tools = {t.name: t for t in (await approver.list_tools()).tools}
            assert set(tools) >= DECIDE | OWN
            assert all(t.annotations and t.annotations.read_only_hint
                       for t in tools.values() if t.title)  # fmt: skip
            status = body(await approver.call_tool("job_status", {"job_id": handle.task_id}))
            binding = status["approval"]["binding"]
            wrong = await approver.call_tool(
                "job_reject", {"job_id": handle.task_id, "binding": "0" * 64}
            )
            assert wrong.is_error and body(wrong)["error"] == "approval_mismatch"
            decided = await approver.call_tool(
                "job_reject",
                {"job_id": handle.task_id, "binding": binding, "reason": "keep the contact"},
            )
            assert decided.is_error is False and body(decided)["status"] == "cancelled"
            again = await approver.call_tool("job_approve", {"job_id": handle.task_id})
            assert again.is_error and body(again)["error"] == "job_not_awaiting_approval"
            return await follow(client, handle.task_id, ENDED, seen)

    done = anyio.run(main)
    assert seen == ["working", "input_required", "cancelled"], seen
    assert done["statusMessage"].startswith("cancelled: approval_rejected")
    assert "keep the contact" in done["statusMessage"] and "result" not in done
    assert effects(fresh_sandbox)[cid] == before  # nothing was ever sent


async def accept(ctx: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
    """A person at the client approving what the form shows."""
    return ElicitResult(action="accept", content={"decision": "approve", "reason": "looks right"})


def test_elicitation_asks_only_a_key_that_may_approve(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    owner = consent_tenant(api)
    account = owner.account(fresh_sandbox)
    agent = key(owner, scopes=["read", "write"], name="agent")
    person = key(owner, scopes=["read", "approve"], name="person")
    (cid,) = seeded_contacts(owner, account, ["form@example.com"])

    async def main() -> dict[str, Any]:
        async with (
            connect(api_url, agent.tenant["api_key"], elicitation=accept) as client,
            connect(api_url, person.tenant["api_key"], elicitation=accept) as approver,
        ):
            handle = await start(client, "hubspot_contacts_update", update(account, cid))
            held = await follow(client, handle.task_id, HELD, [])
            assert held["status"] == "input_required", held
            assert "inputRequests" not in held  # its client can answer; its key may not

            asked = await get_task(approver, handle.task_id)
            job = agent.get(f"/v1/jobs/{handle.task_id}").json()
            binding = job["approval"]["binding"]
            ((name, request),) = asked["inputRequests"].items()
            assert name == f"approval:{binding}" and request["method"] == "elicitation/create"
            form = request["params"]
            assert form["mode"] == "form" and counts(job) in form["message"]
            assert form["requestedSchema"]["properties"]["decision"]["enum"] == [
                "approve",
                "reject",
            ]
            yes = {"action": "accept", "content": {"decision": "approve"}}
            with pytest.raises(MCPError) as err:  # the agent answering anyway is refused
                await update_task(client.session, handle.task_id, {name: yes})
            assert err.value.error.data["error"] == "scope_missing"
            with pytest.raises(MCPError) as err:  # another binding: nothing applies
                await update_task(approver.session, handle.task_id, {"approval:" + "0" * 64: yes})
            assert err.value.error.data["error"] == "approval_mismatch"
            assert (await get_task(client, handle.task_id))["status"] == "input_required"

            await answer_inputs(approver.session, asked, set())  # through `accept`
            return await follow(client, handle.task_id, ENDED, [])

    done = anyio.run(main)
    assert done["status"] == "completed" and done["result"]["isError"] is False, done
    view = agent.get(f"/v1/jobs/{done['taskId']}").json()
    assert view["approval"]["decided_by"] == person.tenant["key_id"]
    assert view["approval"]["note"] == "looks right"


def test_an_agent_answers_its_own_elicitation_only_under_self_approve(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    owner = consent_tenant(api)
    account = owner.account(fresh_sandbox)
    solo = key(owner, scopes=["read", "write", "approve"], name="solo")
    kept, gone = seeded_contacts(owner, account, ["kept@example.com", "gone@example.com"])
    before = effects(fresh_sandbox)

    async def main() -> tuple[dict[str, Any], CallToolResult]:
        async with connect(api_url, solo.tenant["api_key"], elicitation=accept) as client:
            handle = await start(client, "hubspot_contacts_update", update(account, kept))
            held = await follow(client, handle.task_id, HELD, [])
            assert held["status"] == "input_required" and "inputRequests" not in held
            assert "job_approve" in {t.name for t in (await client.list_tools()).tools}
            refused = await client.call_tool("job_approve", {"job_id": handle.task_id})
            assert refused.is_error and body(refused)["error"] == "self_approval_refused"

            path = f"/v1/keys/{solo.tenant['key_id']}/policy"
            resp = owner.s.put(f"{owner.url}{path}", json={"self_approve": True}, timeout=10)
            assert resp.status_code == 200, resp.text
            # now its own client is asked; declining it rejects the job
            asked = await get_task(client, handle.task_id)
            (name,) = asked["inputRequests"]
            await update_task(client.session, handle.task_id, {name: {"action": "decline"}})
            declined = await follow(client, handle.task_id, ENDED, [])

            # and the SDK's transparent path answers through the callback, to the result
            result = await client.call_tool(
                "hubspot_contacts_archive", {"account_id": account, "args": {"id": gone}}
            )
            return declined, result

    declined, result = anyio.run(main)
    assert declined["status"] == "cancelled"
    assert declined["statusMessage"].startswith("cancelled: approval_rejected")
    assert result.is_error is False
    assert [r["status"] for r in body(result)["records"]] == ["deleted"]
    after = effects(fresh_sandbox)
    assert after[kept] == before[kept] and after[gone] != before[gone]


def test_tools_list_and_calls_follow_the_keys_scopes_and_policy(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    owner = consent_tenant(api)
    account = owner.account(fresh_sandbox)
    reader = key(owner, scopes=["read"], name="reader")
    hub = key(owner, scopes=["read", "write"], tools=["hubspot.*"], name="hubspot")
    shown = {k.tenant["key_id"]: {t["name"] for t in k.get("/v1/tools").json()["tools"]}
             for k in (reader, hub)}  # fmt: skip

    async def main() -> None:
        async with connect(api_url, reader.tenant["api_key"]) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            titled = {t.title: t for t in tools.values() if t.title}
            assert (
                set(titled) == shown[reader.tenant["key_id"]] and "hubspot.contacts.list" in titled
            )
            assert all(t.annotations and t.annotations.read_only_hint for t in titled.values())
            assert set(tools) - {t.name for t in titled.values()} == OWN  # no job_approve
            for task in (True, False):  # a task-augmented call is refused the same way
                refused = await client.session.call_tool(
                    "hubspot_contacts_update", update(account, "1"), allow_claimed=task
                )
                assert isinstance(refused, CallToolResult) and refused.is_error
                assert body(refused)["error"] == "tool_not_allowed"
            with pytest.raises(MCPError):
                await client.call_tool("job_reject", {"job_id": "x"})

        async with connect(api_url, hub.tenant["api_key"]) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            titled = {t.title for t in tools.values() if t.title}
            assert titled == shown[hub.tenant["key_id"]]
            assert all(n.startswith("hubspot.") for n in titled)
            assert {"hubspot.contacts.list", "hubspot.contacts.update"} <= titled
            assert not DECIDE & set(tools)
            other = await client.call_tool(
                "salesforce_query",
                {"account_id": account, "args": {"soql": "SELECT Id FROM Contact"}},
            )
            assert other.is_error and body(other)["error"] == "tool_not_allowed"
            policy = f"{owner.url}/v1/accounts/{account}/policy"
            resp = owner.s.put(policy, json={"destructive": "deny"}, timeout=10)
            assert resp.status_code == 200, resp.text
            denied = await client.call_tool(
                "hubspot_contacts_archive", {"account_id": account, "args": {"id": "4"}}
            )
            assert denied.is_error and body(denied)["error"] == "policy_denied"

        params = StdioServerParameters(  # `toolqueue mcp --stdio` runs as its key too
            command=sys.executable,
            args=["-m", "app.cli", "mcp", "--stdio"],
            env={**os.environ, "TOOLQUEUE_API_KEY": reader.tenant["api_key"]},
            cwd=str(ROOT),
        )
        async with Client(params) as stdio:
            listed = {t.title for t in (await stdio.list_tools()).tools if t.title}
            assert listed == shown[reader.tenant["key_id"]]
            refused = await stdio.call_tool("hubspot_contacts_update", update(account, "1"))
            assert refused.is_error and body(refused)["error"] == "tool_not_allowed"

    anyio.run(main)
