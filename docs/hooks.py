"""MkDocs hook: the parts of the docs that would drift, rendered from the code at build time.

A page holds a marker and `on_page_markdown` replaces it:

- `<!-- settings-table -->`: every field of `app.kernel.settings.Settings` (its environment
  variable, default, description and bounds);
- `<!-- sandbox-settings-table -->`: the same for `sandbox.settings.SandboxSettings`, when that
  module exists (until then the sandbox's fields are in `Settings`);
- `<!-- tools-table -->`: the tools `GET /v1/tools` lists (`app.services.jobs.tools`): name,
  vendors, description and arguments;
- `<!-- writes-table -->`: every write tool of the registry: its vendor request, retry-safety
  mechanism, what an uncertain operation does, and its hints. The mechanism, hints and routes
  come from the tools; what the code cannot say (a Python tool's request, how a lookup looks)
  is in `WRITE_NOTES`, and a write tool without a request there or in its spec fails the build.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import annotated_types
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

SETTINGS_MARKER = "<!-- settings-table -->"
SANDBOX_MARKER = "<!-- sandbox-settings-table -->"
TOOLS_MARKER = "<!-- tools-table -->"
WRITES_MARKER = "<!-- writes-table -->"
# a bound's class, the attribute holding its value, how the table says it
BOUNDS: tuple[tuple[type, str, str], ...] = (
    (annotated_types.Ge, "ge", "≥ {}"),
    (annotated_types.Gt, "gt", "> {}"),
    (annotated_types.Le, "le", "≤ {}"),
    (annotated_types.Lt, "lt", "< {}"),
    (annotated_types.MinLen, "min_length", "length ≥ {}"),
    (annotated_types.MaxLen, "max_length", "length ≤ {}"),
)


def cell(text: str) -> str:
    """Table-safe text: a `|` would end the cell (outside code spans, which keep theirs), a
    newline the row."""
    parts = text.replace("\n", " ").split("`")
    return "`".join(p if i % 2 else p.replace("|", "\\|") for i, p in enumerate(parts))


def env_name(cls: type[BaseSettings], name: str, field: FieldInfo) -> str:
    """The environment variable pydantic-settings reads the field from."""
    if isinstance(field.validation_alias, str):
        return field.validation_alias.upper()
    if field.alias:
        return field.alias.upper()
    return f"{cls.model_config.get('env_prefix', '')}{name}".upper()


def default_text(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def bounds_text(field: FieldInfo) -> str:
    """Numeric and length bounds declared on the field, e.g. `(≥ 2, ≤ 512)`."""
    parts = [
        template.format(getattr(meta, attr))
        for meta in field.metadata
        for kind, attr, template in BOUNDS
        if isinstance(meta, kind)
    ]
    return f" ({', '.join(parts)})" if parts else ""


def settings_table(cls: type[BaseSettings]) -> str:
    """One row per field of a settings class, in declaration order."""
    rows = ["| Variable | Default | Description |", "|---|---|---|"]
    for name, field in cls.model_fields.items():
        description = cell((field.description or "") + bounds_text(field))
        rows.append(f"| `{env_name(cls, name, field)}` | {default_text(field)} | {description} |")
    return "\n".join(rows) + "\n"


def product_settings() -> str:
    from app.kernel.settings import Settings

    return settings_table(Settings)


def sandbox_settings() -> str:
    """The sandbox's own settings class, once it has one; until then a pointer to the table."""
    if importlib.util.find_spec("sandbox.settings") is None:
        return "The sandbox's `TOOLQUEUE_SANDBOX_*` settings are rows of the table above.\n"
    module = importlib.import_module("sandbox.settings")
    return settings_table(module.SandboxSettings)


