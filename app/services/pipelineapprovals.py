"""A pipeline whose sink policy holds for a person is approved once, not per block.

The pipeline runs its source and every stage before the sink at once (reads change nothing),
and its sink waits: blocks queue before it, and `GET /v1/pipelines/{id}/preview` shows the
first records it would write. A person with an `approve`-scoped key (not the key that started
it, unless policy `self_approve` says so) approves the *binding*: a hash of the pipeline's id
and definition, so an approval names exactly what will run. From then on each sink job
carries that approval (on its record and in its audit entries) instead of waiting for its own.
A rejection, or no answer within the policy's `approval_timeout_s`, cancels the pipeline;
nothing is written.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Literal

import orjson

from app import dispatch
from app.kernel import keys
from app.kernel.errors import Conflict, Forbidden
from app.kernel.settings import get_settings
from app.store import audit, policies
from app.store import pipelines as store
from app.store.apikeys import Principal
from app.store.pipelines import ENDED, PipelineState
from app.work import pipelinerun, pipelineview, transforms
from app.work.deliveries import ACCOUNT_TARGET, emit
from app.work.pipelineplan import parse, plan_of

PREVIEW_MAX = 50
REASON_MAX = 500


def binding(pid: str, definition: dict[str, Any]) -> str:
    """What an approval names: this pipeline, with this definition."""
    doc = orjson.dumps({"pipeline_id": pid, "definition": definition}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(doc).hexdigest()


def required(who: Principal, pid: str, definition: dict[str, Any], reason: str) -> dict[str, Any]:
    """The approval a new pipeline waits for (its record's `approval`)."""
    sink = definition["sink"]
    pol = policies.effective(who.tenant_id, sink["account_id"], who.key_id)
    timeout = pol.approval_timeout_s or get_settings().approval_timeout_s
    return {
        "state": "required",
        "reason": reason,
        "requested_by": who.key_id,
        "binding": binding(pid, definition),
        "expires_at": time.time() + timeout,
    }


def announce(pid: str, p: dict[str, Any]) -> None:
    """`pipeline.approval_required` to the sink account's events_url (never the pipeline's
    callback_url: the agent that started it chose that one)."""
    approval = p["approval"]
    sink = p["definition"]["sink"]
    data = {
        "pipeline_id": pid,
        "sink": {"tool": sink["tool"], "account_id": sink["account_id"]},
        "approval": shown(approval),
        "approve": f"POST /v1/pipelines/{pid}/approve with the binding",
    }
    emit(sink["account_id"], "pipeline.approval_required", [ACCOUNT_TARGET], data)


def shown(approval: dict[str, Any]) -> dict[str, Any]:
    return pipelineview.approval(approval)


def decide(
    who: Principal,
    pid: str,
    decision: Literal["approve", "reject"],
    *,
    bound: str | None,
    reason: str = "",
) -> dict[str, Any]:
    """Approve (the sink starts writing) or reject (the pipeline is cancelled)."""
    p = store.load_for(who.tenant_id, pid)
    approval = dict(p.get("approval") or {})
    _permit(who, p)
    if p["status"] in ENDED or approval.get("state") != "required":
        raise Conflict(
            f"pipeline {pid} is not awaiting approval ({p['status']})",
            code="pipeline_not_awaiting_approval",
        )
    if float(approval["expires_at"]) <= time.time():
        raise Conflict(f"the approval of pipeline {pid} expired", code="approval_expired")
    current = binding(pid, p["definition"])
    if decision == "approve" and (bound != approval["binding"] or current != approval["binding"]):
        raise Conflict(
            "this approval does not name the pipeline as it is: read it again and approve its "
            "current `approval.binding`",
            code="approval_mismatch",
        )
    now = time.time()
    state = "approved" if decision == "approve" else "rejected"
    approval.update(state=state, decided_by=who.key_id, decided_at=now)
    if reason:
        approval["note"] = reason[:REASON_MAX]
    _audit(who, pid, p, approval)
    if decision == "approve":
        store.set_state(pid, {"approval": approval}, reason=f"approved by {who.key_id}")
    else:
        error = {"code": "approval_rejected", "message": f"rejected by {who.key_id}"}
        fields = {"approval": approval, "error": error, "finished_at": now}
        if store.set_state(pid, fields, status=PipelineState.CANCELLED, reason=error["message"]):
            pipelinerun.stop_jobs(pid, "its pipeline's approval was rejected")
    dispatch.poke(keys.pipeline_work(pid))
    return {"pipeline_id": pid, "status": store.load_for(who.tenant_id, pid)["status"],
            "approval": shown(approval)}  # fmt: skip


def preview(tenant_id: str, pid: str, limit: int = PREVIEW_MAX) -> dict[str, Any]:
    """The first records the sink would write (as it would receive them), from its queue."""
    p = store.load_for(tenant_id, pid)
    plan = plan_of(parse(p["definition"]))
    sink = plan.sink
    records: list[Any] = []
    queued = store.queued(pid, sink)
    for block in queued:
        if len(records) >= limit:
            break
        records += store.read_input(pid, sink, block)[: limit - len(records)]
    return {
        "pipeline_id": pid,
        "sink": {"tool": plan.spec.sink.tool, "account_id": plan.spec.sink.account_id},
        "queued_blocks": len(queued),
        "queued_records": int(p.get(store.count_field(sink, "in")) or 0),
        "records": [transforms.payload(r, plan.mapped) for r in records],
        "approval": shown(p.get("approval") or {}) or None,
    }


def _permit(who: Principal, p: dict[str, Any]) -> None:
    who.require("approve")
    account = p["definition"]["sink"]["account_id"]
    if not who.may_act_on(account):
        raise Forbidden(
            f"this API key may not act on account {account}", code="account_not_allowed"
        )
    if who.key_id == p.get("key_id"):
        pol = policies.effective(who.tenant_id, account, who.key_id)
        if not pol.self_approve:
            raise Forbidden(
                "the key that started this pipeline cannot approve it (policy `self_approve` "
                "is off): ask a person with another `approve`-scoped key",
                code="self_approval_refused",
            )


def _audit(who: Principal, pid: str, p: dict[str, Any], approval: dict[str, Any]) -> None:
    sink = p["definition"]["sink"]
    audit.append(
        who.tenant_id,
        f"pipeline_{approval['state']}",
        key_id=who.key_id,
        pipeline_id=pid,
        tool=sink["tool"],
        account_id=sink["account_id"],
        binding=approval["binding"],
        requested_by=approval.get("requested_by"),
        note=approval.get("note", ""),
    )
