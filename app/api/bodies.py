"""JSON request bodies are checked once, at the door, before any parser of ours or FastAPI's
reads them: UTF-8 JSON, at most `max_json_depth` nested objects and arrays, every string
valid Unicode (no lone surrogate: `"\\udfff"` decodes to a str nothing can encode, send or
store), every number a finite double. A refusal is 400 `malformed_json` or 422
`json_too_deep` / `invalid_string` / `invalid_number`, with what to fix; on a JSON-RPC path
(`/mcp`) the same status carries a JSON-RPC error (`PARSE_ERROR`, `data` = our error body).

Cheap for a 1 MB body: nesting is measured on the raw bytes (strings blanked, then a running
count of brackets, all in C), the parse is orjson's (which refuses lone surrogates, invalid
UTF-8 and numbers past a double); only a refused body is parsed again, with the stdlib, to say
where the offending value is. A body passed on is parsed as before by whoever reads it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import errors
from app.kernel.errors import InvalidInput, ToolqueueError

_BOM = b"\xef\xbb\xbf"
_KEPT = b'"[]{}'
_NOT_KEPT = bytes(b for b in range(256) if b not in _KEPT)
_STRING = re.compile(rb'"[^"]*"')
_STEP = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Refusal:
    error: ToolqueueError
    doc: Any = None  # the body as parsed, when it could be (to find a JSON-RPC id)


def nesting(body: bytes) -> int:
    """How many objects and arrays deep `body` goes, outside strings. For text that is not
    JSON it is an overestimate of what any parser would descend into before failing."""
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_KEPT)
    brackets = _STRING.sub(b"", plain).replace(b'"', b"")
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check(body: bytes, max_depth: int) -> Refusal | None:
    """None when the body is acceptable JSON (see the module docstring), else why not."""
    body = body.removeprefix(_BOM)
    depth = nesting(body)
    if depth > max_depth:
        return Refusal(
            InvalidInput(
                f"the JSON body nests {depth} objects and arrays deep; at most {max_depth} are "
                "accepted (TOOLQUEUE_MAX_JSON_DEPTH): flatten it",
                code="json_too_deep",
            ),
            _parsed(body),
        )
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _diagnose(body, str(exc))
    return None


def _parsed(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _diagnose(body: bytes, reason: str) -> Refusal:
    """Why orjson refused a body that is not too deep (so the stdlib parses it safely)."""
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        return Refusal(_malformed(f"it is not UTF-8 (byte {exc.start})"))
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, _NotJson) as exc:
        return Refusal(_malformed(str(exc)))
    except ValueError:  # an integer of more than 4,300 digits
        return Refusal(_number("body", "of more than 4300 digits"))
    for path, value in _leaves(doc):
        if isinstance(value, str) and _SURROGATE.search(value):
            return Refusal(
                InvalidInput(
                    f"{path}: a string holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape "
                    "without its pair), which cannot be encoded or sent: send valid Unicode",
                    code="invalid_string",
                ),
                doc,
            )
        if isinstance(value, int | float) and not isinstance(value, bool) and not _finite(value):
            return Refusal(_number(path, "beyond a 64-bit float (about ±1.8e308)"), doc)
    return Refusal(_malformed(reason), doc)


class _NotJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number (numbers are finite)")


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _leaves(doc: Any) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every key and scalar, depth first, without recursion. A dict's
    keys come before anything under it, so a path is made only of keys already seen."""
    stack: list[tuple[str, Any]] = [("body", doc)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, value in reversed(node.items()):
                yield f"a key of {path}", key
                stack.append((f"{path}.{key}" if path != "body" else key, value))
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(node))))
        else:
            yield path, node


def _malformed(detail: str) -> ToolqueueError:
    return ToolqueueError(
        f"the request body is not valid JSON: {detail}", code="malformed_json"
    )


def _number(path: str, detail: str) -> ToolqueueError:
    return InvalidInput(
        f"{path}: a number {detail}: send a smaller number, or the value as a string",
        code="invalid_number",
    )


def is_json(content_type: str | None) -> bool:
    """FastAPI's rule for parsing a body as JSON: no Content-Type, or `application/json` or
    `application/*+json`."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class JsonBodies:
    """Pure ASGI: reads a JSON body (BodyLimit, outside, has capped it), refuses it per `check`,
    or replays it to the app unchanged. Bodies under `passthrough` prefixes are not ours to
    read (the proxy forwards them to the vendor as they are, and the vendor answers them)."""

    def __init__(
        self,
        app: ASGIApp,
        max_depth: int,
        jsonrpc_paths: Collection[str] = (),
        passthrough: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.max_depth = max_depth
        self.jsonrpc_paths = frozenset(jsonrpc_paths)
        self.passthrough = passthrough

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"].startswith(self.passthrough)
            or not self._has_json_body(scope)
        ):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        refusal = check(body, self.max_depth) if body else None
        if refusal is not None:
            await self._refuse(scope, receive, send, refusal)
            return
        pending: list[Message] = [{"type": "http.request", "body": body}]

        async def replay() -> Message:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    def _has_json_body(scope: Scope) -> bool:
        headers = dict(scope["headers"])
        if headers.get(b"content-length", b"1") == b"0":
            return False
        if b"content-length" not in headers and b"transfer-encoding" not in headers:
            return False
        content_type = headers.get(b"content-type")
        return is_json(content_type.decode("latin-1") if content_type is not None else None)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
        if scope["path"] in self.jsonrpc_paths:
            response = errors.jsonrpc_response(refusal.error, _rpc_id(refusal.doc))
        else:
            response = errors.response(refusal.error)
        await response(scope, receive, send)


def _rpc_id(doc: Any) -> str | int | None:
    rpc_id = doc.get("id") if isinstance(doc, dict) else None
    return rpc_id if isinstance(rpc_id, str | int) and not isinstance(rpc_id, bool) else None
