"""A declarative spec's write: one request per job, its answer read by JMESPath.

`connectors.specs` validates a spec's `writes` and builds a `DeclaredWrite`; this module runs
it. Templates see `args` (the tool's arguments) and `op` (`op.key`, the operation's key, the
same on every attempt, and `op.index`). The key reaches the vendor as a header
(`key_header`: Stripe's and Zendesk's `Idempotency-Key`) or inside the body (Zendesk's
`external_id`, which the optional `find` looks up before an uncertain create is resent).
A vendor's refusal of the key itself (`key_error`) is not a record's rejection: with 409 the
key's first request is still executing (retry later), otherwise the key was used for another
request and the job stops naming it.

A `preview` (`PreviewRead`) says what the write would do with one GET and no write: the
object it changes (a 404 is the write's refusal), its current values of the fields the
rendered body sets beside the proposed ones (an update), or, for a write that adds to the
object (a comment), that it would be created there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import orjson

from connectors.base import Http
from connectors.errors import ConnectorError, Transient, VendorError
from connectors.pagination import search
from connectors.templates import render
from connectors.writes import ItemResult, Operation, PreviewItem, creates, diffed, would_reject

Encoding = Literal["json", "form"]
Found = Literal["created", "updated"]


@dataclass(frozen=True)
class Lookup:
    """A GET whose answer lists the operation's effect, if it happened (`records` non-empty)."""

    path: str
    query: dict[str, Any]
    records: str  # JMESPath to the list of matches
    id: str  # JMESPath to a match's vendor id


@dataclass(frozen=True)
class PreviewRead:
    """The GET a preview makes and how it reads the answer against the write's body."""

    current: str  # path template of the object the write changes
    id: str = ""  # template of the object's id (`{{args.id}}`)
    object: str = ""  # JMESPath to the object in the answer ("": the answer)
    fields: str | None = None  # JMESPath to the fields set in the rendered body; None: adds
    merge: tuple[str, ...] = ()  # fields set key by key (metadata): compared per given key


@dataclass(frozen=True)
class DeclaredWrite:
    """The request a spec declares, and how its answer names the object written."""

    tool: str
    method: str
    path: str
    body: Any
    encoding: Encoding
    id: str  # JMESPath to the vendor id in the answer
    status: Found
    key_header: str = ""
    key_error: str = ""
    find_spec: Lookup | None = None
    preview_spec: PreviewRead | None = None

    def send(self, http: Http, op: Operation) -> list[ItemResult]:
        ((i, _),) = op.items
        ctx = context(op)
        kwargs: dict[str, Any] = {"headers": {self.key_header: op.key} if self.key_header else {}}
        body = prune(render(self.body, ctx)) if self.body is not None else None
        if body is not None and self.encoding == "form":
            kwargs["data"] = form_pairs(body)
        elif body is not None:
            kwargs["json"] = body
        try:
            resp = http.request(self.method, render_path(self.path, ctx), **kwargs)
        except VendorError as exc:
            if self.key_error and exc.code == self.key_error:
                raise self.key_refused(op, exc) from None
            raise
        doc = orjson.loads(resp.content) if resp.content else {}
        return [ItemResult(i, self.status, _text(search(self.id, doc)))]

    def key_refused(self, op: Operation, exc: VendorError) -> Exception:
        """409: the key's first request still runs (Transient); else the key is spent."""
        vendor = _vendor_label(self.tool)
        if exc.status == 409:
            return Transient(
                f"{vendor} is still executing the first request with key {op.key}; "
                "retrying later with the same key",
                status=409,
            )
        return ConnectorError(
            "idempotency_error",
            f"{self.tool}: operation {op.index}: {vendor} refused idempotency key {op.key} "
            f"because it was first used for another request ({exc.message}); nothing was "
            "resent: check the vendor before starting a new job",
            status=exc.status,
        )

    def find(self, http: Http, op: Operation) -> list[ItemResult] | None:
        """The uncertain operation's effect, looked up; None when it did not happen."""
        if self.find_spec is None:
            return None
        ((i, _),) = op.items
        ctx = context(op)
        spec = self.find_spec
        query = {k: v for k, v in render(spec.query, ctx).items() if v not in (None, "", [])}
        resp = http.request("GET", render_path(spec.path, ctx), params=query or None)
        doc = orjson.loads(resp.content) if resp.content else {}
        matches = search(spec.records, doc) or []
        if not matches:
            return None
        return [ItemResult(i, self.status, _text(search(spec.id, matches[0])))]

    def preview(self, http: Http, op: Operation) -> list[PreviewItem]:
        """Reads only: the object as it stands, diffed against what the body would set."""
        spec = self.preview_spec
        if spec is None:
            return creates(http, op)
        ((i, _),) = op.items
        ctx = context(op)
        object_id = _text(render(spec.id, ctx)) if spec.id else None
        try:
            resp = http.request("GET", render_path(spec.current, ctx))
        except VendorError as exc:
            if exc.status == 404:
                return [would_reject(i, exc.code, exc.message, object_id)]
            raise
        if spec.fields is None:
            return creates(http, op)
        found = search(spec.object, orjson.loads(resp.content) if resp.content else {})
        obj = found if isinstance(found, dict) else {}
        proposed = search(spec.fields, prune(render(self.body, ctx))) or {}
        current = {k: obj.get(k) for k in proposed}
        for name in spec.merge:
            if isinstance(proposed.get(name), dict):
                held = obj.get(name)
                held = held if isinstance(held, dict) else {}
                current[name] = {k: held.get(k) for k in proposed[name]}
        return [diffed(i, object_id or _text(obj.get("id")) or "", current, proposed)]


def _vendor_label(tool: str) -> str:
    return tool.split(".", 1)[0].capitalize()


def context(op: Operation) -> dict[str, Any]:
    """What a write's templates see: the arguments and the operation."""
    ((_, args),) = op.items
    dumped = args.model_dump(mode="json") if hasattr(args, "model_dump") else args
    return {"args": dumped, "op": {"key": op.key, "index": op.index}}


def render_path(template: str, ctx: dict[str, Any]) -> str:
    """The path with every inserted value percent-encoded: an id cannot add a segment."""
    return str(render(template, _quoted(ctx)))


def _quoted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _quoted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_quoted(v) for v in value]
    return quote(value, safe="") if isinstance(value, str) else value


def prune(value: Any) -> Any:
    """A rendered body without the optional arguments not given: nulls, and objects left
    empty by them, are dropped (an empty list or string is a value and stays)."""
    if isinstance(value, dict):
        kept = {k: prune(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in kept.items() if v != {}}
    if isinstance(value, list):
        return [prune(v) for v in value]
    return value


def form_pairs(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """A body as form fields, Stripe's way: `metadata[k]=v`, `items[0][price]=p`."""
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return [(prefix, text)]
    out: list[tuple[str, str]] = []
    for k, v in items:
        out += form_pairs(v, f"{prefix}[{k}]" if prefix else str(k))
    return out


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
