"""The pipeline tools over MCP, driven by the official SDK client against the real API (/mcp),
real workers and the vendor sandbox: listed for every key, `pipeline_run` answers at once and
`pipeline_status` follows it to the end, a bad definition is a tool error naming the problem,
the rejected records are read a page at a time under the cap and retried, cancel stops it."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from consentkit import consent_tenant, key
from mcp import Client
from mcp_types import CallToolResult
from pipelinekit import EXT, definition, sf_effects
from surfacekit import LOCK, PHONED, UNLOCK, five_stages, some_phones

from app.mcp.client import connect
from app.mcp.pipelinetools import MCP_CAP, fit, size

TOOLS = {"pipeline_run", "pipeline_status", "pipeline_cancel", "pipeline_rejected",
         "pipeline_retry_rejected"}  # fmt: skip
ENDED = ("succeeded", "partly_done", "failed", "cancelled")


def body(result: CallToolResult) -> dict[str, Any]:
    assert len(result.content) == 1 and result.content[0].type == "text", result
    text = result.content[0].text
    assert len(text.encode()) <= MCP_CAP
    out: dict[str, Any] = json.loads(text)
    return out


async def status(client: Client, pid: str) -> tuple[dict[str, Any], int]:
    """pipeline_status's view, and its size in bytes (what the agent reads)."""
    result = await client.call_tool("pipeline_status", {"pipeline_id": pid})
    assert result.is_error is False, result
    assert result.content[0].type == "text"
    return body(result), len(result.content[0].text.encode())


async def until_ended(
    client: Client, pid: str, timeout: float = 120, sizes: list[int] | None = None
) -> dict[str, Any]:
    """pipeline_status until the pipeline ends (`sizes` collects each answer's bytes)."""
    deadline = time.monotonic() + timeout
    while True:
        view, n = await status(client, pid)
        if sizes is not None:
            sizes.append(n)
        if view["status"] in ENDED:
            return view
        assert time.monotonic() < deadline, f"the pipeline never ended: {view}"
        await anyio.sleep(0.3)


def mcp_names(spec: dict[str, Any]) -> dict[str, Any]:
    """The definition with its tools named as tools/list names them."""
    spec["source"]["tool"] = spec["source"]["tool"].replace(".", "_")
    spec["sink"]["tool"] = spec["sink"]["tool"].replace(".", "_")
    return spec


def test_every_key_lists_the_pipeline_tools_with_their_hints(api: Any, api_url: str) -> None:
    owner = consent_tenant(api)
    reader = key(owner, scopes=["read"], name="reader")

    async def main() -> None:
        async with connect(api_url, api.tenant["api_key"], tasks=False) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
        async with connect(api_url, reader.tenant["api_key"], tasks=False) as client:
            seen_by_reader = {t.name for t in (await client.list_tools()).tools}
        assert set(tools) >= TOOLS and seen_by_reader >= TOOLS
        run = tools["pipeline_run"]
        assert set(run.input_schema["required"]) == {"source", "sink"}
        assert "$ref" not in json.dumps(run.input_schema)  # inlined for function-calling clients
        stage = run.input_schema["properties"]["stages"]["items"]["properties"]
        assert set(stage) == {"map", "filter", "enrich", "transform"}
        assert tools["pipeline_rejected"].input_schema["properties"]["limit"]["maximum"] == 50
        hints = {n: tools[n].annotations for n in TOOLS}
        assert {n for n, h in hints.items() if h and h.read_only_hint} == {
            "pipeline_status", "pipeline_rejected"}  # fmt: skip
        assert {n for n, h in hints.items() if h and h.open_world_hint} == {
            "pipeline_run", "pipeline_retry_rejected"}  # fmt: skip

    anyio.run(main)