def type_text(schema: dict[str, Any]) -> str:
    """A JSON Schema type in a few words: `string`, `array of string`, `integer or null`."""
    if "enum" in schema:
        return "one of " + ", ".join(f"`{v}`" for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(type_text(s) for s in schema["anyOf"])
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    kind = str(schema.get("type", "any"))
    if kind == "array" and "items" in schema:
        return f"array of {type_text(schema['items'])}"
    return kind


def arguments_text(schema: dict[str, Any]) -> str:
    """Each argument of a tool's input schema: name, type, and required or its default."""
    required = set(schema.get("required", ()))
    parts = []
    for name, prop in schema.get("properties", {}).items():
        extra = "required" if name in required else ""
        if prop.get("default") is not None:
            extra = f"default `{json.dumps(prop['default'])}`"
        parts.append(f"`{name}` ({type_text(prop)}{', ' + extra if extra else ''})")
    return "<br>".join(parts) or "none"


def tools_table() -> str:
    """The tools `GET /v1/tools` lists, in its order."""
    from app.services.jobs import tools

    rows = ["| Tool | Vendors | Description | Arguments |", "|---|---|---|---|"]
    for tool in tools():
        vendors = ", ".join(tool["vendors"])
        args = cell(arguments_text(tool["input_schema"]))
        rows.append(f"| `{tool['name']}` | {vendors} | {cell(tool['description'])} | {args} |")
    return "\n".join(rows) + "\n"


# what an uncertain operation does, by the mechanism's value (`connectors.writes.Mechanism`)
UNCERTAIN = {
    "idempotency_key": "resent with the same key: the vendor replays its first answer",
    "upsert": "resent: the natural key finds what the lost attempt created (which then reads "
    "`updated`)",
    "absolute": "resent: absolute values (or a delete) repeated change nothing more",
    "marker": "looked up by its key first; sent only if not found",
    "none": "never resent: the job fails `uncertain_write` naming the operation",
}
# per write tool: (the vendor request, if its spec does not say; how an uncertain one is
# looked up, if it is); what the registry cannot tell
WRITE_NOTES: dict[str, tuple[str, str]] = {
    "github.issues.create": (
        "`POST /repos/{owner}/{repo}/issues`, the body ending with the operation's marker",
        "the marker, among the repository's 300 newest issues",
    ),
    "github.issues.comment": (
        "`POST /repos/{owner}/{repo}/issues/{number}/comments`, the body ending with the marker",
        "the marker, among the issue's comments (up to 3,000)",
    ),
    "github.issues.update": ("`PATCH /repos/{owner}/{repo}/issues/{number}`", ""),
    "hubspot.contacts.upsert": (
        "`POST /crm/v3/objects/contacts/batch/upsert`, ≤ 100 inputs per operation (200, or 207 "
        "with per-input errors)",
        "",
    ),
    "hubspot.contacts.update": ("`PATCH /crm/v3/objects/contacts/{id}`", ""),
    "hubspot.contacts.archive": (
        "`DELETE /crm/v3/objects/contacts/{id}` (204 also when archived already)",
        "",
    ),
    "salesforce.records.upsert": (
        "`PATCH /services/data/v62.0/composite/sobjects/{sObject}/{field}` (≤ 200 records, "
        "`allOrNone: false`); above `bulk_threshold`, Bulk API 2.0 ingest (`POST jobs/ingest`, "
        "CSV upload, close, poll; ≤ 10,000 records an ingest job)",
        "",
    ),
    "salesforce.records.update": ("`PATCH /services/data/v62.0/sobjects/{sObject}/{id}`", ""),
    "salesforce.records.delete": (
        "`DELETE /services/data/v62.0/sobjects/{sObject}/{id}`",
        "deleted again: a 404 `ENTITY_IS_DELETED` / `NOT_FOUND` is the lost attempt's effect",
    ),
    "shopify.customers.update": (
        "`POST /admin/api/2025-10/graphql.json`, mutation `customerUpdate` (`userErrors` "
        "reject the record)",
        "",
    ),
    "slack.chat.post_message": (
        "`POST /api/chat.postMessage`, the key in the message `metadata` (`toolqueue_op`)",
        "the key, in `conversations.history` (the 600 newest messages, `include_all_metadata`)",
    ),
    "stripe.customers.create": ("", ""),
    "stripe.customers.update": ("", ""),
    "zendesk.tickets.create": (
        "",
        "`GET /api/v2/tickets?external_id=<key>` (the create sets `external_id` to the key); "
        "not found: resent with the same `Idempotency-Key`",
    ),
    "zendesk.tickets.update": ("", ""),
    "zendesk.tickets.comment": ("`PUT /api/v2/tickets/{id}` with `ticket.comment`", ""),
    "jira.issues.create": (
        '`POST /rest/api/3/issue`, with the entity property `toolqueue` = `{"op": <key>}`',
        'JQL `issue.property[toolqueue].op = "<key>"` in the project',
    ),
    "jira.issues.comment": (
        "`POST /rest/api/3/issue/{key}/comment`, with the same property on the comment",
        "the property, among the issue's 100 newest comments",
    ),
    "jira.issues.transition": (
        "`POST /rest/api/3/issue/{key}/transitions`",
        "the issue's status: standing in the target one already, the transition is done",
    ),
}


def spec_request(tool: Any) -> str:
    """A declarative write's method, path and key header, read from its `DeclaredWrite`."""
    declared = getattr(tool.write.send, "__self__", None)
    if declared is None:
        return ""
    path = declared.path.replace("{{args.", "{").replace("}}", "}")
    key = f", `{declared.key_header}: <key>`" if declared.key_header else ""
    form = " (form-encoded)" if declared.encoding == "form" else ""
    return f"`{declared.method} {path}`{form}{key}"


def mechanism_of(name: str) -> str:
    from app.kernel.registry import registry

    return str(registry().tools[name].write.mechanism.value)


def write_row(tool: Any) -> str:
    """One write tool's row; a routed (unified) one names the vendor tool each vendor runs."""
    hints = {k: json.dumps(tool.hints[k]) for k in ("destructiveHint", "idempotentHint")}
    flags = "<br>".join(f"`{k}: {v}`" for k, v in hints.items())
    vendors = ", ".join(tool.accepts)
    if tool.routes is not None:
        routes = sorted(tool.routes.items())
        runs = "<br>".join(f"{v}: `{r.tool}`" for v, r in routes)
        kinds = "<br>".join(f"{v}: `{mechanism_of(r.tool)}`" for v, r in routes)
        what = "as the vendor tool it runs as (its row above)"
        return f"| `{tool.name}` | {vendors} | runs as<br>{runs} | {kinds} | {what} | {flags} |"
    if tool.name not in WRITE_NOTES:
        raise ValueError(f"docs/hooks.py WRITE_NOTES has no entry for write tool {tool.name}")
    request, lookup = WRITE_NOTES[tool.name]
    request = request or spec_request(tool)
    if not request:
        raise ValueError(f"docs/hooks.py WRITE_NOTES: say what request {tool.name} sends")
    mechanism = tool.write.mechanism.value
    uncertain = UNCERTAIN[mechanism]
    if lookup and mechanism != "marker":
        uncertain = f"settled first: {lookup}"
    elif lookup:
        uncertain = f"looked up first: {lookup}; sent only if not found"
    cells = (f"`{tool.name}`", vendors, request, f"`{mechanism}`", uncertain, flags)
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def writes_table() -> str:
    """Every write tool of the registry, in its order."""
    from app.kernel.registry import registry

    rows = [
        "| Tool | Vendors | Vendor request | Mechanism | An uncertain operation is | Hints |",
        "|---|---|---|---|---|---|",
    ]
    rows += [write_row(t) for t in registry().tools.values() if not t.read_only]
    return "\n".join(rows) + "\n"


RENDERERS: dict[str, Callable[[], str]] = {
    SETTINGS_MARKER: product_settings,
    SANDBOX_MARKER: sandbox_settings,
    TOOLS_MARKER: tools_table,
    WRITES_MARKER: writes_table,
}


def render(markdown: str) -> str:
    """Replace every marker the page holds with what it stands for."""
    for marker, renderer in RENDERERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, renderer())
    return markdown


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return render(markdown)
