"""The workers' half of approvals: a previewed job comes to rest, its people are told, and
an unanswered one expires. (The surfaces' half, deciding, is `app.services.approvals`.)

A job that policy holds for approval first runs as a preview (`app.work.writeloop`: reads
only, the would-be outcome of every record spooled). Then it rests in `awaiting_approval`
with the preview's digest and the *binding*: a hash of tool, account, arguments and preview
digest, which an approval must name. Resting is a step too: the step after the preview is
due at once and sends `job.approval_required`, then the job's next step is parked until the
approval expires; that step, if the job still awaits, cancels it (`approval_expired`). A
worker killed in between is covered by the same sweep as every step (the event may then go
out twice, with the same content; receivers see two links, each single use, for one job).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

import orjson

from app.kernel import keys
from app.kernel.crypto import digest
from app.kernel.redis import get_redis
from app.kernel.settings import get_settings
from app.kernel.states import JobState
from app.kernel.timefmt import now_iso
from app.store import policies
from app.store.jobrecord import JobRecord
from app.work.context import StepContext
from app.work.deliveries import ACCOUNT_TARGET, emit

LINK_PATH = "/v1/approvals/links/"


def preview_digest(job_id: str, blocks: int, *, moved: bool = False) -> str:
    """sha256 over the preview's records in order (its spool blocks, or where approval
    moved them)."""
    h = hashlib.sha256()
    r = get_redis()
    for b in range(max(blocks, 1)):
        key = keys.job_preview(job_id, b) if moved else keys.job_spool(job_id, b)
        for element in r.lrange(key, 0, -1):
            h.update(element.encode())
            h.update(b"\n")
    return h.hexdigest()


def binding(job: JobRecord, preview: str) -> str:
    """What an approval is bound to: this tool, account and arguments, and this preview."""
    doc = {"tool": job["tool"], "account_id": job["account_id"], "args": job["args"]}
    canonical = orjson.dumps({**doc, "preview": preview}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def rest(step: StepContext, summary: dict[str, Any]) -> None:
    """The preview is complete: await a person, with the binding they must approve."""
    job = step.job
    pd = preview_digest(step.id, job["blocks"])
    expires = time.time() + get_settings().approval_timeout_s
    approval = {
        **(job.get("approval") or {}),
        "state": "pending",
        "preview_digest": pd,
        "binding": binding(job, pd),
        "expires_at": expires,
        "notified": False,
    }
    counts = ", ".join(f"{n} {k}" for k, n in summary.items() if k in _ACTIONS and n)
    step.advance(
        0.0,
        fields={"approval": approval},
        status=JobState.AWAITING_APPROVAL,
        reason=f"awaiting approval ({approval.get('reason', 'policy')}): {counts or 'no records'}",
    )


_ACTIONS = ("create", "update", "unchanged", "delete", "reject")


def tend(step: StepContext) -> None:
    """A step of a job awaiting approval: tell its people once, then wait for the expiry
    (parked); past the expiry, cancel it."""
    job = step.job
    approval = dict(job.get("approval") or {})
    expires = float(approval.get("expires_at", 0))
    if time.time() >= expires:
        step.finish(
            JobState.CANCELLED,
            {"code": "approval_expired", "message": "approval_expired: nobody approved or "
             f"rejected the job within {get_settings().approval_timeout_s:g} s"},
            audit={"kind": "approval_expired"},
        )  # fmt: skip
        return
    if not approval.get("notified"):
        notify(step.id, job, approval, expires)
        approval["notified"] = True
    step.advance(expires - time.time(), fields={"approval": approval}, reason="")


def notify(job_id: str, job: JobRecord, approval: dict[str, Any], expires: float) -> None:
    """`job.approval_required` to the account's events_url (with a one-time approval link)
    and the job's callback_url (with the link only if the job's own key may approve it:
    the agent that started the job must not receive the means to approve it)."""
    summary = {
        "job_id": job_id,
        "tool": job["tool"],
        "account_id": job["account_id"],
        "preview": job.get("preview"),
        "reason": approval.get("reason"),
        "binding": approval["binding"],
        "expires_at": now_iso(expires),
        "approve_url": f"/v1/jobs/{job_id}/approve",
        "preview_url": f"/v1/jobs/{job_id}/preview",
    }
    link = {**summary, "approval_link": make_link(job_id, job, approval["binding"], expires)}
    emit(job["account_id"], "job.approval_required", [ACCOUNT_TARGET], {"approval": link})
    pol = policies.effective(job["tenant_id"], job["account_id"], job.get("key_id") or "")
    if pol.self_approve:
        emit(job["account_id"], "job.approval_required", [job_id], {"approval": link})
    else:
        emit(job["account_id"], "job.approval_required", [job_id], {"approval": summary})


def make_link(job_id: str, job: JobRecord, bound: str, expires: float) -> str:
    """A single-use link that approves (or rejects) this job for this binding until expiry."""
    token = "apl_" + secrets.token_urlsafe(32)
    record = {"job_id": job_id, "tenant_id": job["tenant_id"], "binding": bound}
    ttl = max(1, int(expires - time.time()))
    get_redis().set(keys.approval_link(digest(token)), orjson.dumps(record), ex=ttl)
    s = get_settings()
    base = (s.public_url or f"http://{s.api_host}:{s.api_port}").rstrip("/")
    return f"{base}{LINK_PATH}{token}"
