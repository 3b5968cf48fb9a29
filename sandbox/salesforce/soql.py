"""A tiny SOQL subset: ``SELECT <fields> FROM Contact|Account [WHERE …] [ORDER BY …]
[LIMIT n] [OFFSET n]`` (ORDER BY and most WHERE clauses are parsed loosely and ignored), with
Salesforce's error codes and its caret-under-the-column messages; rows rendered as REST does.

One WHERE form is read: a whole clause ``<field> IN (<literals>)`` or ``<field> = <literal>``
(strings in single quotes with ``\\`` escapes, numbers, true/false) is :attr:`Query.where`,
and the REST query answers it from the records written to the sandbox (and seeded records by
``Id``): how a lookup by External ID finds them. Custom fields (``…__c``) may be selected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sandbox.salesforce.data import OBJECTS, SObject

MAX_OFFSET = 2000


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Query:
    sobject: SObject
    fields: tuple[tuple[str, ...], ...]  # canonical paths: ("Id",) or ("Account", "Name")
    offset: int
    limit: int | None
    where: tuple[str, tuple[Any, ...]] | None = None  # (field, values) of a lookup


def _located(soql: str, pos: int, text: str) -> str:
    """Salesforce's error text: the query, a caret under the column, then the reason."""
    line = " ".join(soql.split("\n"))
    return f"\n{line}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n{text}"


def _unexpected(soql: str, pos: int) -> SoqlError:
    m = re.compile(r"\S+").search(soql, pos)
    token = m.group(0) if m else "<EOF>"
    return SoqlError(
        "MALFORMED_QUERY",
        _located(soql, m.start() if m else len(soql), f"unexpected token: '{token}'"),
    )


_IDENT = r"[A-Za-z][A-Za-z0-9_]*"
_SELECT = re.compile(r"\s*SELECT\s+", re.I)
_FROM = re.compile(r"\s+FROM\s+(" + _IDENT + r")\b", re.I)
_TAIL = re.compile(
    r"\s*(?:WHERE\s+(?P<where>.+?))?\s*(?:ORDER\s+BY\s+.+?)?\s*(?:LIMIT\s+(?P<limit>\S+))?"
    r"\s*(?:OFFSET\s+(?P<offset>\S+))?\s*$",
    re.I | re.S,
)


def _fields(soql: str, sobject: SObject, start: int, end: int) -> tuple[tuple[str, ...], ...]:
    """The SELECT list between ``start`` and ``end``, as canonical paths, duplicates dropped."""
    fields: list[tuple[str, ...]] = []
    pos = start
    for raw in soql[start:end].split(","):
        name = raw.strip()
        at = pos + len(raw) - len(raw.lstrip())
        pos += len(raw) + 1
        if not re.fullmatch(_IDENT + r"(\." + _IDENT + r")?", name):
            raise _unexpected(soql, at)
        path = _field(sobject, name, soql, at)
        if path not in fields:
            fields.append(path)
    return tuple(fields)


_LITERAL = r"'(?:[^'\\]|\\.)*'|-?\d+(?:\.\d+)?|true|false"
_LOOKUP = re.compile(
    r"(?P<field>"
    + _IDENT
    + r")\s*(?:=\s*(?P<one>"
    + _LITERAL
    + r")|IN\s*\((?P<many>\s*(?:"
    + _LITERAL
    + r")(?:\s*,\s*(?:"
    + _LITERAL
    + r"))*)\s*\))\s*",
    re.I | re.S,
)


def _literal(text: str) -> Any:
    if text.startswith("'"):
        return re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.S)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return float(text) if "." in text else int(text)


def _where(text: str | None) -> tuple[str, tuple[Any, ...]] | None:
    """A lookup clause's (field, values), or None: no WHERE, or one of the ignored kinds."""
    found = _LOOKUP.fullmatch(text or "")
    if found is None:
        return None
    raw = found.group("one") or found.group("many")
    values = [m.group(0) for m in re.finditer(_LITERAL, raw, re.I | re.S)]
    return found.group("field"), tuple(_literal(v) for v in values)


