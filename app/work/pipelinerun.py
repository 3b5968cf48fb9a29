"""A pipeline's coordinator: it wires the stage jobs, block by block.

It is pending work (`keys.pipeline_work`, `app.dispatch`): each run looks at every stage,
makes every move that is due, and hands over to its next run, at once when a stage job woke
it meanwhile (`dispatch.poke`, after each of their steps) and otherwise after
`pipeline_guard_s`. A run under a lease; a run killed anywhere is run again by the sweep,
and each move is atomic and guarded (`app.store.pipelines.move`), so a move made before the
crash is not made twice.

Per job stage (the source, each enrich, the sink) one job runs at a time, on the stage's
blocks in order; the stages run side by side, so the sink writes block 0 while the source
reads block 5. A stage job is started with an idempotency slot naming the pipeline, stage
and block: starting it again after a crash finds the same job.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from pydantic import ValidationError

from app import dispatch
from app.kernel import keys
from app.kernel.errors import Forbidden, InvalidInput, NotFound, StoreUnavailable
from app.kernel.leases import Lease
from app.kernel.redis import STORE_ERRORS
from app.kernel.registry import registry
from app.kernel.settings import get_settings
from app.kernel.states import TERMINAL, JobState
from app.kernel.timefmt import now_iso
from app.store import apikeys, audit, jobstore, spool
from app.store import pipelines as store
from app.store.apikeys import Principal
from app.store.jobrecord import JobRecord
from app.store.pipelines import ENDED, Input, Move, PipelineState, cursor_field
from app.work import deliveries, launch, transforms
from app.work.pipelineplan import Plan, parse, plan_of
from app.work.pipelineview import brief as view

log = logging.getLogger("toolqueue.pipelines")
# the store unreachable, or a stage job's create it did not answer (launch.create)
OUTAGE: tuple[type[Exception], ...] = (*STORE_ERRORS, StoreUnavailable)

TICK_ERRORS_MAX = 5  # consecutive failed runs (a bug, not Redis) before the pipeline fails


class PipelineFailed(Exception):
    """The pipeline cannot go on: a stage job failed, its key was revoked, its data expired."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def tick(pid: str, attempt: int) -> None:
    """One run of the coordinator, if `attempt` is still the pending one."""
    member = keys.pipeline_work(pid)
    if dispatch.pending(member) != attempt:
        return
    lease = Lease(member, get_settings().step_lease_s)
    if not lease.acquire():
        return  # another copy runs; the poke flag makes it run once more
    with lease:
        if dispatch.pending(member) != attempt:
            return
        dispatch.unpoke(member)
        ended, idle_until = _run(pid)
        lease.release()  # before the next run is sent, so it never finds this one's lease
    if ended:
        dispatch.settle(member, attempt)
        dispatch.unpoke(member)
        return
    again = get_settings().pipeline_guard_s
    if idle_until is not None:  # only a person's approval is awaited: rest until it expires
        again = max(idle_until - time.time(), again)
    dispatch.advance(member, attempt, dispatch.plan(0.0 if dispatch.poked(member) else again))


def _run(pid: str) -> tuple[bool, float | None]:
    """Whether the pipeline has ended (its webhook is then on its way), and until when it
    rests when nothing but a person's approval is awaited."""
    p = store.load(pid)
    if p is None:
        return True, None
    if p["status"] in ENDED:
        announce(pid)
        return True, None
    coordinator: Coordinator | None = None
    try:
        coordinator = Coordinator(pid, p)
        coordinator.run()
        if p.get("tick_errors"):
            store.set_state(pid, {"tick_errors": None})  # consecutive failures only
    except PipelineFailed as exc:
        fail(pid, exc.code, exc.message)
    except store.InputExpired as exc:
        fail(pid, "input_expired", str(exc))
    except OUTAGE:  # not this pipeline's failure: the task requeues the run
        raise
    except Exception:
        log.exception("pipeline %s: coordinator run failed", pid)
        errors = int(p.get("tick_errors") or 0) + 1
        store.set_state(pid, {"tick_errors": errors})
        if errors >= TICK_ERRORS_MAX:
            fail(pid, "internal_error", "the coordinator failed repeatedly; see the server log")
    p = store.load(pid)
    if p is not None and p["status"] in ENDED:
        announce(pid)
        return True, None
    return False, coordinator.idle_until if coordinator else None


