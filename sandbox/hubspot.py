"""HubSpot CRM v3 double: contacts/companies/deals list and search, OAuth refresh.

Order of checks mirrors the real edge: latency/fault, auth (401 carries no rate headers,
the portal is unknown), scopes (403 MISSING_SCOPES; see ``_missing_scope``), rate limit
(refusals are free), then validation and the data. List calls share one rolling budget
per portal and carry X-HubSpot-RateLimit-* headers; search has its own per-second budget
(``SEARCH_PER_SECOND``, override: ``rate_budgets["hubspot.search"]``), no rate headers,
a 429 with ``policyName: SECONDLY``, and a 10,000-result ceiling per query (``after`` >=
10000: 400). Search does not count against the daily budget here.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import (
    bearer_token,
    correlation_id,
    preamble,
    sandbox_state,
    token_call,
)
from sandbox.state import RateDecision, TokenError

NAME = "hubspot"
ROTATES_REFRESH_TOKENS = False  # HubSpot keeps the refresh token across refreshes
MAX_LIMIT = 100

router = APIRouter(prefix=f"/{NAME}", tags=[NAME])

# ---- deterministic data, generated per index (page k of N costs O(limit)) ----------------

DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
ALWAYS_PROPERTIES = ("createdate", "hs_object_id", "lastmodifieddate")
KNOWN_PROPERTIES = frozenset(DEFAULT_PROPERTIES + ("phone", "company", "notes"))

ASCII_FIRST = (
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Victor",
    "Walter",
    "Yvonne",
)
# Every 7th contact: multi-byte UTF-8 (2-, 3- and 4-byte sequences) to catch encoding bugs.
UNICODE_FIRST = (
    "José",
    "Zoë",
    "Łukasz",
    "李雷",
    "Ærøskøbing",
    "Дмитрий",
    "Nguyễn",
    "𠮷乃",
    "Renée",
    "Çağrı",
)
LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Allen",
    "King",
)
COMPANIES = (
    ("Acme Corp", "acme.example"),
    ("Globex", "globex.example"),
    ("Initech", "initech.example"),
    ("Umbrella", "umbrella.example"),
    ("Hooli", "hooli.example"),
    ("Stark Industries", "stark.example"),
    ("Wayne Enterprises", "wayne.example"),
    ("Tyrell", "tyrell.example"),
    ("Soylent", "soylent.example"),
    ("Vandelay Industries", "vandelay.example"),
    ("Cyberdyne", "cyberdyne.example"),
)
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation "
    "ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in "
    "reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur "
    "sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id "
    "est laborum. Met at trade show; follow up about renewal, pricing tiers and onboarding. "
) * 2
NOTES_LEN = 300
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def _iso(ms: int) -> str:
    """HubSpot's timestamp form: ISO-8601 UTC with milliseconds and a ``Z``."""
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def contact(i: int) -> dict[str, Any]:
    """Contact number ``i`` (1-based); a pure function of ``i`` so any page is cheap."""
    if i % 7 == 0:
        first = UNICODE_FIRST[(i // 7) % len(UNICODE_FIRST)]
    else:
        first = ASCII_FIRST[i % len(ASCII_FIRST)]
    last = LAST[(i * 31) % len(LAST)]
    company, domain = COMPANIES[(i * 17) % len(COMPANIES)]
    created_ms = i * 1_000_003 + (i * 7919) % 1000
    created, updated = _iso(created_ms), _iso(created_ms + (i * 104_729) % 2_592_000_000)
    start = (i * 13) % (len(LOREM) // 2)
    props = {
        "createdate": created,
        "email": f"{last.lower()}.{i}@{domain}",
        "firstname": first,
        "hs_object_id": str(i),
        "lastmodifieddate": updated,
        "lastname": last,
        "phone": f"+1 555 {i % 1000:03d} {(i * 7) % 10000:04d}",
        "company": company,
        "notes": f"Contact {i}: {LOREM[start : start + NOTES_LEN]}",
    }
    return {
        "id": str(i),
        "properties": props,
        "createdAt": created,
        "updatedAt": updated,
        "archived": False,
    }


# ---- HubSpot-shaped responses -------------------------------------------------------------


def _error(
    status: int, message: str, category: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    cid = correlation_id()
    body = {
        "status": "error",
        "message": message,
        "correlationId": cid,
        "category": category,
        **extra,
    }
    return JSONResponse(
        body, status_code=status, headers={"X-HubSpot-Correlation-Id": cid, **(headers or {})}
    )


def _unavailable() -> dict[str, Any]:
    return {
        "status": "error",
        "message": "Service Unavailable",
        "correlationId": correlation_id(),
        "category": "SERVICE_UNAVAILABLE",
    }


def _rate_headers(d: RateDecision) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Max": str(d.limit),
        "X-HubSpot-RateLimit-Remaining": str(d.remaining),
        "X-HubSpot-RateLimit-Interval-Milliseconds": str(d.window_ms),
        "X-HubSpot-RateLimit-Daily": str(d.daily_limit),
        "X-HubSpot-RateLimit-Daily-Remaining": str(d.daily_remaining),
    }


def _ago(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}(s)"
    return f"{int(seconds)} second(s)"


def _encode_after(offset: int) -> str:
    """Opaque cursor like HubSpot's ``NTI1Cg%3D%3D``: base64 of the offset, percent-encoded."""
    return base64.urlsafe_b64encode(f"{offset}\n".encode()).decode().replace("=", "%3D")


def _decode_after(raw: str) -> int | None:
    """Accept the cursor as sent in JSON (``%3D``), as decoded from the link (``=``), or
    without padding; ``None`` when it is not one of ours."""
    value = raw
    for _ in range(2):
        value = unquote(value)
    value += "=" * (-len(value) % 4)
    try:
        text = base64.b64decode(value, altchars=b"-_", validate=True).decode("ascii").strip()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return int(text) if text.isdigit() else None


def _auth(request: Request) -> JSONResponse | None:
    late = sandbox_state(request).check_access(NAME, bearer_token(request))
    if late is None:
        return None
    if late == "invalid":
        return _error(
            401,
            "Authentication credentials not found. This API supports OAuth 2.0 authentication "
            "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
            "oauth-overview",
            "INVALID_AUTHENTICATION",
        )
    return _error(
        401,
        f"The OAuth token used to make this call expired {_ago(late)} ago.",
        "EXPIRED_AUTHENTICATION",
    )


SCOPES_DOC = "https://developers.hubspot.com/scopes"


def _missing_scope(request: Request, scope: str) -> JSONResponse | None:
    """HubSpot's 403 MISSING_SCOPES. Sandbox convention: a static private-app token ending in
    ``~scope+scope`` (e.g. ``pat-na1-x~crm.objects.deals.read``) holds only those scopes;
    every other token holds them all."""
    token = bearer_token(request) or ""
    if "~" not in token or scope in token.rsplit("~", 1)[1].split("+"):
        return None
    return _error(
        403,
        "This app hasn't been granted all required scopes to make this call. Read more about "
        f"required scopes here: {SCOPES_DOC}.",
        "MISSING_SCOPES",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
        links={"scopes": SCOPES_DOC},
    )


# ---- companies and deals, generated the same way --------------------------------------------

COMPANY_FIRST = (
    "Blue",
    "Bright",
    "North",
    "Silver",
    "Granite",
    "Cedar",
    "Summit",
    "Harbor",
    "Pioneer",
    "Quantum",
    "Lakeside",
    "Redwood",
    "Atlas",
)
COMPANY_SECOND = (
    "Analytics",
    "Logistics",
    "Robotics",
    "Foods",
    "Health",
    "Capital",
    "Software",
    "Energy",
    "Textiles",
    "Media",
    "Labs",
)
# Every 7th company: a multi-byte UTF-8 name (2-, 3- and 4-byte sequences).
UNICODE_COMPANIES = (
    "Société Générale du Nord",
    "Müller & Söhne",
    "株式会社さくら",
    "Łódź Żegluga",
    "Ørsted Øresund",
    "Компания Восток",
    "Công ty Hà Nội",
    "𠮷野家 Holdings",
    "Café Zoë",
)
INDUSTRIES = (
    "COMPUTER_SOFTWARE",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
    "MARKETING_AND_ADVERTISING",
    "EDUCATION_MANAGEMENT",
    "CONSTRUCTION",
    "TELECOMMUNICATIONS",
    "FOOD_PRODUCTION",
    "LOGISTICS_AND_SUPPLY_CHAIN",
)
CITIES = (
    "Boston",
    "Dublin",
    "Berlin",
    "São Paulo",
    "Kraków",
    "東京",
    "Zürich",
    "Austin",
    "Singapore",
    "Montréal",
    "Cambridge",
)
DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)
PRODUCTS = ("Platform licence", "Renewal", "Onboarding", "Support plan", "Expansion", "Pilot")


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isascii() and ch.isalnum()) or "co"


def company(i: int) -> dict[str, Any]:
    """Company number ``i`` (1-based); a pure function of ``i``."""
    if i % 7 == 0:
        name = UNICODE_COMPANIES[(i // 7) % len(UNICODE_COMPANIES)]
    else:
        name = f"{COMPANY_FIRST[i % len(COMPANY_FIRST)]} "
        name += COMPANY_SECOND[(i * 5) % len(COMPANY_SECOND)]
    created_ms = i * 1_500_007 + (i * 6151) % 1000
    created, updated = _iso(created_ms), _iso(created_ms + (i * 86_743) % 2_592_000_000)
    props = {
        "createdate": created,
        "domain": f"{_slug(name)}{i}.example",
        "hs_lastmodifieddate": updated,
        "hs_object_id": str(i),
        "name": name,
        "industry": INDUSTRIES[(i * 3) % len(INDUSTRIES)],
        "city": CITIES[(i * 11) % len(CITIES)],
        "phone": f"+1 555 {(i * 3) % 1000:03d} {(i * 13) % 10000:04d}",
        "numberofemployees": str(5 + (i * 37) % 5000),
    }
    return {
        "id": str(i),
        "properties": props,
        "createdAt": created,
        "updatedAt": updated,
        "archived": False,
    }


def deal(i: int) -> dict[str, Any]:
    """Deal number ``i`` (1-based); a pure function of ``i``."""
    created_ms = i * 2_000_011 + (i * 3571) % 1000
    created, updated = _iso(created_ms), _iso(created_ms + (i * 65_537) % 2_592_000_000)
    cents = "" if i % 4 else ".50"
    props = {
        "amount": f"{500 + (i * 48_271) % 99_991}{cents}",
        "closedate": _iso(created_ms + 86_400_000 * (7 + i % 120)),
        "createdate": created,
        "dealname": f"{company(1 + (i * 13) % 1000)['properties']['name']} – "
        f"{PRODUCTS[i % len(PRODUCTS)]} #{i}",
        "dealstage": DEAL_STAGES[(i * 3) % len(DEAL_STAGES)],
        "hs_lastmodifieddate": updated,
        "hs_object_id": str(i),
        "pipeline": "default",
    }
    return {
        "id": str(i),
        "properties": props,
        "createdAt": created,
        "updatedAt": updated,
        "archived": False,
    }


@dataclass(frozen=True)
class ObjectType:
    """One CRM object type: its records, default and always-returned properties, and which
    properties search compares as dates or numbers (the rest: case-insensitive strings)."""

    name: str
    make: Callable[[int], dict[str, Any]]
    defaults: tuple[str, ...]
    always: tuple[str, ...]
    known: frozenset[str]
    dates: frozenset[str]
    numbers: frozenset[str]

    @property
    def scope(self) -> str:
        return f"crm.objects.{self.name}.read"

    @property
    def collection(self) -> str:
        return f"{NAME}.{self.name}"  # hubspot.contacts is LiveConfig.hubspot_contacts


DEAL_PROPERTIES = (
    "amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
    "hs_object_id", "pipeline",
)  # fmt: skip

OBJECTS = {
    "contacts": ObjectType(
        "contacts",
        contact,
        DEFAULT_PROPERTIES,
        ALWAYS_PROPERTIES,
        KNOWN_PROPERTIES,
        frozenset({"createdate", "lastmodifieddate"}),
        frozenset({"hs_object_id"}),
    ),
    "companies": ObjectType(
        "companies",
        company,
        ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
        ("createdate", "hs_lastmodifieddate", "hs_object_id"),
        frozenset(
            {
                "createdate",
                "domain",
                "hs_lastmodifieddate",
                "hs_object_id",
                "name",
                "industry",
                "city",
                "phone",
                "numberofemployees",
            }
        ),
        frozenset({"createdate", "hs_lastmodifieddate"}),
        frozenset({"hs_object_id", "numberofemployees"}),
    ),
    "deals": ObjectType(
        "deals",
        deal,
        DEAL_PROPERTIES,  # every deal property is a default one
        ("createdate", "hs_lastmodifieddate", "hs_object_id"),
        frozenset(DEAL_PROPERTIES),
        frozenset({"closedate", "createdate", "hs_lastmodifieddate"}),
        frozenset({"amount", "hs_object_id"}),
    ),
}


def _project(kind: ObjectType, record: dict[str, Any], asked: list[str]) -> dict[str, Any]:
    """HubSpot's projection: known asked-for properties (or the defaults) plus the always-on
    ones; unknown names are silently dropped."""
    names = list(dict.fromkeys(asked)) if asked else list(kind.defaults)
    names = [n for n in names if n in kind.known] + [n for n in kind.always if n not in names]
    record["properties"] = {n: record["properties"][n] for n in names}
    return record


# ---- list endpoints -----------------------------------------------------------------------


def _rate_refusal(decision: RateDecision, headers: dict[str, str]) -> JSONResponse:
    cid = correlation_id()
    which = "daily" if decision.policy == "DAILY" else "ten_secondly_rolling"
    body = {
        "status": "error",
        "message": f"You have reached your {which} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": cid,
        "policyName": decision.policy,
    }
    return JSONResponse(body, status_code=429, headers={**headers, "X-HubSpot-Correlation-Id": cid})


def _list_endpoint(kind: ObjectType) -> Callable[[Request], Any]:
    async def list_objects(request: Request) -> Response:
        state = sandbox_state(request)
        if (fault := await preamble(request, _unavailable)) is not None:
            return fault
        if (denied := _auth(request) or _missing_scope(request, kind.scope)) is not None:
            return denied
        decision = state.take_rate(NAME)
        headers = _rate_headers(decision)
        if decision.policy is not None:
            return _rate_refusal(decision, headers)

        params = request.query_params
        raw_limit = params.get("limit", "10")
        try:
            limit = int(raw_limit)
        except ValueError:
            return _error(
                400,
                f"Unable to parse limit: '{raw_limit}' is not a number",
                "VALIDATION_ERROR",
                headers,
            )
        if not 1 <= limit <= MAX_LIMIT:
            return _error(
                400,
                f"limit must be between 1 and {MAX_LIMIT}, got {limit}",
                "VALIDATION_ERROR",
                headers,
            )
        offset = 0
        if "after" in params:
            decoded = _decode_after(params["after"])
            if decoded is None:
                return _error(
                    400,
                    f"Invalid input: '{params['after']}' is not a valid paging cursor",
                    "VALIDATION_ERROR",
                    headers,
                )
            offset = decoded
        archived = params.get("archived", "false").lower()
        if archived not in ("true", "false"):
            return _error(
                400, f"Unable to parse archived: '{archived}'", "VALIDATION_ERROR", headers
            )

        wanted = [
            p.strip() for v in params.getlist("properties") for p in v.split(",") if p.strip()
        ]
        total = 0 if archived == "true" else state.config.volume(kind.collection)
        stop = min(total, offset + limit)
        results = [_project(kind, kind.make(i), wanted) for i in range(offset + 1, stop + 1)]
        body: dict[str, Any] = {"results": results}
        if stop < total:
            after = _encode_after(stop)
            query = [(k, v) for k, v in params.multi_items() if k != "after"]
            query.append(("after", unquote(after)))
            link = f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(query)}"
            body["paging"] = {"next": {"after": after, "link": link}}
        return JSONResponse(body, headers=headers)

    list_objects.__name__ = f"list_{kind.name}"
    list_objects.__doc__ = (
        f"List {kind.name}: ``limit`` 1..100 (default 10), opaque ``after``, ``properties`` "
        "(comma list or repeated); no ``paging`` key on the last page."
    )
    return list_objects


# ---- search -------------------------------------------------------------------------------

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


def _parse_filters(doc: dict[str, Any], raw: str) -> list[list[dict[str, Any]]]:
    groups = doc.get("filterGroups") or []
    if not isinstance(groups, list):
        raise Invalid("Invalid input JSON: filterGroups must be an array")
    if len(groups) > MAX_GROUPS:
        raise Invalid(f"Too many filter groups: {len(groups)}. The maximum is {MAX_GROUPS}.")
    out: list[list[dict[str, Any]]] = []
    count = 0
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise Invalid("Invalid input JSON: each filter group needs a `filters` array")
        if len(filters) > MAX_GROUP_FILTERS:
            raise Invalid(
                f"Too many filters in a group: {len(filters)}. The maximum is {MAX_GROUP_FILTERS}."
            )
        count += len(filters)
        parsed = []
        for f in filters:
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
            parsed.append(item)
        out.append(parsed)
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
    return {"LT": mine < other, "LTE": mine <= other, "GT": mine > other, "GTE": mine >= other}[op]


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


def _search_endpoint(kind: ObjectType) -> Callable[[Request], Any]:
    async def search_objects(request: Request) -> Response:
        state = sandbox_state(request)
        if (fault := await preamble(request, _unavailable)) is not None:
            return fault
        if (denied := _auth(request) or _missing_scope(request, kind.scope)) is not None:
            return denied
        if not _take_search_rate(request):  # no X-HubSpot-RateLimit-* headers on search
            cid = correlation_id()
            body = {
                "status": "error",
                "message": "You have reached your secondly limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": cid,
                "policyName": "SECONDLY",
            }
            return JSONResponse(body, status_code=429, headers={"X-HubSpot-Correlation-Id": cid})
        raw = (await request.body()).decode("utf-8", "replace")
        try:
            doc = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            return _error(
                400,
                f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}",
                "VALIDATION_ERROR",
            )
        try:
            if not isinstance(doc, dict):
                raise Invalid("Invalid input JSON: expected an object")
            limit = doc.get("limit", SEARCH_DEFAULT_LIMIT)
            if isinstance(limit, str) and limit.isdigit():
                limit = int(limit)
            if isinstance(limit, bool) or not isinstance(limit, int):
                raise Invalid(f"Unable to parse limit: {json.dumps(limit)} is not a number")
            if not 1 <= limit <= SEARCH_MAX_LIMIT:
                raise Invalid(f"limit must be between 1 and {SEARCH_MAX_LIMIT}, got {limit}")
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
            groups = _parse_filters(doc, raw)
            sort = _parse_sorts(doc)
            asked = doc.get("properties") or []
            if not isinstance(asked, list) or not all(isinstance(p, str) for p in asked):
                raise Invalid("Invalid input JSON: properties must be an array of strings")
        except Invalid as exc:
            return _error(400, str(exc), "VALIDATION_ERROR")

        volume = state.config.volume(kind.collection)
        hits: Sequence[int] = range(1, volume + 1)  # no filter, creation order: no scan
        if groups or sort is not None:
            hits = _hits(kind.name, volume, json.dumps(groups, sort_keys=True), sort)
        total = len(hits)
        stop = min(total, offset + limit, SEARCH_CEILING)
        wanted = [p.strip() for p in asked if p.strip()]
        results = [_project(kind, kind.make(hits[k]), wanted) for k in range(offset, stop)]
        body: dict[str, Any] = {"total": total, "results": results}
        if stop < total:  # offered even at the ceiling, where following it is a 400
            body["paging"] = {"next": {"after": str(stop)}}
        return JSONResponse(body)

    search_objects.__name__ = f"search_{kind.name}"
    search_objects.__doc__ = (
        f"Search {kind.name}: JSON body ``filterGroups``, ``sorts``, ``properties``, ``limit`` "
        f"(1..{SEARCH_MAX_LIMIT}, default {SEARCH_DEFAULT_LIMIT}), ``after`` (a string offset, "
        f"below {SEARCH_CEILING}); ``total`` counts every match."
    )
    return search_objects


for _kind in OBJECTS.values():
    router.add_api_route(f"/crm/v3/objects/{_kind.name}", _list_endpoint(_kind), methods=["GET"])
    router.add_api_route(
        f"/crm/v3/objects/{_kind.name}/search", _search_endpoint(_kind), methods=["POST"]
    )


@router.post("/oauth/v1/token")
async def token(request: Request) -> Response:
    """Form-encoded refresh grant; the refresh token rotates only when configured to."""
    state = sandbox_state(request)
    if (fault := await token_call(request, NAME, _unavailable)) is not None:
        return fault
    form = dict(
        parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    )

    def oauth_error(status: str, message: str) -> JSONResponse:
        cid = correlation_id()
        return JSONResponse(
            {"status": status, "message": message, "correlationId": cid},
            status_code=400,
            headers={"X-HubSpot-Correlation-Id": cid},
        )

    if form.get("grant_type") != "refresh_token":
        return oauth_error("BAD_GRANT_TYPE", "missing or unknown grant type")
    try:
        issued = state.refresh(
            NAME,
            form.get("client_id", ""),
            form.get("client_secret", ""),
            form.get("refresh_token", ""),
        )
    except TokenError as exc:
        if exc.reason == "client":
            return oauth_error("BAD_CLIENT_ID", "missing or unknown client id")
        return oauth_error("BAD_REFRESH_TOKEN", "missing or invalid refresh token")
    return JSONResponse(
        {
            "token_type": "bearer",
            "refresh_token": issued.refresh_token,
            "access_token": issued.access_token,
            "expires_in": issued.expires_in,
        }
    )


# ---- CRM exports (async) -----------------------------------------------------------------
# An export moves PENDING -> PROCESSING -> COMPLETE one state per status read, so tests control
# time by polling. `POST /hubspot/_sandbox/export {"cancel_next": true}` ends the next one
# CANCELED. The result is a signed download URL on the sandbox host (HubSpot's is a short-lived
# signed file URL): no bearer token, the signature is the credential.


@dataclass
class Export:
    id: str
    properties: list[str]
    total: int
    signature: str
    reads: int = 0
    cancel: bool = False

    @property
    def status(self) -> str:
        if self.reads < 1:
            return "PENDING"
        if self.reads < 2:
            return "PROCESSING"
        return "CANCELED" if self.cancel else "COMPLETE"


def _exports(request: Request) -> dict[str, Any]:
    store = getattr(request.app.state, "hubspot_exports", None)
    if store is None:
        store = request.app.state.hubspot_exports = {"exports": {}, "cancel_next": False}
    return store


async def _export_gate(request: Request) -> tuple[Response | None, dict[str, str]]:
    if (fault := await preamble(request, _unavailable)) is not None:
        return fault, {}
    scope = "crm.objects.contacts.read"
    if (denied := _auth(request) or _missing_scope(request, scope)) is not None:
        return denied, {}
    decision = sandbox_state(request).take_rate(NAME)
    headers = _rate_headers(decision)
    if decision.policy is not None:
        return _rate_refusal(decision, headers), headers
    return None, headers


@router.post("/_sandbox/export")
async def export_control(request: Request) -> Response:
    """Sandbox-only: `{"cancel_next": true}` ends the next export CANCELED."""
    _exports(request)["cancel_next"] = bool((await request.json()).get("cancel_next"))
    return JSONResponse({"ok": True})


@router.post("/crm/v3/exports/export/async")
async def export_start(request: Request) -> Response:
    denied, headers = await _export_gate(request)
    if denied is not None:
        return denied
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _error(400, "Invalid input JSON", "VALIDATION_ERROR", headers)
    props = body.get("objectProperties") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or body.get("objectType") != "CONTACT"
        or body.get("format") != "CSV"
        or body.get("exportType") not in ("VIEW", "LIST")
        or not isinstance(props, list)
        or not props
    ):
        return _error(
            400,
            "exportType (VIEW|LIST), format CSV, objectType CONTACT and objectProperties "
            "are required",
            "VALIDATION_ERROR",
            headers,
        )
    unknown = [p for p in props if p not in KNOWN_PROPERTIES]
    if unknown:
        return _error(400, f"Unknown properties: {unknown}", "VALIDATION_ERROR", headers)
    store = _exports(request)
    export = Export(
        str(len(store["exports"]) + 5_000_001),
        list(props),
        sandbox_state(request).config.volume("hubspot.contacts"),
        base64.urlsafe_b64encode(os.urandom(12)).decode(),
        cancel=store["cancel_next"],
    )
    store["cancel_next"] = False
    store["exports"][export.id] = export
    status = f"{str(request.base_url).rstrip('/')}/{NAME}/crm/v3/exports/export/async/tasks"
    return JSONResponse(
        {"id": export.id, "links": {"status": f"{status}/{export.id}/status"}},
        status_code=202,
        headers=headers,
    )


