"""Pipelines as the surfaces see them: create, read, list, cancel, the rejected records, a
retry of them, a re-run from a stage. The coordinator is `app.work.pipelinerun`."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from app import dispatch
from app.kernel import keys
from app.kernel.crypto import digest
from app.kernel.errors import Conflict, InvalidInput
from app.kernel.redis import get_redis
from app.kernel.ssrf import check_public_url
from app.services import pipelineapprovals
from app.services.pipelinedefs import check, sink_decision
from app.store import pipelines as store
from app.store.apikeys import Principal
from app.store.pipelines import ENDED, Input, Move, PipelineState
from app.work import pipelinerun, pipelineview
from app.work.pipelineplan import PipelineCreate, parse, plan_of

REJECTED_PAGE_MAX = 200


def create(
    who: Principal,
    spec: PipelineCreate,
    *,
    rerun: dict[str, Any] | None = None,
    seed: Move | None = None,
) -> dict[str, Any]:
    """Check the definition, store the pipeline and wake its coordinator (which starts the
    source job): 202 with the id at once, nothing read yet. A re-run is `seed`ed with its
    blocks before its coordinator first runs."""
    tenant = who.tenant_id
    check(tenant, who, spec)
    if spec.callback_url:
        check_public_url(spec.callback_url)
    pid = str(uuid.uuid4())
    record: dict[str, Any] = {
        "tenant_id": tenant,
        "key_id": who.key_id,
        "definition": spec.model_dump(mode="json"),
        "status": PipelineState.QUEUED,
        "src": "0",
        "name": spec.name or "",
        "callback_url": spec.callback_url or "",
        **(rerun or {}),
    }
    decision = sink_decision(tenant, who, spec.sink)
    if decision.rule == "approve":
        record["approval"] = pipelineapprovals.required(
            who, pid, record["definition"], decision.reason
        )
    slot = f"pipeline.{digest(spec.idempotency_key)}" if spec.idempotency_key else None
    made = store.create(pid, tenant, record, slot)
    if made != pid:
        return {**_answer(made, load_for(tenant, made)), "idempotent_replay": True}
    if seed is not None:
        store.move(pid, seed)
    if decision.rule == "approve":
        pipelineapprovals.announce(pid, store.load_for(tenant, pid))
    dispatch.start(keys.pipeline_work(pid))
    return _answer(pid, record)


def _answer(pid: str, p: dict[str, Any]) -> dict[str, Any]:
    out = {"pipeline_id": pid, "status": p["status"], "location": f"/v1/pipelines/{pid}"}
    if p.get("approval"):
        out["approval"] = pipelineapprovals.shown(p["approval"])
    return out


load_for = store.load_for


def get(tenant_id: str, pid: str) -> dict[str, Any]:
    return pipelineview.view(pid, load_for(tenant_id, pid))


def brief(tenant_id: str, pid: str) -> dict[str, Any]:
    return pipelineview.brief(pid, load_for(tenant_id, pid))


def list_pipelines(tenant_id: str, limit: int = 50) -> list[dict[str, Any]]:
    rows = []
    for pid in store.list_for(tenant_id, limit):
        p = store.load(pid)
        if p is not None:
            rows.append({"pipeline_id": pid, "status": p["status"], "name": p.get("name") or None,
                         "created_at": pipelineview._iso(p.get("created_at"))})  # fmt: skip
    return rows


def cancel(tenant_id: str, pid: str) -> dict[str, Any]:
    """Stop every stage: the pipeline ends `cancelled`, its running stage jobs are cancelled,
    and no stage starts another (every move is refused once it has ended)."""
    p = load_for(tenant_id, pid)
    if p["status"] in ENDED and p["status"] != PipelineState.CANCELLED:
        raise Conflict(f"pipeline {pid} already {p['status']}", code="pipeline_already_finished")
    fields = {"finished_at": time.time()}
    if store.set_state(
        pid, fields, status=PipelineState.CANCELLED, reason="cancelled by the caller"
    ):
        pipelinerun.stop_jobs(pid, "its pipeline was cancelled")
        dispatch.poke(keys.pipeline_work(pid))  # the coordinator sends the ending webhook
    return get(tenant_id, pid)


def deliveries(tenant_id: str, pid: str) -> dict[str, Any]:
    """Every attempt of the pipeline's ending webhook: time, status code, latency, error."""
    p = load_for(tenant_id, pid)
    raw = get_redis().lrange(keys.pipeline_deliveries(pid), 0, -1)
    return {
        "pipeline_id": pid,
        "callback_url": p.get("callback_url") or None,
        "deliveries": [json.loads(e) for e in raw],
    }


