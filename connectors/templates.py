"""`{{path}}` templates for declarative specs and pipeline mappings, evaluated without `eval`.

A placeholder is a dotted path into plain JSON data (dicts by key, lists by index), then
filters, each after a `|`: `{{ record.properties.email | domain }}`, `{{ a.b | trim | lower }}`.
The older `{{path:int}}` form is the same as `{{path | int}}`. Nothing else is reachable: no
attributes, no calls, no Python objects, so a template cannot touch the interpreter.

Filters (`FILTERS`) take a value and give one; `None` stays `None` (but `str` and `bool`):

- `domain`: an email's part after the last `@`, a URL's host, or a bare host itself, lowercased
  and without a leading `www.`; `None` for anything that holds no domain name.
- `lower`, `upper`, `trim`: on text; other values pass through.
- `bool`, `int`, `str`, `csv`: the conversions (`csv` joins a list with commas).

A whole-string placeholder keeps its value's type; inside a longer string a value is written as
text (`None` as nothing). Every failure, a filter's included, is a `TemplateError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

_PLACEHOLDER = re.compile(
    r"\{\{\s*(?P<path>[A-Za-z_][\w.\[\]-]*)\s*"
    r"(?::\s*(?P<conv>bool|int|str|csv)\s*)?"
    r"(?P<filters>(?:\|\s*[A-Za-z_]\w*\s*)*)\}\}"
)
_WHOLE = re.compile(r"^\s*" + _PLACEHOLDER.pattern + r"\s*$")
_SEGMENT = re.compile(r"^[A-Za-z_][\w-]*$|^\d+$")
_FILTER_NAME = re.compile(r"[A-Za-z_]\w*")
_LABEL = re.compile(r"^[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?$")  # letters, digits, inner hyphens
_ANGLED = re.compile(r"<([^<>]*)>")  # `Jane Doe <jane@acme.example>`


class TemplateError(ValueError):
    pass


def lookup(path: str, ctx: Any) -> Any:
    value = ctx
    for part in _segments(path):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        else:
            return None
    return value


def _segments(path: str) -> list[str]:
    """`a.b[0]` as `a`, `b`, `0`; a segment that is no name or index is refused."""
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts:
        if not _SEGMENT.match(part) or part.startswith("__"):
            raise TemplateError(f"invalid path segment {part!r} in {path!r}")
    return parts


# ---- filters --------------------------------------------------------------------------------


def _to_bool(value: Any) -> bool:
    return value not in (None, False, "", "false", "False", 0, [], {})


def _to_int(value: Any) -> int | None:
    return int(value) if value not in (None, "") else None


def _to_csv(value: Any) -> Any:
    return ",".join(str(v) for v in value) if isinstance(value, list) else value


def _to_str(value: Any) -> str:
    return "" if value is None else str(value)


def _text(method: Callable[[str], str]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        return method(value) if isinstance(value, str) else value

    return apply


def domain(value: Any) -> str | None:
    """The domain name `value` holds: an email's part after its last `@`, a URL's host, a
    bare host (a path or port after it dropped); lowercased, without a leading `www.`."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if angled := _ANGLED.search(text):
        text = angled.group(1).strip()
    # a URL's host; else an email's domain, or a host with perhaps a port or path after it
    host = _host(text) if "://" in text else _host("//" + text.rsplit("@", 1)[-1])
    host = (host or "").strip().lower().rstrip(".")
    host = host.removeprefix("www.")
    return host if is_domain(host) else None


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # an unclosed IPv6 bracket, a bad port
        return None


def is_domain(host: str) -> bool:
    """Two or more labels of letters, digits and inner hyphens (any script), ≤ 253 in all:
    a name a company can be looked up by (a single label like `localhost` is none)."""
    labels = host.split(".")
    return len(labels) >= 2 and len(host) <= 253 and all(_LABEL.match(x) for x in labels)


FILTERS: dict[str, Callable[[Any], Any]] = {
    "domain": domain,
    "lower": _text(str.lower),
    "upper": _text(str.upper),
    "trim": _text(str.strip),
    "bool": _to_bool,
    "int": _to_int,
    "str": _to_str,
    "csv": _to_csv,
}


def _filter_names(match: re.Match[str]) -> list[str]:
    """The placeholder's filters in order; a `:conv` counts as the first."""
    names = _FILTER_NAME.findall(match.group("filters") or "")
    return [match.group("conv"), *names] if match.group("conv") else names


def _apply(value: Any, names: list[str]) -> Any:
    for name in names:
        fn = FILTERS.get(name)
        if fn is None:
            raise TemplateError(f"unknown filter {name!r}; known: {', '.join(FILTERS)}")
        try:
            value = fn(value)
        except Exception as exc:  # noqa: BLE001 - any filter failure is the template's
            raise TemplateError(
                f"filter {name!r} cannot take {type(value).__name__} {_short(value)}: {exc}"
            ) from None
    return value


def _short(value: Any, at_most: int = 40) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a value too large or deep to show is shown as such
        return "(unprintable)"
    return text if len(text) <= at_most else text[: at_most - 1] + "…"


def _value(match: re.Match[str], ctx: Any) -> Any:
    return _apply(lookup(match.group("path"), ctx), _filter_names(match))


# ---- rendering and static checks ------------------------------------------------------------


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
        return _value(whole, ctx)

    def one(m: re.Match[str]) -> str:
        value = _value(m, ctx)
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(one, template)


def _strings(template: Any) -> Iterator[str]:
    """Every string of a template (dict values and list items, at any depth)."""
    if isinstance(template, dict):
        for v in template.values():
            yield from _strings(v)
    elif isinstance(template, list):
        for v in template:
            yield from _strings(v)
    elif isinstance(template, str):
        yield template


def check(template: Any, roots: set[str]) -> list[str]:
    """Problems with a template: unknown roots and filters, malformed placeholders."""
    problems: list[str] = []
    for text in _strings(template):
        if text.count("{{") != len(_PLACEHOLDER.findall(text)):
            problems.append(f"malformed placeholder in {text!r}")
        for m in _PLACEHOLDER.finditer(text):
            path = m.group("path")
            root = path.split(".")[0].split("[")[0]
            if root not in roots:
                problems.append(f"{{{{{path}}}}} must start with one of {sorted(roots)}")
            try:
                _segments(path)
            except TemplateError as exc:
                problems.append(str(exc))
            problems += [
                f"unknown filter {name!r} in {m.group(0)!r}; known: {', '.join(FILTERS)}"
                for name in _filter_names(m)
                if name not in FILTERS
            ]
    return problems


def references(template: Any) -> list[str]:
    """The dotted path (`record.items.0.name`) of every placeholder, in order, each once: what
    a template reads, for static checks (a mapping that reads a field the source lacks)."""
    found: list[str] = []
    for text in _strings(template):
        for m in _PLACEHOLDER.finditer(text):
            path = m.group("path").replace("[", ".").replace("]", "")
            if path not in found:
                found.append(path)
    return found
