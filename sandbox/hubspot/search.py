"""Search endpoints: ``POST /crm/v3/objects/{type}/search`` with filter groups and a sort.

Search has its own per-second budget (``SEARCH_PER_SECOND``, override:
``rate_budgets["hubspot.search"]``), no rate headers, a 429 with ``policyName: SECONDLY``, and
a 10,000-result ceiling per query (``after`` >= 10000: 400). It does not count against the
daily budget here. Filters compare dates as epoch ms, numbers as floats, the rest as
case-insensitive strings; ``total`` counts every match.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import correlation_id, sandbox_state
from sandbox.hubspot.data import OBJECTS, ObjectType, project
from sandbox.hubspot.http import NAME, error, gate

OPERATORS = (
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
)
NEEDS_VALUE = frozenset(OPERATORS) - {"IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY"}
SEARCH_MAX_LIMIT = 200
SEARCH_DEFAULT_LIMIT = 10
SEARCH_CEILING = 10_000  # results one query can page through
MAX_GROUPS, MAX_GROUP_FILTERS, MAX_FILTERS = 5, 6, 18
SEARCH_PER_SECOND = 5  # search's own budget; LiveConfig.rate_budgets["hubspot.search"] overrides
SEARCH_RATE_KEY = f"{NAME}.search"
SEARCH_WINDOW_S = 1.0


class Invalid(ValueError):
    """A search request HubSpot would refuse with 400 VALIDATION_ERROR."""


def _take_search_rate(request: Request) -> bool:
    """Search's own rolling one-second window, separate from the portal's burst budget (kept
    in the shared state's windows under ``hubspot.search``, so /_sandbox/reset clears it)."""
    state = sandbox_state(request)
    budget = state.config.rate_budgets.get(SEARCH_RATE_KEY, SEARCH_PER_SECOND)
    now = time.monotonic()
    with state.lock:
        window = state.windows[SEARCH_RATE_KEY]
        while window and window[0] <= now - SEARCH_WINDOW_S:
            window.popleft()
        if len(window) >= budget:
            state.rate_limited += 1
            return False
        window.append(now)
        return True


def _scalar(value: Any, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise Invalid(f"Invalid input JSON: {what} must be a string or a number")


def _parse_filter(f: Any, raw: str) -> dict[str, Any]:
    """One filter, checked and normalised (values as strings)."""
    if not isinstance(f, dict):
        raise Invalid("Invalid input JSON: a filter must be an object")
    op = f.get("operator")
    if op not in OPERATORS:
        column = raw.find(f'"{op}"') + 1 if isinstance(op, str) else 0
        raise Invalid(
            f"Invalid input JSON on line 1, column {max(column, 1)}: Cannot deserialize "
            f"value of type `FilterOperator` from String {json.dumps(op)}: not one of "
            f"the values accepted for Enum class: [{', '.join(OPERATORS)}]"
        )
    prop = f.get("propertyName")
    if not isinstance(prop, str) or not prop:
        raise Invalid("Invalid input JSON: filter is missing propertyName")
    item: dict[str, Any] = {"propertyName": prop, "operator": op}
    if op in NEEDS_VALUE:
        if f.get("value") is None:
            raise Invalid(f"Filter on {prop} with operator {op} requires a value")
        item["value"] = _scalar(f["value"], "value")
    if op == "BETWEEN":
        if f.get("highValue") is None:
            raise Invalid(f"Filter on {prop} with operator BETWEEN requires a highValue")
        item["highValue"] = _scalar(f["highValue"], "highValue")
    if op in ("IN", "NOT_IN"):
        values = f.get("values")
        if not isinstance(values, list) or not values:
            raise Invalid(f"Filter on {prop} with operator {op} requires values")
        item["values"] = [_scalar(v, "values[]") for v in values]
    return item


def _parse_filters(doc: dict[str, Any], raw: str) -> list[list[dict[str, Any]]]:
    groups = doc.get("filterGroups") or []
    if not isinstance(groups, list):
        raise Invalid("Invalid input JSON: filterGroups must be an array")
    if len(groups) > MAX_GROUPS:
        raise Invalid(f"Too many filter groups: {len(groups)}. The maximum is {MAX_GROUPS}.")
    out: list[list[dict[str, Any]]] = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise Invalid("Invalid input JSON: each filter group needs a `filters` array")
        if len(filters) > MAX_GROUP_FILTERS:
            raise Invalid(
                f"Too many filters in a group: {len(filters)}. The maximum is {MAX_GROUP_FILTERS}."
            )
        out.append([_parse_filter(f, raw) for f in filters])
    count = sum(len(g) for g in out)
    if count > MAX_FILTERS:
        raise Invalid(f"Too many filters: {count}. The maximum is {MAX_FILTERS}.")
    return out


def _parse_sorts(doc: dict[str, Any]) -> tuple[str, bool] | None:
    """``sorts``: ``[{"propertyName", "direction"}]`` or ``["createdate"]``/``["-createdate"]``;
    one rule at most, like HubSpot."""
    sorts = doc.get("sorts") or []
    if not isinstance(sorts, list):
        raise Invalid("Invalid input JSON: sorts must be an array")
    if len(sorts) > 1:
        raise Invalid("Only one sort rule is supported per search")
    if not sorts:
        return None
    rule = sorts[0]
    if isinstance(rule, str) and rule.lstrip("-"):
        return rule.lstrip("-"), rule.startswith("-")
    if isinstance(rule, dict) and isinstance(rule.get("propertyName"), str):
        direction = rule.get("direction", "ASCENDING")
        if direction not in ("ASCENDING", "DESCENDING"):
            raise Invalid(f"Invalid sort direction: {direction!r}; use ASCENDING or DESCENDING")
        return rule["propertyName"], direction == "DESCENDING"
    raise Invalid("Invalid input JSON: a sort needs a propertyName")


def _epoch_ms(value: str) -> int | None:
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def _typed(kind: ObjectType, prop: str, value: str | None) -> Any:
    """A comparable form: epoch ms for dates, floats for numbers, casefolded text otherwise."""
    if value is None or value == "":
        return None
    if prop in kind.dates:
        return _epoch_ms(value)
    if prop in kind.numbers:
        try:
            return float(value)
        except ValueError:
            return None
    return value.casefold()


def _tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^\w]+", text.casefold()) if t]


def _contains_token(text: str, pattern: str) -> bool:
    """HubSpot's CONTAINS_TOKEN: a word (or run of words) of the value; ``*`` wildcards match
    across the whole value, e.g. ``*@acme.example``."""
    pattern = pattern.casefold()
    if "*" in pattern:
        regex = re.compile(".*".join(re.escape(part) for part in pattern.split("*")))
        return bool(regex.fullmatch(text.casefold())) or any(
            regex.fullmatch(t) for t in _tokens(text)
        )
    want, have = _tokens(pattern), _tokens(text)
    return bool(want) and any(have[k : k + len(want)] == want for k in range(len(have)))


def _matches(kind: ObjectType, props: dict[str, Any], f: dict[str, Any]) -> bool:
    op, prop = f["operator"], f["propertyName"]
    raw = props.get(prop)
    has = raw not in (None, "")
    if op == "HAS_PROPERTY":
        return has
    if op == "NOT_HAS_PROPERTY":
        return not has
    if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        found = has and _contains_token(str(raw), f["value"])
        return found if op == "CONTAINS_TOKEN" else not found
    mine = _typed(kind, prop, raw)
    if op in ("IN", "NOT_IN"):
        inside = has and mine in {_typed(kind, prop, v) for v in f["values"]}
        return inside if op == "IN" else not inside
    other = _typed(kind, prop, f["value"])
    if op == "EQ":
        return has and mine == other
    if op == "NEQ":
        return not (has and mine == other)
    if mine is None or other is None or type(mine) is not type(other):
        return False
    if op == "BETWEEN":
        high = _typed(kind, prop, f["highValue"])
        return type(high) is type(mine) and other <= mine <= high
    return bool(
        {"LT": mine < other, "LTE": mine <= other, "GT": mine > other, "GTE": mine >= other}[op]
    )


@lru_cache(maxsize=32)
def _hits(
    kind_name: str, volume: int, groups_json: str, sort: tuple[str, bool] | None
) -> tuple[int, ...]:
    """Indices of the records a query matches, in result order; one scan per distinct query
    (the data is a pure function of the index), so page k of N then costs O(page)."""
    kind = OBJECTS[kind_name]
    groups = json.loads(groups_json)
    hits: list[int] = []
    keys: list[tuple[bool, Any]] = []
    for i in range(1, volume + 1):
        props = kind.make(i)["properties"]
        if groups and not any(all(_matches(kind, props, f) for f in g) for g in groups):
            continue
        hits.append(i)
        if sort is not None:
            value = _typed(kind, sort[0], props.get(sort[0]))
            keys.append((value is None, value if value is not None else 0))
    if sort is None:
        return tuple(hits)
    order = sorted(range(len(hits)), key=lambda k: keys[k], reverse=sort[1])
    if sort[1]:  # missing values last in both directions
        order = [k for k in order if not keys[k][0]] + [k for k in order if keys[k][0]]
    return tuple(hits[k] for k in order)


@dataclass(frozen=True)
class Search:
    """A checked search request."""

    limit: int
    offset: int
    groups: list[list[dict[str, Any]]]
    sort: tuple[str, bool] | None
    asked: list[str]


def _document(raw: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError as exc:
        raise Invalid(
            f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(doc, dict):
        raise Invalid("Invalid input JSON: expected an object")
    return doc


def _limit(doc: dict[str, Any]) -> int:
    limit = doc.get("limit", SEARCH_DEFAULT_LIMIT)
    if isinstance(limit, str) and limit.isdigit():
        limit = int(limit)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise Invalid(f"Unable to parse limit: {json.dumps(limit)} is not a number")
    if not 1 <= limit <= SEARCH_MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {SEARCH_MAX_LIMIT}, got {limit}")
    return limit


def _offset(doc: dict[str, Any]) -> int:
    after = doc.get("after")
    after_text = "" if after is None else str(after).strip()
    if isinstance(after, bool) or (after_text and not after_text.isdigit()):
        raise Invalid(f"Invalid input: {json.dumps(after)} is not a valid paging cursor")
    offset = int(after_text or 0)
    if offset >= SEARCH_CEILING:
        raise Invalid(
            f"Search results are limited to {SEARCH_CEILING} per query: after must be "
            f"less than {SEARCH_CEILING}, got {offset}. Narrow the search filters."
        )
    return offset


def _search(raw: str) -> Search:
    """The request body, checked in HubSpot's order (``Invalid`` says what is wrong)."""
    doc = _document(raw)
    limit, offset = _limit(doc), _offset(doc)
    groups = _parse_filters(doc, raw)
    sort = _parse_sorts(doc)
    asked = doc.get("properties") or []
    if not isinstance(asked, list) or not all(isinstance(p, str) for p in asked):
        raise Invalid("Invalid input JSON: properties must be an array of strings")
    return Search(limit, offset, groups, sort, asked)


def _secondly_refusal() -> JSONResponse:
    cid = correlation_id()
    body = {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": cid,
        "policyName": "SECONDLY",
    }
    return JSONResponse(body, status_code=429, headers={"X-HubSpot-Correlation-Id": cid})


def _results(kind: ObjectType, volume: int, q: Search) -> dict[str, Any]:
    hits: Sequence[int] = range(1, volume + 1)  # no filter, creation order: no scan
    if q.groups or q.sort is not None:
        hits = _hits(kind.name, volume, json.dumps(q.groups, sort_keys=True), q.sort)
    total = len(hits)
    stop = min(total, q.offset + q.limit, SEARCH_CEILING)
    wanted = [p.strip() for p in q.asked if p.strip()]
    results = [project(kind, kind.make(hits[k]), wanted) for k in range(q.offset, stop)]
    body: dict[str, Any] = {"total": total, "results": results}
    if stop < total:  # offered even at the ceiling, where following it is a 400
        body["paging"] = {"next": {"after": str(stop)}}
    return body


def search_endpoint(kind: ObjectType) -> Callable[[Request], Awaitable[Response]]:
    async def search_objects(request: Request) -> Response:
        if (denied := await gate(request, kind.scope)) is not None:
            return denied
        if not _take_search_rate(request):  # no X-HubSpot-RateLimit-* headers on search
            return _secondly_refusal()
        try:
            q = _search((await request.body()).decode("utf-8", "replace"))
        except Invalid as exc:
            return error(400, str(exc), "VALIDATION_ERROR")
        volume = sandbox_state(request).config.volume(kind.collection)
        return JSONResponse(_results(kind, volume, q))

    search_objects.__name__ = f"search_{kind.name}"
    search_objects.__doc__ = (
        f"Search {kind.name}: JSON body ``filterGroups``, ``sorts``, ``properties``, ``limit`` "
        f"(1..{SEARCH_MAX_LIMIT}, default {SEARCH_DEFAULT_LIMIT}), ``after`` (a string offset, "
        f"below {SEARCH_CEILING}); ``total`` counts every match."
    )
    return search_objects
