"""Accounts that need re-authorization: park, notify, resume, expire.

A refresh token the vendor refuses for good, or access it revokes (a second 401 with a freshly
refreshed token), both `AuthRejected`, cannot be fixed by retrying: only the tenant can, with
new credentials. Failing the job would throw away its cursor and spool, so it is *parked*
instead: `needs_reauth` at its checkpoint, indexed per account with its park time. The account
is marked `needs_reauth` in its token record (`status`, plus `reauth_since` and
`reauth_reason`), and the tenant hears of it (`account.needs_reauth`). New credentials
(`reactivate`) resume every parked job from its cursor; the beat task `expire_reauth` fails the
ones nobody re-authorized within `reauth_timeout_s` (`reauth_timeout`).

Parking (status and index together) and every way out of it (resume, expiry) are single Redis
scripts that check the job's status, so a park racing a reactivation ends with the job resumed
exactly once: by the reactivation if it saw the job in the index, else by the parker, which
looks at the account again after parking.
"""

from __future__ import annotations

import json
import logging
import time
from enum import IntEnum
from typing import Any

from app import dispatch
from app.kernel import keys, metrics
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.settings import get_settings
from app.kernel.timefmt import now_iso
from app.store import connect
from app.store.jobrecord import JobRecord
from app.store.jobstore import encode, load
from app.work.deliveries import ACCOUNT_TARGET, emit

log = logging.getLogger("toolqueue.reauth")


class MarkResult(IntEnum):
    """What marking an account did (reauth_mark.lua's return codes)."""

    MARKED = 1  # the transition into needs_reauth: the one that notifies
    ALREADY = 0  # it was marked already
    STALE = -1  # the caller's token version is stale: new credentials came since


class ParkResult(IntEnum):
    """reauth_park.lua's return codes."""

    PARKED = 1
    REFUSED = 0  # the step lost its lease or its number, or the job has ended


class UnparkResult(IntEnum):
    """reauth_unpark.lua's return codes."""

    MOVED = 1  # this call took the job out of needs_reauth
    NOT_PARKED = -1  # it was not parked (any more)


def mark_needs_reauth(account_id: str, reason: str, *, version: str | None = None) -> MarkResult:
    """Mark the account needs_reauth; MARKED on the transition (the one that notifies),
    ALREADY if it was, STALE if `version` (the token record's when the caller got its token)
    is stale: the tenant posted new credentials since, and the refusal was about the old
    ones."""
    argv = ["*" if version is None else version, time.time(), reason[:500]]
    marked = run_script(source("reauth_mark"), [keys.token(account_id)], argv)
    return MarkResult(int(marked))  # type: ignore[call-overload]


def mark_and_notify(account_id: str, reason: str, *, version: str | None = None) -> MarkResult:
    """`mark_needs_reauth` for a refusal outside any job (the proxy): the first transition
    tells the account's events_url, as a parking job would."""
    first = mark_needs_reauth(account_id, reason, version=version)
    if first == MarkResult.MARKED:
        emit(account_id, "account.needs_reauth", [ACCOUNT_TARGET], _reconnect(account_id, []))
    return first


def _reconnect(account_id: str, parked: list[str]) -> dict[str, Any]:
    """The `account.needs_reauth` data: the parked jobs and, for an account made through a
    connect session, a fresh re-connect link (`reconnect_url`). Only the account's events_url
    gets this event, so the link reaches the tenant alone."""
    link = connect.reconnect_link(account_id, get_settings().connect_session_ttl_s)
    return {"parked_jobs": parked, "reconnect_url": link}


def needs_reauth(account_id: str) -> bool:
    return bool(get_redis().hexists(keys.token(account_id), "reauth_since"))


def parked_jobs(account_id: str) -> list[str]:
    """The account's parked job ids, longest-waiting first."""
    return get_redis().zrange(keys.account_parked(account_id), 0, -1)


def park(
    job_id: str, job: JobRecord, *, lease: str, message: str, token_version: str | None
) -> bool:
    """The step's job waits at its checkpoint for new credentials instead of failing.

    Marks the account (the first time: `account.needs_reauth` to its `events_url`), parks the
    job (and tells its `callback_url`). True if the job stays parked; False if the step lost
    its lease, or the account got new credentials meanwhile and the job resumed at once."""
    account_id = job["account_id"]
    first = mark_needs_reauth(account_id, message, version=token_version) == MarkResult.MARKED
    parked = _park(job_id, job, lease, message) == ParkResult.PARKED
    if parked:
        metrics.incr("job_transitions", {"state": "needs_reauth"})
    if parked and not needs_reauth(account_id):
        # credentials were posted after this step got its token, and the reactivation may
        # have looked at the index before this job was in it: resume it here
        resume_job(account_id, job_id, "the account has new credentials; resuming")
        parked = False
    waiting = {"parked_jobs": parked_jobs(account_id)}
    if first:
        emit(
            account_id,
            "account.needs_reauth",
            [ACCOUNT_TARGET],
            _reconnect(account_id, waiting["parked_jobs"]),
        )
    if parked:
        emit(account_id, "job.needs_reauth", [job_id], {**waiting, "job_id": job_id})
    return parked


