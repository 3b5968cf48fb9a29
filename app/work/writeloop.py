"""A write job's step: its operations in order, each outcome committed with the checkpoint.

Per operation `k` (`connectors.writes`), two fenced writes: `cursor = {"op": k, "sent": true}`
before the request, then the operation's result records, the summary counts and
`{"op": k + 1, "sent": false}` in one atomic write. So a step that finds `sent` set knows the
worker died (or the answer was lost) between the two: the operation is *uncertain*, and is
settled by the tool's mechanism before anything is resent. A worker killed at any instant
therefore never repeats an effect and never loses an outcome:

- before the mark: nothing was sent; the operation runs as new;
- between the mark and the record: reconciled (the same key, the upsert, the marker looked
  up first); a tool with no mechanism stops with `uncertain_write` instead of resending;
- after the record: the operation is done; the next step starts at `k + 1`.

Refusals that prove nothing was applied (a 429, the account's own budget, a 401, a
connection never made) clear the mark before the step hands over, so they never make an
operation uncertain.

An operation the vendor runs asynchronously (a Salesforce Bulk API ingest job) raises
`connectors.writes.Pending` from `send`: its vendor job's ref is saved in the cursor
(`{"op": k, "sent": true, "vendor": ref, "resent": bool}`) and the job waits in `waiting_vendor`
(`app.work.vendorwait`, no worker sleeping); the next step calls `send` again with
`op.pending = ref`, which polls that same vendor job: it is not uncertain, only unfinished.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

from app.kernel.states import JobState
from app.store import spool
from app.store.budget import Budget
from app.work import approval, vendorwait
from app.work.context import StepContext
from app.work.pages import Outcome
from app.work.progress import packer_for
from connectors.base import Page, RatePolicy, Tool
from connectors.errors import (
    AuthRejected,
    ConnectorError,
    RateLimited,
    Transient,
    Unauthorized,
    VendorError,
)
from connectors.http import VendorHttp
from connectors.writes import (
    ItemResult,
    Mechanism,
    Operation,
    Pending,
    PreviewItem,
    rejected_all,
)

COUNTS = ("created", "updated", "unchanged", "deleted", "rejected")
PREVIEW_COUNTS = ("create", "update", "unchanged", "delete", "reject")


class UncertainWrite(ConnectorError):
    """An operation's outcome is unknown and its tool has no safe way to find out."""


@dataclass
class Summary:
    """A write job's summary (the job record's `writes`): what happened to its records."""

    ops: int
    records: int
    done_ops: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    reconciled: int = 0  # uncertain operations settled without a blind resend

    @classmethod
    def of(
        cls, saved: dict[str, Any] | None, ops: list[Operation], names: tuple[str, ...] = COUNTS
    ) -> Summary:
        records = sum(len(op.items) for op in ops)
        if not saved:
            return cls(len(ops), records, counts=dict.fromkeys(names, 0))
        counts = {k: int(saved.get(k, 0)) for k in names}
        done, reconciled = int(saved["done_ops"]), int(saved.get("reconciled", 0))
        return cls(len(ops), records, done, counts, reconciled)

    def fields(self) -> dict[str, Any]:
        out = {"ops": self.ops, "done_ops": self.done_ops, "records": self.records, **self.counts}
        if "rejected" in self.counts:  # a write's, not a preview's
            out["reconciled"] = self.reconciled
        return out


_PLANS: OrderedDict[str, list[Operation]] = OrderedDict()
PLANS_KEPT = 8  # a 10,000-record plan holds ~4.7 MB (the 1 MiB request cap bounds a job)


def planned(job_id: str, tool: Tool, args: dict[str, Any]) -> list[Operation]:
    """The job's operations, each with its key. A job's arguments never change, and a job
    paced by its budget runs many short steps: validating and planning 10,000 records again
    for each (~80 ms) would be most of the step, so the last few jobs' plans are kept."""
    ops = _PLANS.get(job_id)
    if ops is None:
        assert tool.write is not None
        plan = tool.write.plan(tool.args.model_validate(args))
        ops = [replace(op, key=f"{job_id}.{op.index}") for op in plan]
        _PLANS[job_id] = ops
        if len(_PLANS) > PLANS_KEPT:
            _PLANS.popitem(last=False)
    _PLANS.move_to_end(job_id)
    return ops


