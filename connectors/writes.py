"""The write half of the connector contract: operations, their outcomes, and how a vendor
makes a resend safe.

A write tool turns its arguments into a list of operations (`Write.plan`): one per record,
or one per vendor batch. Every attempt of an operation carries the same `Operation.key`,
derived from the job and the operation's place in it, so a vendor key, an upsert's natural
key or a marker always names the same logical write. The runner (`app.work.writeloop`)
records each operation's outcome with the job's checkpoint; an operation it finds sent but
without an outcome is *uncertain* and is settled through the tool's `Mechanism` before
anything is resent (`reference/write-dialects.md` lists each vendor's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from connectors.errors import VendorError

Status = Literal["created", "updated", "unchanged", "deleted", "rejected"]
ERROR_TEXT_MAX = 300  # a vendor's reason, as a result record carries it


class Mechanism(StrEnum):
    """What makes resending an uncertain operation safe."""

    KEY = "idempotency_key"  # the vendor replays the first answer for the same key
    UPSERT = "upsert"  # a natural key (an email, an External ID) finds the same object
    ABSOLUTE = "absolute"  # an update to absolute values, a delete: repeating changes nothing
    MARKER = "marker"  # the operation's key rides on the object; `find` looks for it first
    NONE = "none"  # nothing: an uncertain operation stops the job and asks


@dataclass(frozen=True)
class Operation:
    """One vendor request's worth of a write job: `items` are (record index, payload)."""

    index: int
    items: tuple[tuple[int, Any], ...]
    key: str = ""  # set by the runner: "<job id>.<index>", the same on every attempt
    # set by the runner: the vendor job an earlier step's `send` started (`Pending.ref`)
    pending: dict[str, Any] | None = None

    @property
    def payloads(self) -> list[Any]:
        return [p for _, p in self.items]


@dataclass(frozen=True)
class ItemResult:
    """One record's outcome, as its result record reads: `{"index", "status", "id", "error"?}`."""

    index: int
    status: Status
    id: str | None = None
    error: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status, "id": self.id}
        if self.error is not None:
            out["error"] = self.error
        return out


def rejected(index: int, code: str, message: str, **extra: Any) -> ItemResult:
    """A record the vendor refused, with its reason (trimmed: a result stays small)."""
    error = {"code": str(code)[:64], "message": str(message)[:ERROR_TEXT_MAX], **extra}
    return ItemResult(index, "rejected", None, error)


def rejected_all(op: Operation, exc: VendorError) -> list[ItemResult]:
    """The vendor refused the whole request: every record of the operation, for its reason."""
    extra = {"status": exc.status} if exc.status else {}
    return [rejected(i, exc.code, exc.message, **extra) for i, _ in op.items]


def single(records: Sequence[Any]) -> list[Operation]:
    """One operation per record (the plan of a tool that writes one object per request)."""
    return [Operation(i, ((i, r),)) for i, r in enumerate(records)]


def batches(records: Sequence[Any], size: int) -> list[Operation]:
    """Operations of up to `size` records each, in order (a vendor's batch endpoint)."""
    return [
        Operation(n, tuple((i, records[i]) for i in range(start, min(start + size, len(records)))))
        for n, start in enumerate(range(0, len(records), size))
    ]


def one(args: Any) -> list[Operation]:
    """The plan of a tool whose arguments are one record: one operation."""
    return [Operation(0, ((0, args),))]


def marker(key: str) -> str:
    """The hidden text a marker vendor's object carries (a GitHub body, say)."""
    return f"<!-- toolqueue:op={key} -->"


class Pending(Exception):  # noqa: N818 - a signal, not a failure
    """Raised by `send`: the vendor accepted the operation and works on it asynchronously
    (a Bulk API ingest job). The runner saves `ref` with the job's cursor and calls `send`
    again after `wait_s` with `op.pending = ref`, without a worker waiting meanwhile: `send`
    then polls the same vendor job (raising `Pending` again while it runs)."""

    def __init__(self, ref: dict[str, Any], wait_s: float, note: str = "") -> None:
        super().__init__(note or "the vendor is still working")
        self.ref, self.wait_s, self.note = ref, wait_s, note


