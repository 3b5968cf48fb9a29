"""Approvals, the surfaces' half: list what awaits a person, show its preview, approve or
reject it (by an `approve`-scoped key, or through the one-time link).

A decision applies only to the job as it was previewed: the caller may name the binding it
was shown, and the binding is recomputed here from the job's tool, account, arguments and
stored preview; if either differs, nothing is applied (409 `approval_mismatch`). The state
change, the preview moving aside and the audit entry are one Redis script
(approval_decide.lua), which also refuses a job no longer awaiting, or past its expiry.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson

from app import dispatch
from app.kernel import keys, metrics
from app.kernel.crypto import digest
from app.kernel.errors import Conflict, Forbidden, NotFound
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.settings import get_settings
from app.kernel.states import TERMINAL, JobState
from app.services import jobs
from app.store import policies, spool
from app.store.apikeys import Principal
from app.store.jobrecord import JobRecord
from app.store.jobstore import audit_argv, encode, load_for, log_entry, webhook_deadline
from app.work.approval import binding, preview_digest

Decision = Literal["approve", "reject"]
LINK = "link"  # the approver a one-time link records (the link is the capability)
REASON_MAX = 500


def awaiting(tenant_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The tenant's jobs awaiting approval, newest first, with their preview summary."""
    rows = jobs.list_jobs(tenant_id, state=JobState.AWAITING_APPROVAL, limit=limit)
    return [jobs.brief(tenant_id, r["job_id"]) for r in rows]


def preview(tenant_id: str, job_id: str, block: int = 0) -> bytes:
    """The preview's records, block by block: what the write would do to each record."""
    job = load_for(job_id, tenant_id)
    if not job.get("dry_run") and not job.get("approval"):
        raise NotFound(
            f"job {job_id} has no preview (it was neither a dry run nor held for approval)",
            code="preview_not_found",
        )
    moved = _moved(job)
    blocks = int((job.get("approval") or {}).get("preview_blocks", 0)) if moved else job["blocks"]
    if job.get("previewing") and job["status"] not in (JobState.AWAITING_APPROVAL, *TERMINAL):
        raise Conflict(
            f"job {job_id} is still previewing ({job['status']})",
            code="preview_not_ready",
            status=job["status"],
        )
    if not 0 <= block < max(blocks, 1):
        raise NotFound(
            f"block {block} does not exist; the preview has {blocks} block(s)",
            code="block_not_found",
        )
    key = keys.job_preview(job_id, block) if moved else keys.job_spool(job_id, block)
    count, runs = spool.read_runs(key)
    env = {
        "job_id": job_id,
        "tool": job["tool"],
        "status": job["status"],
        "record_count": 0,
        "preview": job.get("preview"),
        "blocks": max(blocks, 1),
        "block": block,
        **jobs.consent_view(job),
    }
    return spool.render(env, runs, count)


def _moved(job: JobRecord) -> bool:
    """Approval moved the preview aside (the spool now holds the write's results)."""
    return (job.get("approval") or {}).get("state") in ("approved",) and not job.get("previewing")


def decide(
    who: Principal | None,
    tenant_id: str,
    job_id: str,
    decision: Decision,
    *,
    bound: str | None = None,
    reason: str = "",
) -> dict[str, Any]:
    """Approve or reject the job; `who` None is a one-time link's holder."""
    job = load_for(job_id, tenant_id)
    if who is not None:
        _permit(who, tenant_id, job)
    if job["status"] != JobState.AWAITING_APPROVAL:
        raise Conflict(
            f"job {job_id} is {job['status']}, not awaiting approval",
            code="job_not_awaiting_approval",
            status=job["status"],
        )
    approval = dict(job.get("approval") or {})
    current = binding(job, preview_digest(job_id, job["blocks"]))
    if (bound is not None and bound != approval.get("binding")) or current != approval.get(
        "binding"
    ):
        raise Conflict(
            "this approval does not match the job as it was previewed (its tool, account, "
            "arguments or preview differ): read the job's preview again and approve its "
            "current `approval.binding`",
            code="approval_mismatch",
        )
    approver = LINK if who is None else who.key_id
    return _apply(job_id, job, approval, decision, approver, reason[:REASON_MAX])


def _permit(who: Principal, tenant_id: str, job: JobRecord) -> None:
    """`who` may decide this job: the `approve` scope, the job's account, and not its own
    job unless policy `self_approve` says so (403 naming which)."""
    who.require("approve")
    if not who.may_act_on(job["account_id"]):
        raise Forbidden(f"this API key may not act on account {job['account_id']}",
                        code="account_not_allowed")  # fmt: skip
    if who.key_id == job.get("key_id"):
        pol = policies.effective(tenant_id, job["account_id"], who.key_id)
        if not pol.self_approve:
            raise Forbidden(
                "the key that started this job cannot approve it (policy `self_approve` is "
                "off): ask a person with another `approve`-scoped key",
                code="self_approval_refused",
            )


