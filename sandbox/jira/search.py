"""Enhanced JQL search: ``GET|POST /rest/api/3/search/jql`` with ``nextPageToken`` paging.

There is **no total**: the token is absent and ``isLast`` true on the last page. Without
``fields`` only ``id`` is returned; ``maxResults`` is capped at 100 with fields beyond
id/key (5000 without), silently, as Jira does. A JQL with an entity-property clause
(``issue.property[<key>].<path> = <value>``) is answered from the issues the sandbox's writes
created (:func:`sandbox.jira.stored.marked`), never from the seeded pages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.jira.data import ISSUE_FIELDS, issue
from sandbox.jira.http import base_url, error_response, gate, int_param
from sandbox.jira.jql import Jql, JqlError, matches, nth
from sandbox.jira.stored import marked, render

DEFAULT_MAX_RESULTS = 50
MAX_RESULTS = 100  # with fields beyond id/key; Jira returns fewer than asked, silently
MAX_RESULTS_IDS = 5000  # with id/key only
BAD_TOKEN = "The provided next page token is invalid or expired."
BAD_PAYLOAD = "Invalid request payload. Refer to the REST API documentation and try again."

router = APIRouter()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_token(offset: int, jql: str) -> str:
    """Opaque like Jira's ``CAEaAggD``: a protobuf-ish offset plus a digest of the query."""
    digest = hashlib.sha256(jql.encode()).digest()[:4]
    raw = b"\x08" + _varint(offset) + b"\x12\x04" + digest
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, jql: str) -> int | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if raw[:1] != b"\x08":
        return None
    offset, shift, i = 0, 0, 1
    while i < len(raw) and raw[i] & 0x80:
        offset |= (raw[i] & 0x7F) << shift
        shift += 7
        i += 1
    if i >= len(raw):
        return None
    offset |= raw[i] << shift
    if raw[i + 1 :] != b"\x12\x04" + hashlib.sha256(jql.encode()).digest()[:4]:
        return None
    return offset


def _project_exists(projects: int) -> Callable[[str], bool]:
    """Whether a ``project`` value names one of the generated projects (beyond ENG and OPS)."""

    def exists(value: str) -> bool:
        m = re.fullmatch(r"PRJ(\d{6})", value, re.I)
        return bool(m and 3 <= int(m.group(1)) <= projects) or (
            value.isdigit() and 10003 <= int(value) <= 10000 + projects
        )

    return exists


def _fields(raw: list[str]) -> set[str]:
    """``fields``: names, ``*all``/``*navigable``, ``-name`` exclusions; unknown names are
    ignored, as Jira does. Absent: ``id`` only (the enhanced search's default)."""
    names = [n.strip() for v in raw for n in str(v).split(",") if n.strip()]
    wanted: set[str] = set()
    for n in names:
        if n in ("*all", "*navigable"):
            wanted |= {*ISSUE_FIELDS, "id", "key"}
        elif not n.startswith("-"):
            wanted.add(n)
    for n in names:
        if n.startswith("-"):
            wanted.discard(n[1:])
    return wanted


def _wanted(params: dict[str, Any]) -> set[str]:
    fields = params.get("fields")
    return _fields(fields if isinstance(fields, list) else [fields] if fields else [])


def _written_page(
    params: dict[str, Any], jql: str, found: list[dict[str, Any]], headers: dict[str, str]
) -> Response:
    """A page of the written issues an entity-property JQL selects (see :mod:`.stored`)."""
    try:
        max_results = int_param(params.get("maxResults"), "maxResults", DEFAULT_MAX_RESULTS)
    except JqlError as exc:
        return error_response(400, [str(exc)], headers)
    wanted = _wanted(params)
    size = min(max(max_results, 1), MAX_RESULTS_IDS if wanted <= {"id", "key"} else MAX_RESULTS)
    token = params.get("nextPageToken")
    offset = decode_token(str(token), jql) if token else 0
    if offset is None:
        return error_response(400, [BAD_TOKEN], headers)
    stop = min(len(found), offset + size)
    body: dict[str, Any] = {"issues": [render(o, wanted) for o in found[offset:stop]]}
    if stop < len(found):
        body["nextPageToken"] = encode_token(stop, jql)
    body["isLast"] = stop >= len(found)
    return JSONResponse(body, headers=headers)


async def _search(request: Request, params: dict[str, Any]) -> Response:
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    jql = str(params.get("jql") or "")
    state = sandbox_state(request)
    if (written := marked(state, jql)) is not None:
        return _written_page(params, jql, written, headers)
    try:
        max_results = int_param(params.get("maxResults"), "maxResults", DEFAULT_MAX_RESULTS)
        if max_results < 0:
            raise JqlError("The 'maxResults' parameter must not be negative.")
        residues = Jql(jql, _project_exists(state.config.volume("jira.projects"))).parse()
    except JqlError as exc:
        return error_response(400, [str(exc)], headers)
    wanted = _wanted(params)
    cap = MAX_RESULTS_IDS if wanted <= {"id", "key"} else MAX_RESULTS
    size = min(max(max_results, 1), cap)
    token = params.get("nextPageToken")
    offset = decode_token(str(token), jql) if token else 0
    if offset is None:
        return error_response(400, [BAD_TOKEN], headers)
    allowed, total = matches(residues, state.config.volume("jira.issues"))
    stop = min(total, offset + size)
    base = base_url(request)
    body: dict[str, Any] = {
        "issues": [issue(base, nth(allowed, k), wanted) for k in range(offset, stop)]
    }
    if stop < total:
        body["nextPageToken"] = encode_token(stop, jql)
    body["isLast"] = stop >= total
    return JSONResponse(body, headers=headers)


@router.get("/rest/api/3/search/jql")
async def search_get(request: Request) -> Response:
    params: dict[str, Any] = dict(request.query_params)
    params["fields"] = request.query_params.getlist("fields")
    return await _search(request, params)


@router.post("/rest/api/3/search/jql")
async def search_post(request: Request) -> Response:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        denied, headers = await gate(request)
        if denied is not None:
            return denied
        return error_response(400, [BAD_PAYLOAD], headers)
    return await _search(request, body)