@dataclass(frozen=True)
class Pace:
    """A vendor limit on one kind of write (GitHub: content-creating requests per minute and
    per hour; Slack: one message per second per channel), paced ahead like the account's
    budget so the vendor never has to refuse (GitHub may block an app that keeps hitting its
    secondary limits). `key` names the window an operation falls in (a Slack channel)."""

    name: str
    limit: int
    window_s: float
    key: Callable[[Operation], str] = lambda op: ""


Action = Literal["create", "update", "unchanged", "delete", "reject"]


@dataclass(frozen=True)
class PreviewItem:
    """What an operation would do to one record, found without writing (a dry run, and the
    preview a person approves). `current` is the vendor's present value of each field the
    write sets (an update, an upsert that finds its record, a delete), `proposed` the value
    the write would set; `reject` says the vendor would refuse it (`error`: an id that does
    not exist, say). A record's preview reads as
    `{"index", "action", "id", "current"?, "proposed"?, "changed"?, "error"?}`."""

    index: int
    action: Action
    id: str | None = None  # the vendor object it would change (None: one to be created)
    current: dict[str, Any] | None = None
    proposed: dict[str, Any] | None = None
    error: dict[str, Any] | None = None

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "action": self.action, "id": self.id}
        if self.current is not None:
            out["current"] = self.current
        if self.proposed is not None:
            out["proposed"] = self.proposed
        if self.current is not None and self.proposed is not None:
            out["changed"] = sorted(k for k, v in self.proposed.items() if self.current.get(k) != v)
        if self.error is not None:
            out["error"] = self.error
        return out


def diffed(
    index: int, object_id: str, current: dict[str, Any], proposed: dict[str, Any]
) -> PreviewItem:
    """An update's preview: `current` cut to the fields the write sets; `unchanged` when the
    vendor already holds every proposed value."""
    now = {k: current.get(k) for k in proposed}
    action: Action = "unchanged" if now == proposed else "update"
    return PreviewItem(index, action, object_id, now, dict(proposed))


def would_reject(index: int, code: str, message: str, object_id: str | None = None) -> PreviewItem:
    error = {"code": str(code)[:64], "message": str(message)[:ERROR_TEXT_MAX]}
    return PreviewItem(index, "reject", object_id, error=error)


def creates(http: Any, op: Operation) -> list[PreviewItem]:
    """The preview of a tool that only adds (a create, a comment, a message): each record
    would be created as given; no vendor request is needed to say so."""
    return [PreviewItem(i, "create", None, proposed=_plain(p)) for i, p in op.items]


def _plain(payload: Any) -> dict[str, Any]:
    if hasattr(payload, "model_dump"):
        return dict(payload.model_dump(mode="json", exclude_none=True))
    return dict(payload) if isinstance(payload, dict) else {"value": payload}


Send = Callable[[Any, Operation], list[ItemResult]]
Find = Callable[[Any, Operation], list[ItemResult] | None]
Preview = Callable[[Any, Operation], list[PreviewItem]]


@dataclass(frozen=True)
class Write:
    """What a write tool adds to `connectors.base.Tool`.

    `send(http, op)` performs one operation and returns one result per item (a vendor's
    refusal of the whole request may simply raise `VendorError`: every item is then
    rejected). `find(http, op)` looks for an uncertain operation's effect first: its results
    when found, None when the write did not happen (then it is sent). `plan` must be a pure
    function of the arguments: every step of the job re-derives the same operations.

    `preview(http, op)` says what `send` would do, one `PreviewItem` per item, with reads
    only (GET, or a vendor's read-only search/batch-read POST): never a write. The default,
    `creates`, is for tools that only add."""

    mechanism: Mechanism
    plan: Callable[[Any], list[Operation]]
    send: Send
    find: Find | None = None
    # the vendor's own limits on this kind of write, besides the account's request budget
    paces: tuple[Pace, ...] = ()
    preview: Preview = creates

    def __post_init__(self) -> None:
        if self.mechanism is Mechanism.MARKER and self.find is None:
            raise ValueError("a marker mechanism needs `find`")


@dataclass(frozen=True)
class Route:
    """How a unified write runs on one vendor: that vendor's write tool, and its arguments
    made from the unified ones. Resolved when the job is created (the account names the
    vendor), so a job always runs one vendor tool with that tool's mechanism."""

    tool: str
    args: Callable[[Any], dict[str, Any]]
