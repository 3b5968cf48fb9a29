"""What vendor writes leave behind: objects, effects, idempotency records; and the dropped answer.

One ``WriteStore`` per sandbox state (``/_sandbox/reset`` replaces it). Vendors keep their own
dialect (headers, error shapes, what a key covers); the store only knows the mechanics:

- ``claim`` a key before executing: ``new`` (the caller executes, then ``settle``s or
  ``release``s), ``replay`` (a saved answer), ``mismatch`` (other endpoint or parameters),
  ``in_flight`` (the first request with this key has not answered yet);
- ``commit`` applies an object's new version and records the effect, so a test can count
  duplicates: two ``create`` effects for one logical operation are a duplicate; a resent
  update or upsert that changes nothing on an existing object is a ``noop`` effect
  (:func:`change_kind`), so "one create-or-change per object" stays countable;
- ``lookup`` finds objects by the keys a vendor lists with each ``commit`` (an index it keeps
  current: a changed object's old keys are forgotten), so a look-up by a natural key or a field
  value stays a dict access however many objects a pipeline writes (``select`` scans them all).

``DroppedResponse`` is the "commit, then lose the answer" fault: it starts the response (status
line and headers, with the real body's ``content-length``) and returns without sending the body,
so uvicorn closes the connection and the client sees a truncated answer (requests raises
``ChunkedEncodingError``, httpx ``RemoteProtocolError``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

EffectKind = Literal["create", "update", "delete", "noop"]
ClaimKind = Literal["new", "replay", "mismatch", "in_flight"]


@dataclass(frozen=True)
class Effect:
    """One write applied to a vendor object; ``fields`` are what the client sent."""

    kind: EffectKind
    object_id: str
    idempotency_key: str | None
    fields: dict[str, Any]
    t: float


@dataclass
class Saved:
    """An idempotency record: what the key was first used for, and the answer once known."""

    endpoint: str
    fingerprint: str
    created: float
    status: int | None = None  # None: the first request is still executing
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    kind: ClaimKind
    saved: Saved | None = None


def change_kind(current: dict[str, Any] | None, fields: dict[str, Any]) -> EffectKind:
    """``create`` (no object yet), ``noop`` (every field already holds its value) or
    ``update``: what a write of ``fields`` onto ``current`` amounts to."""
    if current is None:
        return "create"
    return "noop" if all(current.get(k) == v for k, v in fields.items()) else "update"


class WriteStore:
    """Per-vendor objects (by id), effects (in order) and idempotency records (by key)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.effects: dict[str, list[Effect]] = {}
        self.keys: dict[tuple[str, str], Saved] = {}
        self.created: dict[str, int] = {}  # vendor -> objects created so far
        self.natural: dict[tuple[str, str], str] = {}  # (vendor, natural key) -> object id
        self.index: dict[tuple[str, Hashable], dict[str, None]] = {}  # (vendor, key) -> ids
        self.keys_of: dict[tuple[str, str], frozenset[Hashable]] = {}  # object -> its keys
        self.position: dict[tuple[str, str], int] = {}  # object -> when first stored

    def claim(
        self, vendor: str, key: str, endpoint: str, fingerprint: str, ttl_s: float | None
    ) -> Claim:
        """Reserve ``key`` for this request, or say why not; an expired record is forgotten
        (``ttl_s`` None: kept for the sandbox's lifetime)."""
        now = time.time()
        with self.lock:
            saved = self.keys.get((vendor, key))
            if saved is not None and ttl_s is not None and now - saved.created >= ttl_s:
                saved = None
            if saved is None:
                self.keys[(vendor, key)] = Saved(endpoint, fingerprint, now)
                return Claim("new")
            if saved.endpoint != endpoint or saved.fingerprint != fingerprint:
                return Claim("mismatch", saved)
            return Claim("in_flight" if saved.status is None else "replay", saved)

    def settle(
        self, vendor: str, key: str, status: int, body: Any, headers: dict[str, str]
    ) -> None:
        with self.lock:
            saved = self.keys.get((vendor, key))
            if saved is not None:
                saved.status, saved.body, saved.headers = status, body, dict(headers)

    def release(self, vendor: str, key: str | None) -> None:
        """Forget a claim whose request never began executing (validation failed)."""
        if key is None:
            return
        with self.lock:
            saved = self.keys.get((vendor, key))
            if saved is not None and saved.status is None:
                del self.keys[(vendor, key)]

    def next_number(self, vendor: str) -> int:
        """1, 2, 3, … per vendor: the how-manieth object this one creates."""
        with self.lock:
            self.created[vendor] = self.created.get(vendor, 0) + 1
            return self.created[vendor]

    def get(self, vendor: str, object_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.objects.get((vendor, object_id))
        return dict(found) if found is not None else None

    def find(self, vendor: str, name: str, value: Any) -> list[dict[str, Any]]:
        """Every stored object of ``vendor`` whose field ``name`` equals ``value``."""
        with self.lock:
            return [
                dict(o)
                for (v, _), o in self.objects.items()
                if v == vendor and o.get(name) == value
            ]

    def by_natural(self, vendor: str, natural: str) -> dict[str, Any] | None:
        with self.lock:
            oid = self.natural.get((vendor, natural))
            found = self.objects.get((vendor, oid)) if oid is not None else None
        return dict(found) if found is not None else None

    def select(self, vendor: str, match: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Every stored object of ``vendor`` that ``match`` accepts (a natural-key lookup)."""
        with self.lock:
            return [dict(o) for (v, _), o in self.objects.items() if v == vendor and match(o)]

    def lookup(self, vendor: str, keys: Iterable[Hashable]) -> list[dict[str, Any]]:
        """Every stored object of ``vendor`` last committed with one of ``keys``, in the order
        objects were first stored (as :meth:`select` answers): a look-up without a scan."""
        with self.lock:
            ids = {oid for k in keys for oid in self.index.get((vendor, k), ())}
            ordered = sorted(ids, key=lambda oid: self.position[(vendor, oid)])
            return [dict(self.objects[(vendor, oid)]) for oid in ordered]

    def commit(
        self,
        vendor: str,
        obj: dict[str, Any],
        effect: Effect,
        natural: str | None = None,
        keys: Collection[Hashable] | None = None,
    ) -> None:
        """Apply ``obj``; ``natural``: a unique key it is found by (an email), so a look-up
        stays a dict access however many objects a benchmark writes; ``keys``: what
        :meth:`lookup` finds it by from now on (its earlier keys forgotten; None: unchanged)."""
        at = (vendor, effect.object_id)
        with self.lock:
            self.objects[at] = dict(obj)
            self.position.setdefault(at, len(self.position))
            if natural is not None:
                self.natural[(vendor, natural)] = effect.object_id
            if keys is not None:
                self._reindex(at, frozenset(keys))
            self.effects.setdefault(vendor, []).append(effect)

    def _reindex(self, at: tuple[str, str], keys: frozenset[Hashable]) -> None:
        """Point ``keys`` (and no others) at the object ``at``; the caller holds the lock."""
        vendor, oid = at
        before = self.keys_of.get(at, frozenset())
        for k in before - keys:
            holders = self.index[(vendor, k)]
            del holders[oid]
            if not holders:
                del self.index[(vendor, k)]
        for k in keys - before:
            self.index.setdefault((vendor, k), {})[oid] = None
        self.keys_of[at] = keys

    def effect_list(self, vendor: str) -> list[dict[str, Any]]:
        with self.lock:
            return [asdict(e) for e in self.effects.get(vendor, [])]


def effects_body(store: WriteStore, vendor: str) -> dict[str, Any]:
    """The per-vendor ``/_sandbox/effects`` answer: every effect, and counts per object
    (``noop`` apart, so ``create + update == 1`` means "changed exactly once")."""
    effects = store.effect_list(vendor)
    per_object: dict[str, dict[str, int]] = {}
    for e in effects:
        counts = per_object.setdefault(e["object_id"], {"create": 0, "update": 0, "noop": 0})
        counts[e["kind"]] = counts.get(e["kind"], 0) + 1  # "delete" only where it happened
    return {"effects": effects, "count": len(effects), "per_object": per_object}


async def hold(latency_ms: int) -> None:
    """``write_latency_ms``: a write waits between claiming its key and committing."""
    if latency_ms:
        await asyncio.sleep(latency_ms / 1000)


def reply(status: int, doc: Any, headers: dict[str, str]) -> Response:
    """A write's answer: JSON, or an empty 204."""
    if status == 204:
        return Response(status_code=204, headers=headers)
    return JSONResponse(doc, status_code=status, headers=headers)


def delivered(response: Response, committed: bool, drop: Callable[[], bool]) -> Response:
    """The answer, or, for a committed write the ``drop_after_commit`` fault picks, its loss."""
    return DroppedResponse(response) if committed and drop() else response


def _promising_a_body(inner: Response) -> list[tuple[bytes, bytes]]:
    """``inner``'s headers; an empty answer (a bodiless 201) is made to promise one byte, so its
    loss shows as a truncated answer rather than a complete empty one."""
    if inner.body:
        return list(inner.raw_headers)
    kept = [(k, v) for k, v in inner.raw_headers if k.lower() != b"content-length"]
    return [*kept, (b"content-length", b"1")]


class DroppedResponse(Response):
    """Starts ``inner``'s answer and never finishes it: the write was committed, the answer
    is lost on the wire (uvicorn closes the connection on an incomplete response)."""

    def __init__(self, inner: Response) -> None:
        # a 204 cannot promise a body (HTTP allows it none), so its loss starts as a 200 that
        # promises one byte: the client never reads a status it could act on either way
        status = 200 if inner.status_code in (204, 304) else inner.status_code
        super().__init__(status_code=status)
        self.raw_headers = _promising_a_body(inner)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