def test_pipeline_run_answers_at_once_and_status_follows_it_to_succeeded(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")

    async def main() -> None:  # a client with the tasks extension: pipelines are no tasks
        async with connect(api_url, api.tenant["api_key"], tasks=True) as client:
            t0 = time.monotonic()
            started = await client.call_tool("pipeline_run", mcp_names(five_stages(src, dst)))
            assert time.monotonic() - t0 < 5
            assert started.is_error is False, started
            handle = body(started)
            assert handle["status"] in ("queued", "running")
            assert "pipeline_status" in handle["next"] and "history" not in handle
            kinds = [s["kind"] for s in handle["stages"]]
            assert kinds == ["source", "map", "filter", "map", "sink"]
            assert handle["stages"][0]["tool"] == "hubspot.contacts.list"  # the registry name
            pid = handle["pipeline_id"]
            sizes: list[int] = []
            done = await until_ended(client, pid, sizes=sizes)
            assert done["status"] == "succeeded", done
            assert [s["out"] for s in done["stages"]] == [1000] * 5
            phones = [e["fields"]["Phone"] for e in sf_effects(fresh_sandbox)["effects"]]
            assert len(phones) == 1000 and all(phones)  # the second map's field arrived
            assert all(s["state"] == "done" for s in done["stages"])
            print(f"pipeline_status, five stages: {sizes} bytes")
            assert max(sizes) < 1600  # the description's "about 1.2 KB"
        rest = api.get(f"/v1/pipelines/{pid}").json()
        assert rest["status"] == "succeeded" and "history" in rest
        assert {k: v for k, v in rest.items() if k != "history"} == done

    anyio.run(main)


def test_a_bad_definition_is_a_tool_error_naming_the_problem(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    unknown = definition(src, dst)
    unknown["source"]["tool"] = "hubspot.contacts.lst"
    typo = definition(src, dst)
    typo["stages"][1]["filter"] = "properties.emial != null"
    two_kinds = definition(src, dst)
    two_kinds["stages"][0]["filter"] = "id != null"

    async def main() -> None:
        async with connect(api_url, api.tenant["api_key"], tasks=False) as client:
            bad = await client.call_tool("pipeline_run", unknown)
            assert bad.is_error is True
            problem = body(bad)
            assert problem["error"] == "unknown_tool"
            assert "source" in problem["message"] and "hubspot.contacts.lst" in problem["message"]
            field = body(await client.call_tool("pipeline_run", typo))
            assert field["error"] == "unknown_field" and field["field"] == "properties.emial"
            assert "stages[1] (filter)" in field["message"]
            shape = await client.call_tool("pipeline_run", two_kinds)
            assert shape.is_error and body(shape)["error"] == "invalid_arguments"
            assert "exactly one of" in body(shape)["message"]
            missing = await client.call_tool("pipeline_status", {"pipeline_id": "nope"})
            assert missing.is_error and body(missing)["error"] == "pipeline_not_found"
        assert api.get("/v1/pipelines").json()["pipelines"] == []  # none of them started

    anyio.run(main)


def test_rejected_records_page_under_the_cap_and_retry_once_fixed(
    api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    fresh_sandbox.config(**LOCK)  # the 100 with a Phone: rejected
    try:

        async def main() -> None:
            async with connect(api_url, api.tenant["api_key"], tasks=False) as client:
                pid = body(await client.call_tool("pipeline_run", some_phones(src, dst)))[
                    "pipeline_id"
                ]
                done = await until_ended(client, pid)
                assert done["status"] == "partly_done", done
                assert done["rejected"] == 100 and done["stages"][-1]["out"] == 900
                args = {"pipeline_id": pid, "limit": 50}
                first = body(await client.call_tool("pipeline_rejected", args))
                assert first["total"] == 100 and len(first["rejected"]) == 50
                assert first["next_offset"] == 50
                entry = first["rejected"][0]
                assert entry["kind"] == "sink" and entry["stage"] == 4
                assert entry["error"]["code"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
                assert entry["record"][EXT].endswith("7") and entry["record"]["Phone"]
                second = body(await client.call_tool("pipeline_rejected", {**args, "offset": 50}))
                assert len(second["rejected"]) == 50 and "next_offset" not in second
                ids = {e["record"][EXT] for e in first["rejected"] + second["rejected"]}
                assert ids == PHONED
                too_many = await client.call_tool("pipeline_rejected", {**args, "limit": 51})
                assert too_many.is_error and body(too_many)["error"] == "invalid_arguments"

                fresh_sandbox.config(**UNLOCK)
                retried = await client.call_tool("pipeline_retry_rejected", {"pipeline_id": pid})
                assert retried.is_error is False, retried
                assert body(retried)["status"] == "running"
                again = await until_ended(client, pid)
                assert again["status"] == "succeeded" and again["rejected"] == 0, again
                assert again["retries"] == 1 and again["stages"][-1]["out"] == 1000
                nothing = await client.call_tool("pipeline_retry_rejected", {"pipeline_id": pid})
                assert nothing.is_error and body(nothing)["error"] == "nothing_rejected"

        anyio.run(main)
    finally:
        fresh_sandbox.config(**UNLOCK)


def test_pipeline_cancel_stops_it_for_its_tenant_only(
    api: Any, other_api: Any, api_url: str, fresh_sandbox: Any
) -> None:
    fresh_sandbox.config(hubspot_contacts=5000, rate_budgets={"hubspot": 5})
    try:
        src = api.account(fresh_sandbox, "hubspot")
        dst = api.account(fresh_sandbox, "salesforce")

        async def main() -> None:
            async with (
                connect(api_url, api.tenant["api_key"], tasks=False) as client,
                connect(api_url, other_api.tenant["api_key"], tasks=False) as other,
            ):
                pid = body(await client.call_tool("pipeline_run", definition(src, dst)))[
                    "pipeline_id"
                ]
                denied = await other.call_tool("pipeline_cancel", {"pipeline_id": pid})
                assert denied.is_error and body(denied)["error"] == "pipeline_not_found"
                cancelled = body(await client.call_tool("pipeline_cancel", {"pipeline_id": pid}))
                assert cancelled["status"] == "cancelled" and "history" not in cancelled
                again = body(await client.call_tool("pipeline_cancel", {"pipeline_id": pid}))
                assert again["status"] == "cancelled"
                view, _ = await status(client, pid)
                assert view["status"] == "cancelled"

        anyio.run(main)
    finally:
        fresh_sandbox.config(hubspot_contacts=1000, rate_budgets={})


def test_a_rejected_page_is_cut_to_fit_the_cap() -> None:
    entry = {"stage": 3, "kind": "sink", "error": {"code": "x", "message": "y"}}
    entries = [{**entry, "record": {"notes": "n" * 5000}} for _ in range(50)]
    page = {"pipeline_id": "p", "total": 60, "offset": 10, "rejected": entries}
    cut = fit(page, cap=60_000)
    assert size(cut) <= 60_000 and len(cut["rejected"]) == 11  # 11 × ~5.1 KB: the most that fit
    assert cut["next_offset"] == 10 + len(cut["rejected"])
    assert cut["rejected"] == page["rejected"][: len(cut["rejected"])]
    huge = {**page, "rejected": [{**entry, "record": {"notes": "n" * 200_000}}]}
    alone = fit(huge)
    assert size(alone) <= MCP_CAP and alone["rejected"][0]["record"] is None
    assert alone["rejected"][0]["error"] == entry["error"] and "record_note" in alone["rejected"][0]
    small = {**page, "rejected": page["rejected"][:20]}
    assert fit(small) == small  # it fits: unchanged