class WriteLoop:
    """Up to `pages_per_step` operations (or `step_budget_s`) of one write step."""

    def __init__(
        self, step: StepContext, tool: Tool, http: VendorHttp, args: dict[str, Any]
    ) -> None:
        assert tool.write is not None
        self.step, self.tool, self.w, self.http = step, tool, tool.write, http
        self.job = step.job
        self.ops = planned(step.id, tool, args)
        cursor = self.job["cursor"] or {"op": 0, "sent": False}
        self.op, self.sent = int(cursor.get("op", 0)), bool(cursor.get("sent"))
        self.pending: dict[str, Any] | None = cursor.get("vendor")  # a vendor job under way
        self.resent = bool(cursor.get("resent"))  # that job is an uncertain operation's resend
        # a dry run, or a job policy holds for approval before it is approved: reads only
        self.previewing = bool(self.job.get("previewing"))
        self.field = "preview" if self.previewing else "writes"
        names = PREVIEW_COUNTS if self.previewing else COUNTS
        saved = self.job.get("preview") if self.previewing else self.job.get("writes")
        self.summary = Summary.of(saved, self.ops, names)
        self.packer = packer_for(self.job, step.settings.block_limit)

    def run(self) -> Outcome:
        pages, seconds = self.step.limits()
        deadline = time.monotonic() + seconds
        for _ in range(pages):
            if self.op >= len(self.ops):
                self.end()
                return Outcome.ENDED
            if time.monotonic() > deadline:
                break
            if not self.next_op():
                return Outcome.ENDED
        return Outcome.CONTINUE

    def next_op(self) -> bool:
        """Settle or send one operation and commit its outcome; False if the step lost the
        job (cancelled, or another worker took over)."""
        op = self.ops[self.op]
        if self.previewing:
            return self.record(op, self.w.preview(self.http, op), reconciled=False)
        if self.pending is not None:  # sent, and the vendor said it is working on it
            op, uncertain, results = replace(op, pending=self.pending), self.resent, None
        else:
            uncertain = self.sent
            results = self.settle(op) if uncertain else None
        try:
            if results is None:
                if not self.sent and not self.mark(True):
                    return False
                results = self.send(op)
        except Pending as still:
            self.wait_vendor(still, resent=uncertain)
            return False
        return self.record(op, results, reconciled=uncertain)

    def wait_vendor(self, still: Pending, *, resent: bool) -> None:
        """Save the vendor job's ref with the cursor, then look again later without a worker."""
        cursor = {"op": self.op, "sent": True, "vendor": still.ref, "resent": resent}
        if self.step.write({"cursor": cursor}):
            page = Page([], None, wait_s=still.wait_s, note=still.note)
            vendorwait.wait(self.step, page, still.wait_s)

    def settle(self, op: Operation) -> list[ItemResult] | None:
        """An uncertain operation: its results if the vendor shows it happened, None when
        resending is safe (the same key, an upsert, or a marker not found)."""
        self.step.tally.add("writes_uncertain", {"mechanism": self.w.mechanism.value})
        if self.w.mechanism is Mechanism.NONE:
            first, last = op.items[0][0], op.items[-1][0]
            span = f"record {first}" if first == last else f"records {first}-{last}"
            raise UncertainWrite(
                "uncertain_write",
                f"operation {op.index} ({span}) was sent but its outcome is unknown (the worker "
                f"stopped or the answer was lost), and {self.tool.name} has no safe way to "
                f"resend it: check the vendor, then start a job for the records from {first} on",
            )
        return self.w.find(self.http, op) if self.w.find else None

    def send(self, op: Operation) -> list[ItemResult]:
        """The request; a refusal of the whole request rejects its records, a refusal that
        proves nothing was applied clears the mark first."""
        try:
            self.pace(op)
            return self.w.send(self.http, op)
        except Unauthorized:
            raise
        except VendorError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                return rejected_all(op, exc)
            raise
        except (RateLimited, AuthRejected, Transient) as exc:
            certain = not isinstance(exc, Transient) or exc.unsent
            if certain and op.pending is None:  # a refused poll keeps the vendor job's ref
                self.mark(False)
            raise

    def pace(self, op: Operation) -> None:
        """The vendor's limits on this kind of write (`Write.paces`), each a rolling budget of
        the account's own (`app.store.budget`): spent, the step waits instead of sending."""
        for p in self.w.paces:
            name = f"{self.job['account_id']}:{p.name}:{p.key(op)}"
            wait = Budget(name, RatePolicy(p.limit, p.window_s)).take()
            if wait > 0:
                raise RateLimited(wait, policy=p.name, budget=True)

    def mark(self, sent: bool) -> bool:
        written = self.step.write({"cursor": {"op": self.op, "sent": sent}})
        if written:
            self.sent = sent
        return bool(written)

    def record(
        self, op: Operation, results: list[ItemResult] | list[PreviewItem], *, reconciled: bool
    ) -> bool:
        """The operation's result records (or preview), the summary, the next cursor and the
        audit entry of a write, in one write."""
        if sorted(r.index for r in results) != [i for i, _ in op.items]:
            raise RuntimeError(f"{self.tool.name}: operation {op.index} answered other records")
        texts = spool.encode_records([r.record() for r in results], None)
        placed, n = self.packer.place_many(texts)
        if n < len(texts):
            raise RuntimeError("write results over the block limit")  # enqueue bounds records
        tally = self.summary
        for r in results:
            tally.counts[r.action if isinstance(r, PreviewItem) else r.status] += 1
        tally.done_ops += 1
        tally.reconciled += reconciled
        fields: dict[str, Any] = {
            "cursor": {"op": self.op + 1, "sent": False},
            "pages": self.job["pages"] + 1,
            "records": self.job["records"] + n,
            "bytes": self.job["bytes"] + sum(map(len, texts)),
            "block": self.packer.block,
            "block_bytes": self.packer.block_bytes,
            "block_records": self.packer.block_records,
            "blocks": self.packer.block + 1,
            self.field: tally.fields(),
        }
        runs = {block: [spool.run(records)] for block, records in placed.items()}
        if not self.step.write(fields, spool=runs, audit=self.audit(op, results, reconciled)):
            return False
        self.job.update(fields)  # type: ignore[typeddict-item]
        for r in results:
            if isinstance(r, ItemResult):
                self.step.tally.add("write_outcomes", {"outcome": r.status})
        self.op, self.sent, self.pending = self.op + 1, False, None
        return True

    def audit(
        self, op: Operation, results: list[ItemResult] | list[PreviewItem], reconciled: bool
    ) -> tuple[str, dict[str, Any]] | None:
        """A write operation's entry in the tenant's audit log (a preview writes nothing)."""
        if self.previewing:
            return None
        job = self.job
        outcome: dict[str, int] = {}
        for r in results:
            status = r.status if isinstance(r, ItemResult) else r.action
            outcome[status] = outcome.get(status, 0) + 1
        entry = {
            "kind": "write",
            "key_id": job.get("key_id") or "tenant",
            "job_id": self.step.id,
            "tool": job["tool"],
            "account_id": job["account_id"],
            "args_digest": job.get("args_digest"),
            "operation": op.index,
            "records": len(op.items),
            "outcome": outcome,
            "ids": [r.id for r in results if r.id][:20],
            "reconciled": reconciled,
        }
        approval = job.get("approval")
        if approval:
            entry["approved_by"] = approval.get("decided_by")
            entry["preview_digest"] = approval.get("preview_digest")
        return job["tenant_id"], entry

    def end(self) -> None:
        """Every operation has its outcome: succeeded, failed (every record rejected) or
        completed_with_errors (some were); the rejected records are in the result."""
        t = self.summary
        if self.previewing:
            if self.job.get("dry_run"):
                reason = f"dry run: {t.records} records previewed; nothing was written"
                self.step.finish(JobState.SUCCEEDED, reason=reason)
            else:
                approval.rest(self.step, t.counts)
            return
        bad = t.counts["rejected"]
        if not bad:
            self.step.finish(JobState.SUCCEEDED, reason=f"all {t.records} records written")
            return
        message = (
            f"{bad} of {t.records} records rejected by the vendor; read them in the result "
            '(status "rejected", with the reason)'
        )
        if bad == t.records:
            self.step.finish(JobState.FAILED, {"code": "all_rejected", "message": message})
        else:
            self.step.finish(
                JobState.COMPLETED_WITH_ERRORS, {"code": "some_rejected", "message": message}
            )
