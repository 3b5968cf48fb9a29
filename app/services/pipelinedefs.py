"""The checks that refuse a pipeline definition that cannot run, naming the stage and the
problem (422; 403 for what the key may not do, 404 for an account the tenant lacks).

Every field a stage reads must be one the source projects (`fields`) or an earlier stage
sets, so a typo is a 422 before anything runs, not 20,000 silent nulls.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from app.kernel.errors import InvalidInput
from app.kernel.registry import registry
from app.services import jobs
from app.store import accounts, policies
from app.store.apikeys import Principal
from app.work import launch, transforms
from app.work.pipelineplan import (
    NAME,
    EnrichSpec,
    PipelineCreate,
    Plan,
    SinkSpec,
    SourceSpec,
    plan_of,
)
from connectors.base import Tool
from connectors.expressions import ExpressionError, compile_expr
from connectors.templates import check as check_template
from connectors.templates import references as template_references


def check(tenant_id: str, who: Principal, spec: PipelineCreate) -> Plan:
    """Refuse a definition that cannot run, naming the stage and the problem (422; 403 for
    what the key may not do, 404 for an account the tenant lacks)."""
    _source(tenant_id, who, spec.source)
    known = Fields(spec.source.fields)
    for i, stage in enumerate(spec.stages, start=1):
        where = f"stages[{i - 1}] ({stage.kind})"
        if stage.map is not None:
            for name, text in stage.map.items():
                if not re.match(NAME, name):
                    raise _bad(f"{where}: field name {name!r} must match {NAME}", "invalid_stage")
                known.expect(_expr(text, where), where)
            known.add(*stage.map)
        elif stage.filter is not None:
            known.expect(_expr(stage.filter, where), where)
        elif stage.enrich is not None:
            _enrich(tenant_id, who, stage.enrich, known, where)
            known.add(stage.enrich.into)
        elif stage.transform is not None and stage.transform.name not in transforms.registered():
            names = ", ".join(sorted(transforms.registered())) or "none"
            raise _bad(
                f"{where}: no transform named {stage.transform.name!r} (registered: {names})",
                "unknown_transform",
            )
        if stage.transform is not None:
            known.open()  # a Python transform may set anything
    _sink(tenant_id, who, spec.sink)
    return plan_of(spec)


class Fields:
    """The fields a record is known to carry at a point of the pipeline (None: anything, the
    source projects nothing)."""

    def __init__(self, projected: list[str] | None) -> None:
        self.names: set[str] | None = set(projected) if projected else None

    def add(self, *names: str) -> None:
        if self.names is not None:
            self.names.update(names)

    def open(self) -> None:
        self.names = None

    def has(self, path: str) -> bool:
        if self.names is None:
            return True
        return any(
            path == f or path.startswith(f + ".") or f.startswith(path + ".") for f in self.names
        )

    def expect(self, paths: list[str], where: str) -> None:
        for path in paths:
            if not self.has(path):
                shown = ", ".join(sorted(self.names or ()))
                raise _bad(
                    f"{where} reads field {path!r}, which the source does not project and no "
                    f"earlier stage sets (known here: {shown}); add it to source.fields",
                    "unknown_field",
                    field=path,
                )


def _bad(message: str, code: str, **extra: Any) -> InvalidInput:
    return InvalidInput(message, code=code, **extra)


def _expr(text: str, where: str) -> list[str]:
    try:
        return list(compile_expr(text).references)
    except ExpressionError as exc:
        raise _bad(f"{where}: {exc}", "invalid_expression") from None


def _tool(name: str, where: str) -> Tool:
    tool = registry().tools.get(name)
    if tool is None:
        raise _bad(f"{where}: unknown tool {name!r}; GET /v1/tools lists them", "unknown_tool")
    return tool


def _account(tenant_id: str, tool: Tool, account_id: str, where: str) -> None:
    account = accounts.load(account_id, tenant_id)  # 404 for another tenant's
    if account["vendor"] not in tool.accepts:
        raise _bad(
            f"{where}: {tool.name} runs on {' or '.join(tool.accepts)} accounts; {account_id} "
            f"is a {account['vendor']} account",
            "account_vendor_mismatch",
        )


def _source(tenant_id: str, who: Principal, spec: SourceSpec) -> None:
    tool = _tool(spec.tool, "source")
    if tool.write is not None or tool.routes is not None:
        raise _bad(f"source: {spec.tool} writes; a source is a read tool", "source_not_read")
    jobs.permit(who, spec.tool, spec.account_id)
    _account(tenant_id, tool, spec.account_id, "source")
    if spec.fields is not None and any(not f or len(f) > 200 for f in spec.fields):
        raise _bad("source.fields: each must be 1-200 characters", "invalid_stage")
    _args(tool, spec.args, "source.args")


def _args(tool: Tool, args: dict[str, Any], where: str) -> None:
    try:
        tool.args.model_validate_json(json.dumps(args), strict=True)
    except ValidationError as exc:
        raise _bad(f"{where}: {jobs.explain(exc)}", "invalid_args") from None


def _enrich(tenant_id: str, who: Principal, spec: EnrichSpec, known: Fields, where: str) -> None:
    tool = _tool(spec.tool, where)
    if not tool.read_only or tool.routes is not None:
        raise _bad(f"{where}: {spec.tool} writes; enrich with a read tool", "enrich_not_read")
    jobs.permit(who, spec.tool, spec.account_id)
    _account(tenant_id, tool, spec.account_id, where)
    problems = check_template(spec.args, {"record"})
    if problems:
        raise _bad(f"{where}: args: {'; '.join(problems)}", "invalid_template")
    paths = [p.split(".", 1)[1] for p in template_references(spec.args) if "." in p]
    known.expect(paths, where)


def _sink(tenant_id: str, who: Principal, spec: SinkSpec) -> None:
    tool = _tool(spec.tool, "sink")
    if tool.routes is not None:
        vendors = ", ".join(sorted(tool.routes))
        raise _bad(
            f"sink: {spec.tool} is a unified tool; name the vendor's own write tool for the "
            f"sink account ({vendors})",
            "sink_not_batch",
        )
    if tool.write is None:
        raise _bad(f"sink: {spec.tool} only reads; a sink is a write tool", "sink_not_write")
    if "records" not in tool.args.model_fields:
        raise _bad(
            f"sink: {spec.tool} writes one object per call; a sink takes `records` (a batch "
            "write tool, e.g. salesforce.records.upsert)",
            "sink_not_batch",
        )
    if "records" in spec.args:
        raise _bad("sink.args: omit `records`: each block's records are the sink's", "invalid_args")
    jobs.permit(who, spec.tool, spec.account_id)
    _account(tenant_id, tool, spec.account_id, "sink")
    try:
        tool.args.model_validate_json(json.dumps({**spec.args, "records": []}), strict=True)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if e["loc"] and e["loc"][0] != "records"]
        if errors:
            raise _bad(
                f"sink.args: {jobs.explain_errors(errors, 'args')}", "invalid_args"
            ) from None
    decision = sink_decision(tenant_id, who, spec)
    if decision.rule == "deny":
        launch.refuse_denied(who, spec.tool, spec.account_id, decision.reason, records=0)


def sink_decision(tenant_id: str, who: Principal, spec: SinkSpec) -> policies.Decision:
    """What policy says of the sink's writes: allow, approve (once, for the whole pipeline)
    or deny. How many records a pipeline writes is unknown when it starts, so a policy with
    an `approve_above` threshold holds it for approval too."""
    tool = registry().tools[spec.tool]
    policy = policies.effective(tenant_id, spec.account_id, who.key_id)
    decision = policies.decide(policy, destructive=tool.destructive, records=0)
    if decision.rule == "allow" and policy.approve_above is not None:
        reason = f"policy `approve_above: {policy.approve_above}` (a pipeline's count is unknown)"
        return policies.Decision("approve", reason)
    return decision