def may_decide(who: Principal, tenant_id: str, job_id: str) -> bool:
    """Would `decide` accept `who`'s decision on this job (its state and binding aside)?
    For surfaces that offer the decision only to whom may make it (MCP elicitation)."""
    try:
        _permit(who, tenant_id, load_for(job_id, tenant_id))
    except Forbidden:
        return False
    return True


def _apply(
    job_id: str,
    job: JobRecord,
    approval: dict[str, Any],
    decision: Decision,
    approver: str,
    reason: str,
) -> dict[str, Any]:
    now = time.time()
    state = "approved" if decision == "approve" else "rejected"
    approval.update(state=state, decided_by=approver, decided_at=now)
    if reason:
        approval["note"] = reason
    fields: dict[str, Any] = {"approval": approval, "updated_at": now, "retry_at": None}
    moves: list[str] = []
    if decision == "approve":
        approval["preview_blocks"] = max(job["blocks"], 1)
        fields.update(
            previewing=False,
            cursor={"op": 0, "sent": False},
            pages=0,
            records=0,
            bytes=0,
            block=0,
            block_bytes=0,
            block_records=0,
            blocks=0,
        )
        for b in range(max(job["blocks"], 1)):
            moves += [keys.job_spool(job_id, b), keys.job_preview(job_id, b)]
        text = f"approved by {approver}" + (f": {reason}" if reason else "")
        status = JobState.QUEUED
    else:
        text = f"approval_rejected by {approver}" + (f": {reason}" if reason else "")
        fields.update(finished_at=now, error={"code": "approval_rejected", "message": text})
        status = JobState.CANCELLED
    entry = {
        "kind": f"approval_{state}",
        "key_id": approver,
        "job_id": job_id,
        "tool": job["tool"],
        "account_id": job["account_id"],
        "args_digest": job.get("args_digest"),
        "records": (job.get("preview") or {}).get("records"),
        "preview_digest": approval.get("preview_digest"),
        "binding": approval.get("binding"),
        "requested_by": job.get("key_id"),
        "reason": reason or None,
    }
    s = get_settings()
    lua_keys = [
        keys.job(job_id),
        keys.job_log(job_id),
        keys.JOBS_BY_STATE,
        keys.DUE,
        keys.PENDING,
        keys.audit(job["tenant_id"]),
        *moves,
    ]
    argv = [
        decision,
        approval["binding"],
        now,
        s.spool_ttl_s,
        log_entry(status, text, now),
        keys.step_work(job_id),
        keys.webhook_work(job_id),
        webhook_deadline(now),
        *audit_argv(entry, now),
        status.value,
        *encode(fields),
    ]
    reply = run_script(source("approval_decide"), lua_keys, argv)
    code = reply[0]  # type: ignore[index]
    if code == "not_awaiting":
        raise Conflict(
            f"job {job_id} is {reply[1]}, not awaiting approval",  # type: ignore[index]
            code="job_not_awaiting_approval",
        )
    if code == "mismatch":
        raise Conflict("the job's approval binding changed meanwhile", code="approval_mismatch")
    if code == "expired":
        raise Conflict("the approval expired; the job is being cancelled", code="approval_expired")
    metrics.incr("job_transitions", {"state": status})
    if decision == "approve":
        dispatch.send(keys.step_work(job_id), int(reply[1]))  # type: ignore[index]
    elif job.get("callback_url"):
        dispatch.send(keys.webhook_work(job_id), 0)
    return jobs.get(job["tenant_id"], job_id)


def link_job(token: str) -> tuple[dict[str, Any], JobRecord]:
    """The link's record and its job (`_link`)."""
    link = _link(token, spend=False)
    return link, load_for(link["job_id"], link["tenant_id"])


def link_decide(token: str, decision: Decision, reason: str = "") -> dict[str, Any]:
    """Decide through the link: it is spent by the first attempt, whatever its outcome."""
    link = _link(token, spend=True)
    return decide(
        None, link["tenant_id"], link["job_id"], decision, bound=link["binding"], reason=reason
    )


def _link(token: str, *, spend: bool) -> dict[str, Any]:
    """The link's record (`spend`: taken, so it works once), or 404 `approval_link_invalid`
    for one used, expired or made up: the three look alike."""
    key = keys.approval_link(digest(token))
    raw = (get_redis().getdel(key) if spend else get_redis().get(key)) if token else None
    if not raw:
        raise NotFound(
            "this approval link was used already, has expired, or never existed",
            code="approval_link_invalid",
        )
    return dict(orjson.loads(raw))
