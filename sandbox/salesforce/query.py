"""REST queries: ``/services/data/{version}/query?q=SOQL`` and its query locators.

Pages follow the real protocol: ``nextRecordsUrl`` is relative
(``/services/data/v62.0/query/01g…-200``) and absent once ``done`` is true; the batch size
comes from ``Sforce-Query-Options: batchSize=N`` (200–2000, default 2000) on the first
request and is remembered by the locator. A lookup (``WHERE <field> IN (…)``, see
:mod:`.soql`) selects from the records written to the sandbox (not deleted), and seeded ones
by ``Id``, instead of the seeded volume; reads are never effects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.salesforce import index
from sandbox.salesforce.data import SObject, sf_id
from sandbox.salesforce.http import NAME, VERSION, errors, gate, not_found
from sandbox.salesforce.soql import Query, SoqlError, field_value, parse_soql, project, rows

DEFAULT_BATCH, MIN_BATCH, MAX_BATCH = 2000, 200, 2000
MAX_LOCATORS = 10_000  # open cursors kept per sandbox (real orgs expire them after 15 min)

router = APIRouter()


@dataclass(frozen=True)
class Cursor:
    query: Query
    start: int  # first row index (0-based) of the result set
    total: int
    batch: int
    found: tuple[dict[str, Any], ...] | None = None  # a lookup's rows (else: seeded ones)

    def row(self, k: int) -> dict[str, Any]:
        """The full record of result row ``k`` (0-based)."""
        if self.found is not None:
            return self.found[k]
        return self.query.sobject.row(self.start + k + 1)


def _cursors(request: Request) -> dict[str, Cursor]:
    cursors = getattr(request.app.state, "salesforce_cursors", None)
    if cursors is None:
        cursors = {}
        request.app.state.salesforce_cursors = cursors
    return cursors


def _open_cursor(request: Request, cursor: Cursor) -> str:
    """Register a cursor; the oldest is forgotten past MAX_LOCATORS (INVALID_QUERY_LOCATOR)."""
    app_state = request.app.state
    cursors = _cursors(request)
    app_state.salesforce_seq = getattr(app_state, "salesforce_seq", 0) + 1
    locator = sf_id("01g", app_state.salesforce_seq)
    cursors[locator] = cursor
    if len(cursors) > MAX_LOCATORS:
        del cursors[next(iter(cursors))]
    return locator


def _batch_size(request: Request) -> int:
    """``Sforce-Query-Options: batchSize=N``; out-of-range sizes are clamped to 200–2000."""
    m = re.search(r"batchSize\s*=\s*(\d+)", request.headers.get("sforce-query-options", ""), re.I)
    return min(MAX_BATCH, max(MIN_BATCH, int(m.group(1)))) if m else DEFAULT_BATCH


def _page(
    cursor: Cursor, locator: str | None, pos: int, version: str, headers: dict[str, str]
) -> JSONResponse:
    stop = min(cursor.total, pos + cursor.batch)
    records = [project(cursor.query, cursor.row(k), version) for k in range(pos, stop)]
    body: dict[str, Any] = {"totalSize": cursor.total, "done": stop >= cursor.total}
    if stop < cursor.total:
        body["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{stop}"
    body["records"] = records
    return JSONResponse(body, headers=headers)


def _written(request: Request, sobject: SObject, field: str, wanted: set[str]) -> list[dict]:
    """Written records (not deleted) of ``sobject`` whose ``field`` holds one of ``wanted`` as
    text, in the order they were first written: through the index for ``Id`` and custom fields
    (a record lacking the field, or holding null, matches no value), a scan for other fields."""

    def match(o: dict[str, Any]) -> bool:
        return (
            o["attributes"]["type"] == sobject.name
            and not o.get("IsDeleted")
            and str(field_value(o, field)) in wanted
        )

    writes = sandbox_state(request).writes
    if not index.indexed(field):
        return writes.select(NAME, match)
    keys = [index.text(sobject.name, field, w) for w in wanted]
    return [o for o in writes.lookup(NAME, keys) if match(o)]


def _looked_up(request: Request, query: Query, volume: int) -> tuple[dict[str, Any], ...]:
    """A lookup's rows: written records of the sObject whose field holds one of the values,
    then seeded records named by ``Id``; OFFSET and LIMIT applied."""
    assert query.where is not None
    field, values = query.where
    wanted = {str(v) for v in values}
    sobject = query.sobject
    found = _written(request, sobject, field, wanted)
    if field.lower() == "id":
        written = {o["Id"] for o in found}
        found += [
            sobject.row(n)
            for n in _seeded(sobject.key_prefix, wanted, volume)
            if sf_id(sobject.key_prefix, n) not in written
        ]
    stop = None if query.limit is None else query.offset + query.limit
    return tuple(found[query.offset : stop])


def _seeded(prefix: str, ids: set[str], volume: int) -> list[int]:
    """The indexes of seeded records among ``ids`` (``<prefix>RO<number>`` + checksum)."""
    out = []
    for rid in sorted(ids):
        digits = rid[5:15]
        ours = rid[:5] == f"{prefix}RO" and digits.isdigit() and 1 <= int(digits) <= volume
        if ours and sf_id(prefix, int(digits)) == rid:
            out.append(int(digits))
    return out


@router.get("/services/data/{version}/query")
async def query(request: Request, version: str) -> Response:
    """``q`` = SOQL; the first batch plus a locator URL when there is more."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    if not VERSION.match(version):
        return not_found(headers)
    soql = request.query_params.get("q")
    if soql is None:
        return errors(400, "MALFORMED_QUERY", "A query string has to be specified", headers)
    try:
        parsed = parse_soql(soql)
    except SoqlError as exc:
        return errors(400, exc.code, exc.message, headers)
    volume = sandbox_state(request).config.volume(parsed.sobject.volume)
    if parsed.where is None:
        cursor = Cursor(parsed, parsed.offset, rows(parsed, volume), _batch_size(request))
    else:
        found = _looked_up(request, parsed, volume)
        cursor = Cursor(parsed, 0, len(found), _batch_size(request), found)
    locator = _open_cursor(request, cursor) if cursor.total > cursor.batch else None
    return _page(cursor, locator, 0, version, headers)


@router.get("/services/data/{version}/query/{locator_pos}")
async def query_more(request: Request, version: str, locator_pos: str) -> Response:
    """``nextRecordsUrl``: ``<locator>-<rows already returned>``."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    if not VERSION.match(version):
        return not_found(headers)
    locator, _, pos = locator_pos.partition("-")
    cursor = _cursors(request).get(locator)
    if cursor is None or not pos.isdigit() or int(pos) >= cursor.total:
        return errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator", headers)
    return _page(cursor, locator, int(pos), version, headers)
