"""The MCP tool annotations a tool declares (`connectors.base.Tool`), as MCP `tools/list` and
`GET /v1/tools` list them: a write tool in a registry of its own, listed by the real listing
functions."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import BaseModel

import connectors
from app.mcp import server
from app.services import jobs, toolschemas
from connectors.base import Http, Page, Tool
from connectors.unified import unified_tools

READ = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True,
        "openWorldHint": True}  # fmt: skip


class ArchiveArgs(BaseModel):
    id: str


def _never(http: Http, args: object, cursor: object) -> Page:
    raise AssertionError("not called: only listed")


def archive(**over: bool) -> Tool:
    return Tool(
        name="acme.contacts.archive",
        description="Archive a contact",
        args=ArchiveArgs,
        fetch=_never,
        read_only=False,
        destructive=True,
        **over,
    )


@pytest.fixture
def one_write_tool(monkeypatch: pytest.MonkeyPatch) -> Tool:
    """A registry holding only `archive()`, seen by every listing."""
    tool = archive()
    reg = connectors.Registry(vendors={}, tools={tool.name: tool})
    for module in (jobs, server, toolschemas):
        monkeypatch.setattr(module, "registry", lambda: reg)
    return tool


def test_a_read_tool_is_read_only_and_idempotent_by_default() -> None:
    tool = Tool(name="acme.contacts.list", description="", args=ArchiveArgs, fetch=_never)
    assert tool.hints == READ


def test_a_write_is_not_idempotent_unless_it_says_so() -> None:
    assert archive().hints == {"readOnlyHint": False, "destructiveHint": True,
                               "idempotentHint": False, "openWorldHint": True}  # fmt: skip
    assert archive(idempotent=True).hints["idempotentHint"] is True


def test_a_read_only_tool_cannot_be_destructive() -> None:
    with pytest.raises(ValueError, match="read-only"):
        replace(archive(), read_only=True)


def test_a_write_tool_is_listed_as_one_in_v1_tools(one_write_tool: Tool) -> None:
    (listed,) = jobs.tools()
    assert listed["name"] == one_write_tool.name
    assert listed["annotations"] == {"readOnlyHint": False, "destructiveHint": True,
                                     "idempotentHint": False, "openWorldHint": True}  # fmt: skip


def test_a_write_tool_is_listed_as_one_in_mcp(one_write_tool: Tool) -> None:
    listed = {t.name: t for t in server.list_tools()}
    tool = listed["acme_contacts_archive"]
    assert tool.annotations is not None
    wire = tool.annotations.model_dump(by_alias=True, exclude_none=True)
    assert wire == jobs.tools()[0]["annotations"]
    assert tool.annotations.read_only_hint is False and tool.annotations.destructive_hint is True


def test_the_job_tools_are_closed_world_and_only_job_cancel_changes_anything() -> None:
    hints = {n: server.job_tool_annotations(n) for n in server.JOB_TOOLS}
    assert all(h.open_world_hint is False and h.idempotent_hint is True for h in hints.values())
    assert {n for n, h in hints.items() if not h.read_only_hint} == {"job_cancel"}
    assert {n for n, h in hints.items() if h.destructive_hint} == {"job_cancel"}


def test_the_decision_tools_change_things_and_approving_releases_vendor_writes() -> None:
    own = set(server.JOB_TOOLS) | set(server.DECIDE_TOOLS) | set(server.PIPELINE_TOOLS)
    assert own == toolschemas.RESERVED_NAMES
    hints = {n: server.job_tool_annotations(n) for n in server.DECIDE_TOOLS}
    assert all(not h.read_only_hint and h.destructive_hint for h in hints.values())
    assert {n for n, h in hints.items() if h.open_world_hint} == {"job_approve"}


def test_only_the_pipeline_tools_that_reach_a_sink_touch_the_world() -> None:
    hints = {n: server.job_tool_annotations(n) for n in server.PIPELINE_TOOLS}
    writes = {"pipeline_run", "pipeline_retry_rejected"}
    assert {n for n, h in hints.items() if h.open_world_hint} == writes
    assert {n for n, h in hints.items() if not h.idempotent_hint} == writes
    assert {n for n, h in hints.items() if h.read_only_hint} == {
        "pipeline_status", "pipeline_rejected"}  # fmt: skip
    assert {n for n, h in hints.items() if h.destructive_hint} == writes | {"pipeline_cancel"}
    listed = {t.name: t.annotations for t in server.list_tools()}
    assert all(listed[n] == h for n, h in hints.items())


def test_a_unified_tool_takes_the_worst_effects_of_the_tools_it_runs() -> None:
    tools = connectors.load().tools
    reads = {t.name: t for t in unified_tools(tools)}
    assert reads["crm.contacts.list"].hints == READ
    hubspot = tools["hubspot.contacts.list"]
    tools["hubspot.contacts.list"] = replace(hubspot, read_only=False, destructive=True)
    crm = {t.name: t for t in unified_tools(tools)}["crm.contacts.list"]
    assert crm.hints == {"readOnlyHint": False, "destructiveHint": True,
                         "idempotentHint": False, "openWorldHint": True}  # fmt: skip
