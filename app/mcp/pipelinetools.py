"""The MCP server's pipeline tools: `pipeline_run`, `pipeline_status`, `pipeline_cancel`,
`pipeline_rejected` and `pipeline_retry_rejected`, the `/v1/pipelines` endpoints as tools.

Each runs as the caller's API key through `app.services.pipelines`, which checks what a
definition needs (the `read` and `write` scopes, the key's tools and accounts, the policy), so
a refusal is the same tool error the model reads for a job tool. What comes back is the brief
view (no state log): an agent pays for every byte of it in context.
"""

from __future__ import annotations

import json
from typing import Any

from mcp_types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field

from app.mcp import calls
from app.services import pipelines, toolschemas
from app.store.apikeys import Principal
from app.work.pipelineplan import PipelineCreate

MCP_CAP = 131072  # a tool result's text, like a result body
REJECTED_MAX = 50  # records a pipeline_rejected page returns at most
NEXT = (
    "The pipeline runs in the background, its stages overlapping. pipeline_status(pipeline_id) "
    "shows each stage's state and records in/out/rejected (every few seconds is plenty); it "
    "ends succeeded, partly_done (some records rejected: pipeline_rejected lists them with the "
    "reason, pipeline_retry_rejected runs them again), failed or cancelled. "
    "pipeline_cancel(pipeline_id) stops every stage."
)
OMITTED = "omitted: larger than a tool result may be; GET /v1/pipelines/{id}/rejected shows it"


class PipelineIdArgs(BaseModel):
    """A pipeline of this API key's tenant."""

    model_config = ConfigDict(extra="forbid")

    pipeline_id: str = Field(min_length=1, max_length=200, description="From pipeline_run")


class RejectedArgs(PipelineIdArgs):
    offset: int = Field(0, ge=0, le=10_000_000, description="The first entry (`next_offset`)")
    limit: int = Field(20, ge=1, le=REJECTED_MAX, description="Entries at most (≤ 50)")


def registry_names(spec: PipelineCreate) -> PipelineCreate:
    """The definition with MCP tool names (`hubspot_contacts_list`, as tools/list shows them)
    turned into registry names (`hubspot.contacts.list`): an agent writes either."""
    known = toolschemas.tool_names()

    def named(part: Any) -> Any:
        return part.model_copy(update={"tool": known.get(part.tool, part.tool)})

    stages = [
        s.model_copy(update={"enrich": named(s.enrich)}) if s.enrich is not None else s
        for s in spec.stages
    ]
    return spec.model_copy(
        update={"source": named(spec.source), "sink": named(spec.sink), "stages": stages}
    )


def brief_of(view: dict[str, Any]) -> dict[str, Any]:
    """A full view (`cancel`, `retry_rejected` answer one) without its state log."""
    return {k: v for k, v in view.items() if k != "history"}


async def pipeline_run(who: Principal, spec: PipelineCreate) -> CallToolResult:
    """Check the definition (a problem is a tool error naming the stage and what is wrong),
    start the pipeline and answer at once with its brief view and what to call next."""
    started = await calls.run_sync(pipelines.create, who, registry_names(spec))
    view = await calls.run_sync(pipelines.brief, who.tenant_id, started["pipeline_id"])
    if started.get("idempotent_replay"):
        view["idempotent_replay"] = True
    return calls.text_result({**view, "next": NEXT})


async def pipeline_status(who: Principal, args: PipelineIdArgs) -> CallToolResult:
    """The brief view, what the agent pays for in context on every call: measured for a
    five-stage pipeline (source, map, filter, map, sink; tests/api/test_mcp_pipelines.py),
    about 0.8 KB queued and 1.2 KB running or ended; each further stage adds ~200 bytes."""
    return calls.text_result(await calls.run_sync(pipelines.brief, who.tenant_id, args.pipeline_id))


async def pipeline_cancel(who: Principal, args: PipelineIdArgs) -> CallToolResult:
    view = await calls.run_sync(pipelines.cancel, who.tenant_id, args.pipeline_id)
    return calls.text_result(brief_of(view))