def _park(job_id: str, job: JobRecord, lease: str, message: str) -> ParkResult:
    """reauth_park.lua: the job's status, log entry and indexes, and longer TTLs."""
    now = time.time()
    fields = {
        "status": "needs_reauth",
        "error": {"code": "needs_reauth", "message": message},
        "retry_at": None,
        "updated_at": now,
    }
    entry = json.dumps({"status": "needs_reauth", "at": now_iso(now), "reason": message})
    settings = get_settings()
    ttl = int(settings.spool_ttl_s + settings.reauth_timeout_s)
    blocks = [keys.job_spool(job_id, b) for b in range(max(job.get("blocks") or 0, 1))]
    parked = run_script(
        source("reauth_park"),
        [
            keys.job(job_id),
            keys.job_lease(job_id),
            keys.job_log(job_id),
            keys.account_parked(job["account_id"]),
            keys.REAUTH_PARKED,
            keys.JOBS_BY_STATE,
            keys.DUE,
            keys.PENDING,
            keys.job_seen(job_id),
            *blocks,
        ],
        [lease, job["seq"], now, job_id, ttl, entry, keys.step_work(job_id), *encode(fields)],
    )
    return ParkResult(int(parked))  # type: ignore[call-overload]


def resume_job(account_id: str, job_id: str, reason: str) -> bool:
    """needs_reauth -> queued, and its current step enqueued: it continues from its cursor."""
    now = time.time()
    fields = {"status": "queued", "error": None, "retry_at": None, "updated_at": now}
    if _unpark(account_id, job_id, "queued", reason, fields) != UnparkResult.MOVED:
        return False
    job = load(job_id)
    if job:
        dispatch.send(keys.step_work(job_id), job["seq"])
    return True


def reactivate(account_id: str, *, was_needs_reauth: bool) -> list[str]:
    """After new credentials were stored (`tokens.store_initial`, which sets `status: active`
    first, so a refusal of the old ones can no longer mark the account): resume every parked
    job and tell the tenant (`account.reactivated`) if the account was waiting."""
    cleared = get_redis().hdel(keys.token(account_id), "reauth_since", "reauth_reason")
    reason = "the account was re-authorized; resuming from the checkpoint"
    resumed = [j for j in parked_jobs(account_id) if resume_job(account_id, j, reason)]
    if was_needs_reauth or cleared or resumed:
        targets = [ACCOUNT_TARGET, *resumed]
        emit(account_id, "account.reactivated", targets, {"parked_jobs": resumed})
    return resumed


def expire(
    now: float | None = None, timeout_s: float | None = None, account_id: str | None = None
) -> list[str]:
    """Fail (`reauth_timeout`) the jobs parked longer than `timeout_s` (default the setting),
    of one account or of all; each sends its job webhook. Returns their ids."""
    r = get_redis()
    timeout_s = get_settings().reauth_timeout_s if timeout_s is None else timeout_s
    cutoff = (time.time() if now is None else now) - timeout_s
    index = keys.account_parked(account_id) if account_id else keys.REAUTH_PARKED
    expired = []
    for job_id in r.zrangebyscore(index, 0, cutoff, start=0, num=1000):
        job = load(job_id)
        if job is None:  # the record is gone (beat was down past even the longer TTL)
            r.zrem(index, job_id)
            r.zrem(keys.REAUTH_PARKED, job_id)
            continue
        message = (
            f"the account needed re-authorization and no new credentials came within "
            f"{timeout_s:.0f}s; what was fetched before stays readable"
        )
        fields = {
            "status": "failed",
            "error": {"code": "reauth_timeout", "message": message},
            "finished_at": time.time(),
            "retry_at": None,
            "updated_at": time.time(),
        }
        if _unpark(job["account_id"], job_id, "failed", message, fields) == UnparkResult.MOVED:
            if job.get("callback_url"):
                dispatch.send(keys.webhook_work(job_id), 0)  # pending since the unpark
            expired.append(job_id)
    return expired


def _unpark(
    account_id: str, job_id: str, status: str, reason: str, fields: dict[str, Any]
) -> UnparkResult:
    entry = json.dumps({"status": status, "at": now_iso(), "reason": reason})
    reply = run_script(
        source("reauth_unpark"),
        [
            keys.job(job_id),
            keys.job_log(job_id),
            keys.account_parked(account_id),
            keys.REAUTH_PARKED,
            keys.JOBS_BY_STATE,
            keys.DUE,
            keys.PENDING,
        ],
        [
            job_id,
            get_settings().spool_ttl_s,
            entry,
            status,
            keys.step_work(job_id),
            keys.webhook_work(job_id),
            dispatch.plan().deadline,
            *encode(fields),
        ],
    )
    moved = UnparkResult(int(reply))  # type: ignore[call-overload]
    if moved == UnparkResult.MOVED:
        metrics.incr("job_transitions", {"state": status})
    return moved
