"""List endpoints: ``GET /crm/v3/objects/{type}`` with an opaque ``after`` cursor.

``limit`` 1..100 (default 10), ``after``, ``properties`` (comma list or repeated),
``archived``; no ``paging`` key on the last page. Every answer after the auth check carries
the portal's X-HubSpot-RateLimit-* headers.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlencode

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import QueryParams

from sandbox.common import sandbox_state
from sandbox.hubspot.data import ObjectType, project
from sandbox.hubspot.http import error, rate_gate

MAX_LIMIT = 100


class Invalid(ValueError):
    """A list request HubSpot refuses with 400 VALIDATION_ERROR."""


def encode_after(offset: int) -> str:
    """Opaque cursor like HubSpot's ``NTI1Cg%3D%3D``: base64 of the offset, percent-encoded."""
    return base64.urlsafe_b64encode(f"{offset}\n".encode()).decode().replace("=", "%3D")


def decode_after(raw: str) -> int | None:
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


def _window(params: QueryParams) -> tuple[int, int, bool]:
    """(limit, offset, archived) of a list request."""
    raw_limit = params.get("limit", "10")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise Invalid(f"Unable to parse limit: '{raw_limit}' is not a number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    offset = 0
    if "after" in params:
        decoded = decode_after(params["after"])
        if decoded is None:
            raise Invalid(f"Invalid input: '{params['after']}' is not a valid paging cursor")
        offset = decoded
    archived = params.get("archived", "false").lower()
    if archived not in ("true", "false"):
        raise Invalid(f"Unable to parse archived: '{archived}'")
    return limit, offset, archived == "true"


def _next(request: Request, stop: int) -> dict[str, Any]:
    """``paging.next``: the cursor, and the link repeating the request from it."""
    after = encode_after(stop)
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    query.append(("after", unquote(after)))
    link = f"{str(request.base_url).rstrip('/')}{request.url.path}?{urlencode(query)}"
    return {"next": {"after": after, "link": link}}


def list_endpoint(kind: ObjectType) -> Callable[[Request], Awaitable[Response]]:
    async def list_objects(request: Request) -> Response:
        denied, headers = await rate_gate(request, kind.scope)
        if denied is not None:
            return denied
        params = request.query_params
        try:
            limit, offset, archived = _window(params)
        except Invalid as exc:
            return error(400, str(exc), "VALIDATION_ERROR", headers)
        wanted = [
            p.strip() for v in params.getlist("properties") for p in v.split(",") if p.strip()
        ]
        total = 0 if archived else sandbox_state(request).config.volume(kind.collection)
        stop = min(total, offset + limit)
        results = [project(kind, kind.make(i), wanted) for i in range(offset + 1, stop + 1)]
        body: dict[str, Any] = {"results": results}
        if stop < total:
            body["paging"] = _next(request, stop)
        return JSONResponse(body, headers=headers)

    list_objects.__name__ = f"list_{kind.name}"
    list_objects.__doc__ = (
        f"List {kind.name}: ``limit`` 1..100 (default 10), opaque ``after``, ``properties`` "
        "(comma list or repeated); no ``paging`` key on the last page."
    )
    return list_objects
