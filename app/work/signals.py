"""Vendor completion signals: a job waiting for an async vendor job wakes when the vendor's
webhook says it ended, instead of at its next poll.

Both sides write, then read, so the signal is never lost to a race: the waiting step registers
itself, then looks for a signal that came first; the webhook records its signal, then looks for
a waiting job. Whoever deletes the registration resumes the job, so it resumes once, however
many copies of the webhook arrive. The step's scheduled poll stays as the fallback; when it
runs after the resumed step it finds its step number stale and does nothing.
"""

from __future__ import annotations

import time

from app import dispatch
from app.kernel import keys
from app.kernel.redis import get_redis
from app.kernel.states import JobState
from app.store.jobstore import load, write

SIGNAL_TTL_S = 86_400  # a signal waits this long for its job to start waiting


def await_signal(account_id: str, ref: str, job_id: str, ttl_s: float) -> bool:
    """Register `job_id` as waiting for `ref`; True when the signal already came (and is
    hereby consumed): the caller resumes the job now."""
    r = get_redis()
    r.set(keys.awaiting(account_id, ref), job_id, ex=max(1, int(ttl_s) + 60))
    return bool(r.getdel(keys.signalled(account_id, ref))) and bool(
        r.delete(keys.awaiting(account_id, ref))
    )


def signal(account_id: str, ref: str, why: str) -> str | None:
    """The vendor says `ref` ended: resume the job waiting for it; its id, if one was."""
    r = get_redis()
    r.set(keys.signalled(account_id, ref), why, ex=SIGNAL_TTL_S)
    job_id = r.getdel(keys.awaiting(account_id, ref))
    if job_id is None:
        return None
    r.delete(keys.signalled(account_id, ref))  # consumed: a later wait on ref must poll
    resume(job_id, why)
    return job_id


def resume(job_id: str, why: str) -> bool:
    """Run the waiting job's next step now (it was scheduled, or parked, for later)."""
    job = load(job_id)
    if job is None or job["status"] != JobState.WAITING_VENDOR:
        return False
    now, seq = dispatch.plan(), job["seq"]
    written = write(
        job_id, {"retry_at": time.time()}, seq=seq, reason=f"{why}: resuming", next_step=(seq, now)
    )
    if written:
        dispatch.send(keys.step_work(job_id), seq, now)
    return bool(written)