def fail(pid: str, code: str, message: str) -> None:
    """End the pipeline as failed and stop its stage jobs."""
    now = time.time()
    fields = {"error": {"code": code, "message": message[:300]}, "finished_at": now}
    if store.set_state(pid, fields, status=PipelineState.FAILED, reason=message[:300]):
        stop_jobs(pid, "the pipeline failed")


def expire(pid: str, tenant_id: str, approval: dict[str, Any]) -> None:
    """Nobody answered the approval in time: the pipeline is cancelled, nothing written."""
    message = "nobody approved the pipeline's writes in time (policy `approval_timeout_s`)"
    fields = {
        "approval": {**approval, "state": "expired"},
        "error": {"code": "approval_expired", "message": message},
        "finished_at": time.time(),
    }
    if store.set_state(pid, fields, status=PipelineState.CANCELLED, reason=message):
        audit.append(
            tenant_id,
            "pipeline_approval_expired",
            key_id=approval.get("requested_by") or "tenant",
            pipeline_id=pid,
            binding=approval.get("binding"),
        )
        stop_jobs(pid, "its pipeline's approval expired")


def stop_jobs(pid: str, why: str) -> None:
    """Cancel the pipeline's stage jobs still running (the source, each stage's current)."""
    p = store.load(pid)
    if p is None:
        return
    ids = [p.get("source_job") or ""]
    ids += [v.split("|", 1)[1] for k, v in p.items() if k.startswith("cur:") and "|" in str(v)]
    for job_id in filter(None, ids):
        cancel_job(job_id, why)


def cancel_job(job_id: str, why: str) -> None:
    job = jobstore.load(job_id)
    if job is not None and job["status"] not in TERMINAL:
        jobstore.write(
            job_id,
            {"finished_at": time.time(), "retry_at": None},
            status=JobState.CANCELLED,
            reason=why,
        )


def announce(pid: str) -> None:
    """The pipeline's ending webhook, once: the event's id is the pipeline's, so a second
    announcement (a run after a crash) starts nothing."""
    p = store.load(pid)
    if p is None or not p.get("callback_url"):
        return
    rounds = int(p.get("round") or 0)  # a retry's ending is an event of its own
    event_id = f"evt_{pid}" if not rounds else f"evt_{pid}.{rounds}"
    body = view(pid, p)
    deliveries.emit_pipeline(pid, event_id, p["tenant_id"], f"pipeline.{p['status']}", body)


