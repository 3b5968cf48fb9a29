"""A pipeline's definition as data: its model, and the plan the coordinator runs.

Stages are numbered: 0 is the source, 1..n the `stages` in order, n + 1 the sink. The source,
each `enrich` stage and the sink run as jobs (one per block, in block order, a stage at a
time); `map`, `filter` and `transform` are pure and run as a block moves between them
(`app.work.transforms`). The checks that refuse a bad definition are
`app.services.pipelinedefs`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.work import transforms
from app.work.transforms import Pure

NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,79}$"
MAX_STAGES = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class SourceSpec(_Strict):
    """A read tool whose every record flows in; `fields` projects them (and names what later
    stages may read)."""

    tool: str = Field(max_length=200)
    account_id: str = Field(max_length=100)
    args: dict[str, Any] = Field(default_factory=dict)
    fields: list[str] | None = Field(None, min_length=1, max_length=200)


class EnrichSpec(_Strict):
    """A read tool called per record (`args` are templates over `record`, e.g.
    `{{ record.properties.email | domain }}`); its first record goes into field `into`.
    Repeated lookups within a pipeline are answered from its cache."""

    tool: str = Field(max_length=200)
    account_id: str = Field(max_length=100)
    args: dict[str, Any] = Field(default_factory=dict)
    into: str = Field(pattern=NAME)
    on_missing: Literal["null", "drop", "reject"] = Field(
        "null", description="Nothing found: `into` is null, the record is dropped, or rejected"
    )


class TransformSpec(_Strict):
    """A Python transform the operator registered (entry point group `toolqueue.transforms`)."""

    name: str = Field(max_length=100)
    options: dict[str, Any] = Field(default_factory=dict)


class StageSpec(_Strict):
    """Exactly one of `map` (field name → JMESPath), `filter` (JMESPath: records for which it
    is false or null are dropped), `enrich`, `transform`."""

    map: dict[str, str] | None = Field(None, min_length=1, max_length=200)
    filter: str | None = Field(None, min_length=1, max_length=1000)
    enrich: EnrichSpec | None = None
    transform: TransformSpec | None = None

    @model_validator(mode="after")
    def _one(self) -> StageSpec:
        given = [
            k for k in ("map", "filter", "enrich", "transform") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError("a stage is exactly one of `map`, `filter`, `enrich`, `transform`")
        return self

    @property
    def kind(self) -> str:
        return next(
            k for k in ("map", "filter", "enrich", "transform") if getattr(self, k) is not None
        )


class SinkSpec(_Strict):
    """A write tool that takes `records`; each block's records become them (its other
    arguments are `args`)."""

    tool: str = Field(max_length=200)
    account_id: str = Field(max_length=100)
    args: dict[str, Any] = Field(default_factory=dict)


class PipelineCreate(_Strict):
    """POST /v1/pipelines: a source, stages, a sink."""

    source: SourceSpec
    stages: list[StageSpec] = Field(default_factory=list, max_length=MAX_STAGES)
    sink: SinkSpec
    callback_url: str | None = Field(None, max_length=2000, description="Webhook at the end")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    name: str | None = Field(None, max_length=200)


def parse(raw: dict[str, Any]) -> PipelineCreate:
    """A stored definition back as the model (it was checked when the pipeline was made)."""
    return PipelineCreate.model_validate_json(json.dumps(raw))


@dataclass
class Plan:
    """What the coordinator runs: the stages by index, which of them are jobs, the pure ones
    compiled, and the fields the sink receives (None: the whole record)."""

    spec: PipelineCreate
    kinds: list[str]  # by stage index: source, map, filter, enrich, transform, sink
    pure: dict[int, Pure] = field(default_factory=dict)
    mapped: list[str] | None = None

    @property
    def sink(self) -> int:
        return len(self.kinds) - 1

    def is_job(self, stage: int) -> bool:
        return self.kinds[stage] in ("source", "enrich", "sink")

    def job_stages(self) -> list[int]:
        return [i for i in range(len(self.kinds)) if self.is_job(i)]

    def next_job(self, stage: int) -> int:
        """The first job stage after `stage`."""
        return next(i for i in range(stage + 1, len(self.kinds)) if self.is_job(i))

    def segment(self, start: int) -> list[tuple[int, Pure]]:
        """The pure stages from `start` up to the next job stage."""
        out = []
        for i in range(start, len(self.kinds)):
            if self.is_job(i):
                break
            out.append((i, self.pure[i]))
        return out

    def enrich(self, stage: int) -> EnrichSpec:
        spec = self.spec.stages[stage - 1].enrich
        assert spec is not None
        return spec

    def stage_tool(self, stage: int) -> tuple[str, str] | None:
        """(tool, account) of a job stage."""
        if stage == 0:
            return self.spec.source.tool, self.spec.source.account_id
        if stage == self.sink:
            return self.spec.sink.tool, self.spec.sink.account_id
        if self.kinds[stage] == "enrich":
            e = self.enrich(stage)
            return e.tool, e.account_id
        return None


def plan_of(spec: PipelineCreate) -> Plan:
    """Compile a definition that passed `check` (or was stored after it)."""
    kinds = ["source", *(s.kind for s in spec.stages), "sink"]
    out = Plan(spec, kinds)
    mapped: list[str] = []
    for i, s in enumerate(spec.stages, start=1):
        if s.map is not None:
            out.pure[i] = transforms.build_map(s.map)
            mapped += [k for k in s.map if k not in mapped]
        elif s.filter is not None:
            out.pure[i] = transforms.build_filter(s.filter)
        elif s.transform is not None:
            out.pure[i] = transforms.build_python(s.transform.name, s.transform.options)
    out.mapped = mapped or None
    return out
