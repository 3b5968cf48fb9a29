"""`{{path}}` templates for declarative specs, evaluated without `eval`.

A placeholder is a dotted path into plain JSON data (dicts by key, lists by index) with an
optional `:bool`, `:int`, `:str` or `:csv` conversion. Nothing else is reachable: no
attributes, no calls, no Python objects, so a spec cannot touch the interpreter.
"""

from __future__ import annotations

import re
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][\w.\[\]-]*)\s*(?::\s*(bool|int|str|csv))?\s*\}\}")
_WHOLE = re.compile(r"^\s*" + _PLACEHOLDER.pattern + r"\s*$")
_SEGMENT = re.compile(r"^[A-Za-z_][\w-]*$|^\d+$")


class TemplateError(ValueError):
    pass


def lookup(path: str, ctx: Any) -> Any:
    value = ctx
    for part in path.replace("[", ".").replace("]", "").split("."):
        if not _SEGMENT.match(part) or part.startswith("__"):
            raise TemplateError(f"invalid path segment {part!r} in {path!r}")
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        else:
            return None
    return value


def _convert(value: Any, kind: str | None) -> Any:
    if kind == "bool":
        return value not in (None, False, "", "false", "False", 0, [], {})
    if kind == "int":
        return int(value) if value not in (None, "") else None
    if kind == "csv":
        return ",".join(str(v) for v in value) if isinstance(value, list) else value
    if kind == "str":
        return "" if value is None else str(value)
    return value


def render(template: Any, ctx: dict[str, Any]) -> Any:
    """Render strings (a whole-string placeholder keeps the value's type), dicts and lists."""
    if isinstance(template, dict):
        return {k: render(v, ctx) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, ctx) for v in template]
    if not isinstance(template, str):
        return template
    whole = _WHOLE.match(template)
    if whole:
        return _convert(lookup(whole.group(1), ctx), whole.group(2))

    def one(m: re.Match[str]) -> str:
        value = _convert(lookup(m.group(1), ctx), m.group(2))
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(one, template)


def check(template: Any, roots: set[str]) -> list[str]:
    """Problems with a template: unknown roots, malformed placeholders."""
    problems: list[str] = []
    if isinstance(template, dict):
        for v in template.values():
            problems += check(v, roots)
    elif isinstance(template, list):
        for v in template:
            problems += check(v, roots)
    elif isinstance(template, str):
        if template.count("{{") != len(_PLACEHOLDER.findall(template)):
            problems.append(f"malformed placeholder in {template!r}")
        for m in _PLACEHOLDER.finditer(template):
            root = m.group(1).split(".")[0].split("[")[0]
            if root not in roots:
                problems.append(f"{{{{{m.group(1)}}}}} must start with one of {sorted(roots)}")
            try:
                lookup(m.group(1), {})
            except TemplateError as exc:
                problems.append(str(exc))
    return problems