@router.get("/crm/v3/exports/export/async/tasks/{export_id}/status")
async def export_status(request: Request, export_id: str) -> Response:
    denied, headers = await _export_gate(request)
    if denied is not None:
        return denied
    export = _exports(request)["exports"].get(export_id)
    if export is None:
        return _error(404, f"Export {export_id} not found", "OBJECT_NOT_FOUND", headers)
    body: dict[str, Any] = {"id": export.id, "taskId": export.id, "status": export.status}
    if export.status == "COMPLETE":
        files = f"{str(request.base_url).rstrip('/')}/{NAME}/_files/exports"
        body["result"] = f"{files}/{export.id}.csv?signature={export.signature}"
        body["numPartitions"] = 1
    if export.status == "CANCELED":  # HubSpot's ActionResponse: the reason in `errors`
        body["numErrors"] = 1
        body["errors"] = [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Export canceled by a user of the portal",
            }
        ]
    export.reads += 1
    return JSONResponse(body, headers=headers)


@router.get("/_files/exports/{name}")
async def export_file(request: Request, name: str) -> Response:
    """The export's CSV: columns `objectProperties`, one row per contact. Like a presigned
    storage URL it refuses a request that also carries an Authorization header."""
    if "authorization" in request.headers:  # as S3 answers a presigned URL plus a token
        return Response(
            "InvalidArgument: Only one auth mechanism allowed",
            status_code=400,
            media_type="text/plain",
        )
    export = _exports(request)["exports"].get(name.removesuffix(".csv"))
    if export is None or request.query_params.get("signature") != export.signature:
        return Response("AccessDenied", status_code=403, media_type="text/plain")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(export.properties)
    for i in range(1, export.total + 1):
        props = contact(i)["properties"]
        writer.writerow([props.get(p, "") for p in export.properties])
    return Response(out.getvalue(), media_type="text/csv")