async def pipeline_rejected(who: Principal, args: RejectedArgs) -> CallToolResult:
    page = await calls.run_sync(
        pipelines.rejected, who.tenant_id, args.pipeline_id, args.offset, args.limit
    )
    return calls.text_result(fit(page))


async def pipeline_retry_rejected(who: Principal, args: PipelineIdArgs) -> CallToolResult:
    view = await calls.run_sync(pipelines.retry_rejected, who, args.pipeline_id)
    return calls.text_result({**brief_of(view), "next": NEXT})


def size(value: Any) -> int:
    """Bytes of `value` as `calls.text_result` writes it."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def fit(page: dict[str, Any], cap: int = MCP_CAP) -> dict[str, Any]:
    """A rejected page under `cap` bytes: the longest run of its entries that fits, the rest
    left to the next page (`next_offset` says where it starts); an entry too large alone keeps
    its stage and reason, its record replaced by a note."""
    entries: list[dict[str, Any]] = page["rejected"]
    if size(page) <= cap:
        return page
    room = cap - size({**page, "rejected": [], "next_offset": page["offset"] + len(entries)})
    kept = 0
    for entry in entries:
        room -= size(entry) + (1 if kept else 0)  # and the comma before it
        if room < 0:
            break
        kept += 1
    if kept == 0:
        kept, entries = 1, [{**entries[0], "record": None, "record_note": OMITTED}]
    return {**page, "rejected": entries[:kept], "next_offset": page["offset"] + kept}


PIPELINE_TOOLS: dict[str, tuple[type[BaseModel], Any, str]] = {
    "pipeline_run": (
        PipelineCreate,
        pipeline_run,
        "Run a toolqueue pipeline: a source read tool's every record, through `stages` (map: "
        "field → JMESPath; filter: JMESPath; enrich: a read tool per record; transform: a "
        "registered one), into a sink batch write tool (e.g. salesforce.records.upsert), under "
        "one id. Tool names are registry names or these tools' names. Answers at once with the "
        "pipeline's id and state; a definition that cannot run is an error naming the stage "
        "and the problem. The key needs what the definition does (read the source, write the "
        "sink).",
    ),
    "pipeline_status": (
        PipelineIdArgs,
        pipeline_status,
        "A toolqueue pipeline's state and, per stage, its kind, tool, state and records in, out "
        "and rejected (about 1.2 KB for five stages; no state log).",
    ),
    "pipeline_cancel": (
        PipelineIdArgs,
        pipeline_cancel,
        "Cancel a running toolqueue pipeline: every stage stops (no further vendor calls); "
        "returns its state. An ended pipeline that did not get cancelled cannot be.",
    ),
    "pipeline_rejected": (
        RejectedArgs,
        pipeline_rejected,
        "A pipeline's rejected records, oldest first, a page at a time (limit ≤ 50, at most "
        "131,072 bytes): each with its stage, the reason and the record as it entered that "
        "stage; `next_offset` when there are more.",
    ),
    "pipeline_retry_rejected": (
        PipelineIdArgs,
        pipeline_retry_rejected,
        "Run an ended pipeline's rejected records again, each from the stage that rejected it, "
        "under the same id (after fixing what rejected them); records rejected again return "
        "to the list.",
    ),
}

# by name: what each tool does to the world. pipeline_run and pipeline_retry_rejected make the
# sink's vendor writes (open world, destructive as an upsert; run twice, they write twice);
# pipeline_cancel ends the pipeline for good, and doing it again changes nothing more
PIPELINE_HINTS: dict[str, ToolAnnotations] = {
    "pipeline_run": ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
    ),
    "pipeline_status": ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    ),
    "pipeline_cancel": ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False
    ),
    "pipeline_rejected": ToolAnnotations(
        read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
    ),
    "pipeline_retry_rejected": ToolAnnotations(
        read_only_hint=False, destructive_hint=True, idempotent_hint=False, open_world_hint=True
    ),
}
assert set(PIPELINE_HINTS) == set(PIPELINE_TOOLS)