class Coordinator:
    """One run over one pipeline's stages."""

    def __init__(self, pid: str, p: dict[str, Any]) -> None:
        self.pid, self.p = pid, p
        self.plan: Plan = plan_of(parse(p["definition"]))
        self.tenant = p["tenant_id"]
        self.idle_until: float | None = None  # set when only an approval is awaited

    @property
    def who(self) -> Principal:
        who = apikeys.by_id(self.tenant, self.p["key_id"])
        if who is None:
            raise PipelineFailed("key_revoked", "the API key that started the pipeline was revoked")
        return who

    def run(self) -> None:
        store.touch(self.pid, len(self.plan.kinds))
        if self.p["status"] == PipelineState.QUEUED:
            self.start()
        if self.p.get("src_done") != "1":
            self.source()
        for stage in range(1, len(self.plan.kinds)):
            if self.plan.is_job(stage):
                self.job_stage(stage)
            else:
                self.pure_queue(stage)
        self.end_or_mark()

    # ---- the source ------------------------------------------------------------------

    def start(self) -> None:
        """The source job, unless this is a re-run (its blocks are seeded already)."""
        fields: dict[str, Any] = {"started_at": time.time()}
        if self.p.get("rerun_of"):
            fields["src_done"] = "1"
        elif not self.p.get("source_job"):
            src = self.plan.spec.source
            call = launch.Call(
                tool=src.tool,
                account_id=src.account_id,
                args=src.args,
                fields=src.fields,
                max_bytes=get_settings().spool_max_bytes,
                delivery="blocks",
                max_pages=None,
                cursor={"page": None, "skip": 0},
            )
            job = self._launch(0, "source", call)
            fields["source_job"] = job
        if not store.set_state(self.pid, fields, status=PipelineState.RUNNING, reason="started"):
            if fields.get("source_job"):
                self.orphaned(fields["source_job"])
            return
        self.p.update({k: str(v) for k, v in fields.items()}, status=PipelineState.RUNNING)

    def source(self) -> None:
        job_id = self.p.get("source_job") or ""
        job = jobstore.load(job_id)
        if job is None:
            raise PipelineFailed("source_expired", f"the source job {job_id} is gone (expired)")
        status = job["status"]
        if status in TERMINAL and status != JobState.SUCCEEDED:
            error = (job.get("error") or {}).get("message", status)
            raise PipelineFailed("source_failed", f"the source job {job_id} {status}: {error}")
        if status == JobState.SUCCEEDED:
            complete = job["blocks"] if job["records"] else 0
        else:
            complete = job["block"]  # the blocks before the one being filled are whole
        passed, base = int(self.p.get("src") or 0), int(self.p.get("src_base") or 0)
        for block in range(passed, complete):
            count, runs = spool.read_block(job_id, block)
            records = orjson.loads(b"[" + ",".join(runs).encode() + b"]")
            m = Move(guard="src", expect=str(block), new=str(block + 1))
            m.count(0, "in", len(records))
            m.count(0, "out", len(records))
            self.forward(m, 0, str(base + block), records)
            if not store.move(self.pid, m):
                return
        if status != JobState.SUCCEEDED:
            return
        if job["truncated"] and job.get("continuation"):
            self.next_source(job.get("continuation", ""), base + complete)
            return
        store.set_state(self.pid, {"src_done": "1", "t:0:end": time.time()})
        self.p["src_done"] = "1"

    def next_source(self, token: str, base: int) -> None:
        """The source job stopped at the block limit: its continuation reads on, as the
        source's next part (its blocks numbered after the ones before)."""
        cont = spool.load_continuation(token)
        if cont is None:
            raise PipelineFailed("source_expired", "the source's continuation expired")
        call = launch.Call(
            tool=cont["tool"], account_id=cont["account_id"], args=cont["args"],
            fields=cont["fields"], max_bytes=cont["max_bytes"], delivery=cont["delivery"],
            max_pages=cont.get("max_pages"), cursor=cont["cursor"],
        )  # fmt: skip
        part = int(self.p.get("src_part") or 0) + 1
        job = self._launch(0, f"part{part}", call)
        fields = {"source_job": job, "src": "0", "src_base": base, "src_part": part}
        store.set_state(self.pid, fields)
        self.p.update({k: str(v) for k, v in fields.items()})

    # ---- moving blocks -----------------------------------------------------------------

    def forward(self, m: Move, after: int, block: str, records: list[dict[str, Any]]) -> None:
        """Records leaving stage `after` go through the pure stages that follow, into the next
        job stage's queue (split into parts of at most `pipeline_job_records`)."""
        seg = transforms.run(self.plan.segment(after + 1), records)
        for index, tally in seg.tallies.items():
            m.count(index, "in", tally.n_in)
            m.count(index, "out", tally.n_out)
            m.count(index, "rejected", tally.rejected)
            m.count(index, "dropped", tally.dropped)
        for index, record, code, message in seg.rejected:
            m.rejected.append(self.rejection(index, block, record, code, message))
        for index, entering in seg.entering.items():
            m.inputs.append(Input(index, block, entering, queued=False))
        nxt = self.plan.next_job(after)
        size = get_settings().pipeline_job_records
        chunks = [seg.records[i : i + size] for i in range(0, len(seg.records), size)]
        for n, chunk in enumerate(chunks):
            part = block if len(chunks) == 1 else f"{block}.{n}"
            m.inputs.append(Input(nxt, part, chunk, queued=True))
            m.count(nxt, "in", len(chunk))

    def rejection(
        self, stage: int, block: str, record: Any, code: str, message: str
    ) -> dict[str, Any]:
        return {
            "stage": stage,
            "kind": self.plan.kinds[stage],
            "block": block,
            "record": record,
            "error": {"code": code, "message": message[:300]},
            "at": now_iso(),
        }

    def pure_queue(self, stage: int) -> None:
        """Blocks a retry or a re-run put before a pure stage: through it and on."""
        while (head := store.queue_head(self.pid, stage)) is not None:
            records = store.read_input(self.pid, stage, head)
            m = Move(head=head, head_stage=stage)
            self.forward(m, stage - 1, head, records)
            if not store.move(self.pid, m):
                return

    # ---- job stages --------------------------------------------------------------------

    def job_stage(self, stage: int) -> None:
        if stage == self.plan.sink and not self.may_write():
            return
        cur = self.p.get(cursor_field(stage)) or ""
        if cur and not self.collect(stage, cur):
            return  # its job still runs
        head = store.queue_head(self.pid, stage)
        if head is not None:
            self.begin(stage, head)

    def collect(self, stage: int, cur: str) -> bool:
        """The stage's job has ended: its block moves on. False while it runs."""
        block, job_id = cur.split("|", 1)
        job = jobstore.load(job_id)
        if job is None:
            raise PipelineFailed("stage_expired", f"stage {stage}'s job {job_id} is gone (expired)")
        if job["status"] not in TERMINAL:
            return False
        m = Move(guard=cursor_field(stage), expect=cur, new="")
        if self.plan.kinds[stage] == "sink":
            self.collect_sink(m, stage, block, job_id, job)
        else:
            self.collect_enrich(m, stage, block, job_id, job)
        moved = store.move(self.pid, m)
        if moved:
            self.p[cursor_field(stage)] = ""
        return moved

    def collect_enrich(self, m: Move, stage: int, block: str, job_id: str, job: JobRecord) -> None:
        if job["status"] != JobState.SUCCEEDED:
            raise self.job_failed(stage, job_id, job)
        out: list[dict[str, Any]] = []
        for entry in _job_records(job_id, job):
            if "ok" in entry:
                out.append(entry["ok"])
            elif "dropped" in entry:
                m.count(stage, "dropped", 1)
            else:
                bad = entry["rejected"]
                m.rejected.append(
                    self.rejection(stage, block, bad["record"], bad["code"], bad["message"])
                )
                m.count(stage, "rejected", 1)
        m.count(stage, "out", len(out))
        self.forward(m, stage, block, out)

    def collect_sink(self, m: Move, stage: int, block: str, job_id: str, job: JobRecord) -> None:
        error = job.get("error") or {}
        rejections_only = job["status"] == JobState.FAILED and error.get("code") == "all_rejected"
        if job["status"] not in (JobState.SUCCEEDED, JobState.COMPLETED_WITH_ERRORS) and not (
            rejections_only
        ):
            raise self.job_failed(stage, job_id, job)
        records = store.read_input(self.pid, stage, block)
        valid, _ = self.sink_batch(records)
        written = 0
        for result in _job_records(job_id, job):
            if result.get("status") == "rejected":
                record = records[valid[int(result["index"])]]
                reason = result.get("error") or {}
                m.rejected.append(
                    self.rejection(
                        stage,
                        block,
                        record,
                        str(reason.get("code", "rejected")),
                        str(reason.get("message", "the vendor rejected the record")),
                    )
                )
                m.count(stage, "rejected", 1)
            else:
                written += 1
        m.count(stage, "out", written)

    def job_failed(self, stage: int, job_id: str, job: JobRecord) -> PipelineFailed:
        error = job.get("error") or {}
        why = error.get("message") or f"it was {job['status']}"
        kind = self.plan.kinds[stage]
        return PipelineFailed(
            f"{kind}_failed", f"stage {stage} ({kind}) job {job_id} {job['status']}: {why}"
        )

    def begin(self, stage: int, block: str) -> None:
        """Start the stage's job on the block at its queue's head (or, when validation left
        nothing to write, move the block on at once)."""
        records = store.read_input(self.pid, stage, block)
        m = Move(head=block, head_stage=stage, guard=cursor_field(stage), expect="")
        if self.plan.kinds[stage] == "sink":
            valid, bad = self.sink_batch(records)
            for index, code, message in bad:
                m.rejected.append(self.rejection(stage, block, records[index], code, message))
            m.count(stage, "rejected", len(bad))
            if not valid:
                m.guard = ""
                store.move(self.pid, m)
                return
            call = self.sink_call([records[i] for i in valid])
        else:
            call = self.enrich_call(stage)
        job_id = self._launch(stage, block, call)
        m.new = f"{block}|{job_id}"
        if store.move(self.pid, m):
            self.p[cursor_field(stage)] = m.new
            store.first_start(self.pid, stage)
            store.set_state(self.pid, {f"last:{stage}": job_id})  # what the view shows after
        else:
            self.orphaned(job_id)

    def orphaned(self, job_id: str) -> None:
        """A job started for a move that was refused: if the pipeline ended meanwhile (a
        cancel), nothing will collect it, so it stops too (else another run made the same
        move, with this same job: the start is idempotent)."""
        p = store.load(self.pid)
        if p is None or p["status"] in ENDED:
            cancel_job(job_id, "its pipeline ended")

    def _launch(self, stage: int, block: str, call: launch.Call) -> str:
        kind = self.plan.kinds[stage]
        extra = {"pipeline": self.pid, "pstage": str(stage), "pkind": kind, "pblock": block}
        try:
            job = launch.start(
                self.tenant,
                self.who,
                call,
                slot=f"pl.{self.pid}.{stage}.{block}",
                extra=extra,
                approved=self.approved(stage),
            )
        except (Forbidden, InvalidInput, NotFound) as exc:
            raise PipelineFailed(
                f"{kind}_refused", f"stage {stage} ({kind}): {exc.message}"
            ) from None
        return str(job["job_id"])

    def enrich_call(self, stage: int) -> launch.Call:
        e = self.plan.enrich(stage)
        return launch.Call(
            tool=e.tool,
            account_id=e.account_id,
            args={"template": e.args, "into": e.into, "on_missing": e.on_missing},
            fields=None,
            max_bytes=get_settings().spool_max_bytes,
            delivery="blocks",
            max_pages=None,
            cursor={"rec": 0},
        )

    def sink_call(self, records: list[dict[str, Any]]) -> launch.Call:
        sink = self.plan.spec.sink
        payloads = [transforms.payload(r, self.plan.mapped) for r in records]
        tool = registry().tools[sink.tool]
        args = tool.args.model_validate({**sink.args, "records": payloads}).model_dump(mode="json")
        return launch.Call(
            tool=sink.tool,
            account_id=sink.account_id,
            args=args,
            fields=None,
            max_bytes=get_settings().spool_max_bytes,
            delivery="blocks",
            max_pages=None,
            cursor={"page": None, "skip": 0},
        )

    def sink_batch(
        self, records: list[dict[str, Any]]
    ) -> tuple[list[int], list[tuple[int, str, str]]]:
        """Which records the sink tool takes (their indexes), and why it refuses the others:
        a record its arguments' model refuses is rejected at the sink, before any write."""
        sink = self.plan.spec.sink
        model = registry().tools[sink.tool].args
        payloads = [transforms.payload(r, self.plan.mapped) for r in records]

        def ok(batch: list[int]) -> str | None:
            try:
                model.model_validate({**sink.args, "records": [payloads[i] for i in batch]})
            except ValidationError as exc:
                return explain(exc)
            return None

        everything = list(range(len(records)))
        if ok(everything) is None:
            return everything, []
        valid, bad = [], []
        for i in everything:  # each alone first, then what only fails together (duplicates)
            why = ok([i])
            if why is None:
                valid.append(i)
            else:
                bad.append((i, "invalid_record", _alone(why)))
        if ok(valid) is None:
            return valid, bad
        kept: list[int] = []
        for i in valid:
            why = ok([*kept, i])
            if why is None:
                kept.append(i)
            else:
                bad.append((i, "invalid_record", why))
        return kept, sorted(bad)

    def may_write(self) -> bool:
        """The sink writes unless a person's approval of the pipeline is still awaited (then
        its blocks queue); an approval unanswered past its expiry cancels the pipeline."""
        approval = self.p.get("approval")
        if not approval or approval.get("state") == "approved":
            return True
        expires = float(approval.get("expires_at") or 0)
        if approval.get("state") == "required" and expires <= time.time():
            expire(self.pid, self.tenant, approval)
        elif store.first_busy(self.pid, self.p, self.plan.sink) >= self.plan.sink:
            self.idle_until = expires  # everything before the sink is done
        return False

    def approved(self, stage: int) -> dict[str, Any] | None:
        """The pipeline's approval, as each sink job carries it."""
        approval = self.p.get("approval")
        if stage != self.plan.sink or not approval:
            return None
        keep = ("decided_by", "decided_at", "binding")
        return {"pipeline_id": self.pid, **{k: approval.get(k) for k in keep}}

    # ---- the end -----------------------------------------------------------------------

    def end_or_mark(self) -> None:
        """Each stage's end time once everything before it and in it is done; the pipeline's
        end once every stage is."""
        p = store.load(self.pid)
        if p is None:
            return
        stages = len(self.plan.kinds)
        busy = store.first_busy(self.pid, p, stages)
        ends = {f"t:{s}:end": time.time() for s in range(1, busy) if not p.get(f"t:{s}:end")}
        if ends:
            store.set_state(self.pid, ends)
        if busy < stages:
            return
        rejected = store.rejected_count(self.pid)
        status = PipelineState.PARTLY_DONE if rejected else PipelineState.SUCCEEDED
        reason = (
            f"every stage ran to its end; {rejected} record(s) rejected: read them at "
            f"/v1/pipelines/{self.pid}/rejected, retry them with retry-rejected"
            if rejected
            else "every stage ran to its end"
        )
        store.set_state(self.pid, {"finished_at": time.time()}, status=status, reason=reason)


def _alone(why: str) -> str:
    """A record validated alone: its reason without the batch position."""
    return why.replace("record.records.0", "record").replace("record 0 ", "the record ")


def explain(exc: ValidationError) -> str:
    """The first validation error, as `record.<where>: <what>`."""
    first = exc.errors()[0]
    return ".".join(str(p) for p in ("record", *first["loc"])) + f": {first['msg']}"


def _job_records(job_id: str, job: JobRecord) -> list[dict[str, Any]]:
    """Every record a stage job spooled, in order."""
    out: list[dict[str, Any]] = []
    for block in range(max(job["blocks"], 1) if job["records"] else 0):
        _, runs = spool.read_block(job_id, block)
        if runs:
            out += orjson.loads(b"[" + ",".join(runs).encode() + b"]")
    return out