def _limits(soql: str, start: int) -> tuple[int, int | None]:
    """(OFFSET, LIMIT) from the clauses after FROM."""
    tail = _TAIL.fullmatch(soql, start)
    if not tail:
        raise _unexpected(soql, start)
    for key in ("limit", "offset"):
        found = tail.group(key)
        if found is not None and not found.isdigit():
            raise _unexpected(soql, tail.start(key))
    limit = int(tail.group("limit")) if tail.group("limit") is not None else None
    offset = int(tail.group("offset")) if tail.group("offset") is not None else 0
    if offset > MAX_OFFSET:
        raise SoqlError(
            "NUMBER_OUTSIDE_VALID_RANGE", f"Maximum SOQL offset allowed is {MAX_OFFSET}"
        )
    return offset, limit


def _sobject(soql: str, frm: re.Match[str]) -> SObject:
    sobject = OBJECTS.get(frm.group(1).lower())
    if sobject is None:
        raise SoqlError(
            "INVALID_TYPE",
            _located(
                soql,
                frm.start(1),
                f"sObject type '{frm.group(1)}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            ),
        )
    return sobject


def parse_soql(soql: str) -> Query:
    if not soql.strip():
        raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
    head = _SELECT.match(soql)
    if not head:
        raise _unexpected(soql, 0)
    frm = _FROM.search(soql, head.end())
    if not frm:
        raise _unexpected(soql, len(soql))
    sobject = _sobject(soql, frm)
    fields = _fields(soql, sobject, head.end(), frm.start())
    offset, limit = _limits(soql, frm.end())
    tail = _TAIL.fullmatch(soql, frm.end())
    return Query(sobject, fields, offset, limit, _where(tail.group("where") if tail else None))


def rows(query: Query, volume: int) -> int:
    """How many rows the query selects from ``volume`` records."""
    total = max(0, volume - query.offset)
    return total if query.limit is None else min(total, query.limit)


def _field(sobject: SObject, name: str, soql: str, at: int) -> tuple[str, ...]:
    parts = name.split(".")
    if len(parts) == 2:
        target = sobject.relationships.get(parts[0].lower())
        if target is None:
            raise SoqlError(
                "INVALID_FIELD",
                _located(
                    soql,
                    at,
                    f"Didn't understand relationship '{parts[0]}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name. Please reference your WSDL or the describe call "
                    "for the appropriate names.",
                ),
            )
        rel = OBJECTS[target]
        return (rel.name, *_field(rel, parts[1], soql, at + len(parts[0]) + 1))
    for canonical in sobject.fields:
        if canonical.lower() == name.lower():
            return (canonical,)
    if name.lower().endswith("__c"):
        return (name,)  # a custom field: any, as the sandbox's writes accept any
    raise SoqlError(
        "INVALID_FIELD",
        _located(
            soql,
            at,
            f"No such column '{name}' on entity '{sobject.name}'. If you are attempting to use a "
            "custom field, be sure to append the '__c' after the custom field name. Please "
            "reference your WSDL or the describe call for the appropriate names.",
        ),
    )


def field_value(full: dict[str, Any], name: str) -> Any:
    """A record's field by its SOQL name (case-insensitive); null when the record lacks it."""
    if name in full:
        return full[name]
    return next((v for k, v in full.items() if k.lower() == name.lower()), None)


def _attributes(sobject: SObject, record_id: str, version: str) -> dict[str, str]:
    return {
        "type": sobject.name,
        "url": f"/services/data/{version}/sobjects/{sobject.name}/{record_id}",
    }


def project(query: Query, full: dict[str, Any], version: str) -> dict[str, Any]:
    """One row as the REST API renders it: ``attributes`` first, fields in SELECT order,
    relationship fields nested under the relationship (``null`` when there is none)."""
    out: dict[str, Any] = {"attributes": _attributes(query.sobject, full["Id"], version)}
    for path in query.fields:
        if len(path) == 1:
            out[path[0]] = field_value(full, path[0])
            continue
        rel, field = path
        target = full.get(rel)
        if target is None:
            out[rel] = None
            continue
        nested = out.get(rel) or {
            "attributes": _attributes(OBJECTS[rel.lower()], target["Id"], version)
        }
        nested[field] = target[field]
        out[rel] = nested
    return out
