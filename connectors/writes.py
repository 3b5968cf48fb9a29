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


Send = Callable[[Any, Operation], list[ItemResult]]
Find = Callable[[Any, Operation], list[ItemResult] | None]


@dataclass(frozen=True)
class Write:
    """What a write tool adds to `connectors.base.Tool`.

    `send(http, op)` performs one operation and returns one result per item (a vendor's
    refusal of the whole request may simply raise `VendorError`: every item is then
    rejected). `find(http, op)` looks for an uncertain operation's effect first: its results
    when found, None when the write did not happen (then it is sent). `plan` must be a pure
    function of the arguments: every step of the job re-derives the same operations."""

    mechanism: Mechanism
    plan: Callable[[Any], list[Operation]]
    send: Send
    find: Find | None = None
    # the vendor's own limits on this kind of write, besides the account's request budget
    paces: tuple[Pace, ...] = ()

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