def rejected(tenant_id: str, pid: str, offset: int = 0, limit: int = 50) -> dict[str, Any]:
    """The rejected records, oldest first, a page at a time: stage, reason, the record as it
    entered that stage."""
    load_for(tenant_id, pid)
    limit = max(1, min(limit, REJECTED_PAGE_MAX))
    total = store.rejected_count(pid)
    page = store.rejected_page(pid, offset, limit) if offset < total else []
    out: dict[str, Any] = {"pipeline_id": pid, "total": total, "offset": offset, "rejected": page}
    if offset + len(page) < total:
        out["next_offset"] = offset + len(page)
    return out


def retry_rejected(who: Principal, pid: str) -> dict[str, Any]:
    """Run the rejected records again, each from the stage that rejected it (and on through
    the stages after). Only for an ended pipeline with rejected records; it runs again under
    the same id, and records rejected again return to the list."""
    p = load_for(who.tenant_id, pid)
    if p["status"] not in ENDED:
        raise Conflict(
            f"pipeline {pid} is {p['status']}; retry once it has ended", code="pipeline_running"
        )
    if p["status"] == PipelineState.CANCELLED:
        raise Conflict(f"pipeline {pid} was cancelled", code="pipeline_cancelled")
    check(who.tenant_id, who, parse(p["definition"]))  # the caller may run it all again
    entries = store.rejected_page(pid, 0, store.rejected_count(pid))
    if not entries:
        raise Conflict(f"pipeline {pid} has no rejected records", code="nothing_rejected")
    round_ = int(p.get("round") or 0) + 1
    by_stage: dict[int, list[Any]] = {}
    for e in entries:
        by_stage.setdefault(int(e["stage"]), []).append(e["record"])
    plan = plan_of(parse(p["definition"]))
    m = Move(guard="retrying", expect="", new=str(round_), retried=len(entries))
    for stage, records in sorted(by_stage.items()):
        m.inputs.append(Input(stage, f"r{round_}.{stage}", records, queued=True))
        m.count(stage, "rejected", -len(records))
        if not plan.is_job(stage):
            m.count(stage, "in", -len(records))  # counted again as they pass
    ends = {f"t:{s}:end": None for s in range(min(by_stage), len(plan.kinds))}
    reopened = store.set_state(
        pid,
        {**ends, "round": round_, "finished_at": None, "error": None, "retrying": None},
        status=PipelineState.RUNNING,
        reason=f"retry {round_}: {len(entries)} rejected record(s) run again",
        mode="reopen",
    )
    if not reopened:
        raise Conflict(f"pipeline {pid} is already running again", code="pipeline_running")
    if not store.move(pid, m):
        raise Conflict(f"pipeline {pid} changed meanwhile; read it again", code="pipeline_changed")
    get_redis().delete(keys.pipeline_cache(pid))  # a retry asks the enrich vendors again
    store.set_state(pid, {"retrying": None})
    if not dispatch.start(keys.pipeline_work(pid)):
        dispatch.poke(keys.pipeline_work(pid))
    return get(who.tenant_id, pid)


def rerun(who: Principal, pid: str, from_stage: int) -> dict[str, Any]:
    """A new pipeline with the same definition that starts at `from_stage` with the records
    that entered that stage here (the blocks already spooled): nothing is read again."""
    p = load_for(who.tenant_id, pid)
    spec = parse(p["definition"])
    plan = plan_of(spec)
    if not 1 <= from_stage <= plan.sink:
        raise InvalidInput(
            f"from_stage must be 1-{plan.sink} (0 is a new run: POST /v1/pipelines)",
            code="invalid_stage",
        )
    blocks = store.entered(pid, from_stage)
    if not blocks:
        raise Conflict(
            f"no records have entered stage {from_stage} of {pid}", code="nothing_spooled"
        )
    try:
        inputs = [
            Input(from_stage, b, store.read_input(pid, from_stage, b), queued=True) for b in blocks
        ]
    except store.InputExpired as exc:
        raise Conflict(f"cannot re-run {pid}: {exc}", code="input_expired") from None
    seed = Move(guard="seeded", expect="", new="1", inputs=inputs)
    if plan.is_job(from_stage):  # a pure stage counts its records as they pass
        seed.count(from_stage, "in", sum(len(i.records) for i in inputs))
    fresh = spec.model_copy(update={"idempotency_key": None})
    return create(who, fresh, rerun={"rerun_of": pid, "from_stage": from_stage}, seed=seed)
