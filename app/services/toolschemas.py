"""Tool definitions for model APIs, generated from the tool registry's pydantic models.

One argument shape everywhere (MCP `tools/list`, `GET /v1/tools?format=openai|anthropic`): a
call's arguments are the body of `POST /v1/jobs` without `tool`, i.e. `{"account_id", "args",
"fields"?, "max_bytes"?, "max_pages"?, "delivery"?, "idempotency_key"?}`. The tool's own
arguments stay nested under `args` because several tools have arguments (`fields`, `limit`) that
would collide with toolqueue's options if they were flattened.

Names: model APIs accept `^[a-zA-Z0-9_-]{1,64}$` (OpenAI, Anthropic, and MCP hosts that forward
tools to them), so a registry name's dots become `_` (`hubspot.contacts.list` →
`hubspot_contacts_list`). A name that would then be longer than 64 characters, collide with
another tool's or take the name of one of the MCP server's own tools (job_*, pipeline_*) gets an
`_` and 8 hex digits of the SHA-256 of the registry name instead of its tail. `tool_names` maps
them back.

Annotations: MCP `tools/list` and `GET /v1/tools` carry each tool's `Tool.hints` (the MCP
ToolAnnotations); the OpenAI and Anthropic tool shapes have no field for them, so `definitions`
leaves them out.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model

from app.kernel import strictjson
from app.kernel.registry import registry
from app.services.jobs import JobCreate
from app.store.apikeys import Principal
from connectors.base import Tool

Format = Literal["openai", "anthropic"]
FORMATS: tuple[str, ...] = ("openai", "anthropic")
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
# the MCP server's own tools (app.mcp.server, app.mcp.pipelinetools); a registry tool never
# takes these names
RESERVED_NAMES = frozenset(
    {"job_status", "job_result", "job_wait", "job_cancel", "job_approve", "job_reject",
     "pipeline_run", "pipeline_status", "pipeline_cancel", "pipeline_rejected",
     "pipeline_retry_rejected"}
)  # fmt: skip
# the job options a tool call may carry besides `account_id` and `args` (JobCreate's fields)
OPTIONS = ("fields", "max_bytes", "max_pages", "delivery", "idempotency_key")
MAX_NAME = 64

CALL_NOTE = (
    "Runs as a toolqueue job (call now, fetch later): the call answers at once with a job "
    "handle; every page is fetched for you and the result (at most 131,072 bytes, with a "
    "`continuation` when truncated) is fetched later."
)


def function_names(names: Iterable[str]) -> dict[str, str]:
    """Registry name → model-API-safe name; deterministic for a given set of names."""
    names = list(names)
    base = {n: n.replace(".", "_") for n in names}
    counts = Counter(base.values())
    counts.update(RESERVED_NAMES)
    out: dict[str, str] = {}
    for n in names:
        b = base[n]
        ok = counts[b] == 1 and NAME_PATTERN.match(b)
        out[n] = b if ok else f"{b[: MAX_NAME - 9]}_{hashlib.sha256(n.encode()).hexdigest()[:8]}"
    return out


def tool_names() -> dict[str, str]:
    """Safe name → registry name, for every registry tool."""
    return {safe: name for name, safe in _names(tuple(registry().tools)).items()}


def safe_name(tool_name: str) -> str:
    return _names(tuple(registry().tools))[tool_name]


@lru_cache(maxsize=8)
def _names(names: tuple[str, ...]) -> dict[str, str]:
    return function_names(names)


def call_model(tool: Tool) -> type[BaseModel]:
    """The pydantic model of a tool call's arguments (validates them; its schema is advertised)."""
    return _call_model(tool.name, tool.args, tool.accepts)


def validate_call(tool: Tool, arguments: dict[str, Any]) -> BaseModel:
    """A call's arguments, validated strictly (`app.strictjson`); raises ValidationError."""
    return strictjson.validate(call_model(tool), arguments)


@lru_cache(maxsize=512)
def _call_model(name: str, args: type[BaseModel], accepts: tuple[str, ...]) -> type[BaseModel]:
    vendors = " or ".join(accepts)
    required_args = any(f.is_required() for f in args.model_fields.values())
    args_field: Any = (
        Field(description=f"The arguments of `{name}`")
        if required_args
        else Field(default_factory=args, description=f"The arguments of `{name}` (optional)")
    )
    return create_model(
        name.replace(".", "_"),
        __config__=ConfigDict(extra="forbid", strict=True, json_schema_extra=_drop_null_defaults),
        __doc__=f"A call of `{name}`: the body of POST /v1/jobs without `tool`.",
        account_id=(
            str,
            Field(
                min_length=1,
                max_length=100,
                description=f"A connected {vendors} account (POST /v1/accounts)",
            ),
        ),
        args=(args, args_field),
        **_options(),
    )


def _options() -> dict[str, Any]:
    """JobCreate's option fields, not nullable in the schema: a model should omit them, not send
    null (the default, None, means "the job's default" and is never validated)."""
    out: dict[str, Any] = {}
    for key in OPTIONS:
        info = copy.copy(JobCreate.model_fields[key])
        ann: Any = info.annotation
        if get_origin(ann) in (Union, UnionType):
            kept = [a for a in get_args(ann) if a is not type(None)]
            ann = kept[0] if len(kept) == 1 else ann
        out[key] = (ann, info)
    return out


def _drop_null_defaults(schema: dict[str, Any]) -> None:
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict) and "default" in prop and prop["default"] is None:
            del prop["default"]


def description(tool: Tool) -> str:
    return f"{tool.description}\n\n{CALL_NOTE}"


def input_schema(tool: Tool) -> dict[str, Any]:
    """Self-contained JSON Schema of a call's arguments (local `$ref`s inlined)."""
    return _input_schema(tool.name, tool.args, tool.accepts)


@lru_cache(maxsize=512)
def _input_schema(name: str, args: type[BaseModel], accepts: tuple[str, ...]) -> dict[str, Any]:
    return inline_refs(_call_model(name, args, accepts).model_json_schema())


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace `{"$ref": "#/$defs/X"}` by the definition: several function-calling clients do not
    resolve references. A recursive definition stays a reference (and `$defs` stays)."""
    defs: dict[str, Any] = schema.get("$defs", {})
    kept: set[str] = set()

    def walk(node: Any, stack: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(v, stack) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            key = ref[len("#/$defs/") :]
            if key in stack or key not in defs:
                kept.add(key)
                return dict(node)
            siblings = {k: walk(v, stack) for k, v in node.items() if k != "$ref"}
            return {**walk(defs[key], (*stack, key)), **siblings}
        return {k: walk(v, stack) for k, v in node.items() if k != "$defs"}

    out: dict[str, Any] = walk(copy.deepcopy(schema), ())
    if kept:
        out["$defs"] = {k: v for k, v in defs.items() if k in kept}
    return out


def definitions(fmt: Format, who: Principal | None = None) -> list[dict[str, Any]]:
    """Every registry tool in the shape `fmt`'s API takes in its `tools` list.

    `openai` is the Chat Completions shape `{"type": "function", "function": {"name",
    "description", "parameters"}}`; `anthropic` the Messages API's `{"name", "description",
    "input_schema"}`.
    """
    out = []
    for tool in registry().tools.values():
        if who is not None and not who.may_use(tool.name, writes=not tool.read_only):
            continue
        name, desc, schema = safe_name(tool.name), description(tool), input_schema(tool)
        if fmt == "openai":
            out.append(
                {
                    "type": "function",
                    "function": {"name": name, "description": desc, "parameters": schema},
                }
            )
        else:
            out.append({"name": name, "description": desc, "input_schema": schema})
    return out
