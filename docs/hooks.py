"""MkDocs hook: the parts of the docs that would drift, rendered from the code at build time.

A page holds a marker and `on_page_markdown` replaces it:

- `<!-- settings-table -->`: every field of `app.kernel.settings.Settings` (its environment
  variable, default, description and bounds);
- `<!-- sandbox-settings-table -->`: the same for `sandbox.settings.SandboxSettings`, when that
  module exists (until then the sandbox's fields are in `Settings`);
- `<!-- tools-table -->`: the tools `GET /v1/tools` lists (`app.services.jobs.tools`): name,
  vendors, description and arguments.
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


RENDERERS: dict[str, Callable[[], str]] = {
    SETTINGS_MARKER: product_settings,
    SANDBOX_MARKER: sandbox_settings,
    TOOLS_MARKER: tools_table,
}


def render(markdown: str) -> str:
    """Replace every marker the page holds with what it stands for."""
    for marker, renderer in RENDERERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, renderer())
    return markdown


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return render(markdown)
