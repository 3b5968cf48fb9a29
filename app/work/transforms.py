"""A pipeline's pure stages: `map` and `filter` as JMESPath (`connectors.expressions`), and
Python transforms an operator registered by entry point (group `toolqueue.transforms`).
Tenants never send code: a definition only names what is here.

A record in flight is one JSON object: the source's record as projected, plus what stages
set on it (a `map`'s fields, an `enrich` stage's `into`). Expressions read it whole; the sink
receives only what the maps set (`payload`), so nothing a vendor's read returned is written
to another vendor unless a map names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

from connectors.expressions import ExpressionError, compile_expr, truthy

ENTRY_POINT_GROUP = "toolqueue.transforms"
REASON_MAX = 300


class TransformFailed(Exception):
    """A record a stage could not transform; a registered transform raises it (or ValueError)
    to reject the record with a reason."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message[:REASON_MAX]


PyTransform = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]


@cache
def registered() -> dict[str, PyTransform]:
    """The operator's Python transforms, by entry-point name."""
    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}


@dataclass(frozen=True)
class Pure:
    """One pure stage: `apply` returns the record changed, None when it is dropped, or raises
    TransformFailed."""

    kind: str  # map | filter | transform
    fields: dict[str, Any] = field(default_factory=dict)  # map: name -> compiled expression
    expr: Any = None  # filter: compiled expression
    fn: PyTransform | None = None  # transform: the registered function
    options: dict[str, Any] = field(default_factory=dict)

    def apply(self, record: dict[str, Any]) -> dict[str, Any] | None:
        try:
            if self.kind == "map":
                return {**record, **{k: e.search(record) for k, e in self.fields.items()}}
            if self.kind == "filter":
                return record if truthy(self.expr.search(record)) else None
            assert self.fn is not None
            return self.fn(dict(record), self.options)
        except TransformFailed:
            raise
        except (ExpressionError, ValueError, TypeError, KeyError) as exc:
            raise TransformFailed(f"{self.kind}_failed", f"{type(exc).__name__}: {exc}") from None
        except Exception as exc:  # a JMESPath runtime error, or a registered transform's bug
            raise TransformFailed(f"{self.kind}_failed", f"{type(exc).__name__}: {exc}") from None


def build_map(fields: dict[str, str]) -> Pure:
    return Pure("map", fields={k: compile_expr(v) for k, v in fields.items()})


def build_filter(text: str) -> Pure:
    return Pure("filter", expr=compile_expr(text))


def build_python(name: str, options: dict[str, Any]) -> Pure:
    fn = registered().get(name)
    if fn is None:
        raise LookupError(name)
    return Pure("transform", fn=fn, options=options)


@dataclass
class StageTally:
    """What one pure stage did to a block."""

    n_in: int = 0
    n_out: int = 0
    rejected: int = 0
    dropped: int = 0


@dataclass
class Segment:
    """A block after a run of pure stages: the records out, the rejected ones (stage index,
    the record as it entered that stage, the reason) and what each stage did."""

    records: list[dict[str, Any]]
    rejected: list[tuple[int, dict[str, Any], str, str]]
    tallies: dict[int, StageTally]
    entering: dict[int, list[dict[str, Any]]]  # the records as they entered each stage


def run(stages: list[tuple[int, Pure]], records: list[dict[str, Any]]) -> Segment:
    """Apply the pure stages (with their pipeline indexes) in order."""
    out = Segment(records, [], {}, {})
    for index, stage in stages:
        tally = out.tallies[index] = StageTally(n_in=len(out.records))
        out.entering[index] = out.records
        kept: list[dict[str, Any]] = []
        for record in out.records:
            try:
                changed = stage.apply(record)
            except TransformFailed as exc:
                out.rejected.append((index, record, exc.code, exc.message))
                tally.rejected += 1
                continue
            if changed is None:
                tally.dropped += 1
            elif not isinstance(changed, dict):
                out.rejected.append((index, record, "transform_failed", "did not return an object"))
                tally.rejected += 1
            else:
                kept.append(changed)
        tally.n_out = len(kept)
        out.records = kept
    return out


def payload(record: dict[str, Any], mapped: list[str] | None) -> dict[str, Any]:
    """What the sink receives of a record: the fields maps set (None: no map, the record)."""
    if mapped is None:
        return record
    return {k: record[k] for k in mapped if k in record}


def normalize_email(record: dict[str, Any], options: dict[str, Any]) -> dict[str, Any] | None:
    """A registered example (entry point `normalize_email`): trim and lowercase the email at
    `options["field"]` (default `Email`); a record without one is rejected."""
    name = str(options.get("field", "Email"))
    value = record.get(name)
    if not isinstance(value, str) or "@" not in value:
        raise TransformFailed("invalid_email", f"{name} is not an email address: {value!r}")
    return {**record, name: value.strip().lower()}
