"""Helpers of the MCP consent tests (tests/api/test_mcp_approvals.py): a tenant under the
default policy and its scoped keys, as tests/integration/consent/consentkit.py makes them
(that folder is not on this folder's import path), plus MCP task polling that records the
statuses a task went through."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from mcp import Client
from mcp_types import CallToolResult

from app.mcp.client import get_task


def consent_tenant(api: Any, name: str = "mcp-consent") -> Any:
    """An Api for a fresh tenant under the default policy (destructive: approve)."""
    from app.store.tenants import create_tenant

    return type(api)(api.url, create_tenant(name))


def key(api: Any, **body: Any) -> Any:
    """An Api for a new key of `api`'s tenant (POST /v1/keys), e.g. scopes=["approve"]."""
    resp = api.post("/v1/keys", body)
    assert resp.status_code == 201, resp.text
    made = resp.json()
    return type(api)(api.url, {**api.tenant, "api_key": made["api_key"], "key_id": made["key_id"]})


def seeded_contacts(api: Any, account: str, emails: list[str]) -> list[str]:
    """HubSpot contacts created by a real write job, run while the account's policy allows
    destructive writes (an upsert is one), then the default policy again."""
    policy = f"{api.url}/v1/accounts/{account}/policy"
    assert api.s.put(policy, json={"destructive": "allow"}, timeout=10).status_code == 200
    records = [{"id": e, "properties": {"email": e, "firstname": "Ada"}} for e in emails]
    job = api.call("hubspot.contacts.upsert", account_id=account, args={"records": records})
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", done
    assert api.s.put(policy, json={}, timeout=10).status_code == 200
    return [r["id"] for r in api.records(job["job_id"])]


def body(result: CallToolResult) -> dict[str, Any]:
    assert len(result.content) == 1 and result.content[0].type == "text", result
    out: dict[str, Any] = json.loads(result.content[0].text)
    return out


async def follow(
    client: Client, task_id: str, until: tuple[str, ...], seen: list[str], timeout: float = 60
) -> dict[str, Any]:
    """tasks/get every 50 ms until the task's status is one of `until`; each status change is
    appended to `seen` (so a test can assert the whole path, not only the end)."""
    deadline = time.monotonic() + timeout
    while True:
        task = await get_task(client, task_id)
        if not seen or seen[-1] != task["status"]:
            seen.append(task["status"])
        if task["status"] in until:
            return task
        assert time.monotonic() < deadline, f"task never got to {until}: {task}"
        await anyio.sleep(0.05)
