"""Job records in Redis: state, progress, checkpoint, and the log of every state change."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, cast

import orjson

from app.kernel import keys
from app.kernel.errors import NotFound
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.settings import get_settings
from app.kernel.states import JobState
from app.kernel.timefmt import now_iso
from app.store.jobrecord import BOOL_FIELDS, FLOAT_FIELDS, INT_FIELDS, JSON_FIELDS, JobRecord


@dataclass(frozen=True)
class Plan:
    """When work comes due (see `app.dispatch.plan`, which makes these): its `deadline`
    (epoch s), and whether it is `parked` (no message sent before it)."""

    countdown: float
    deadline: float
    parked: bool


class WriteResult(IntEnum):
    """What `write` did (job_write.lua's return codes)."""

    WRITTEN = 1
    REFUSED = 0  # nothing changed: the job has ended, or the caller lost its lease or step
    SEEN = -1  # the cursor's digest was recorded before (a pagination loop); nothing changed


def load(job_id: str) -> JobRecord | None:
    raw = get_redis().hgetall(keys.job(job_id)) if job_id else {}
    return decode(raw) if raw else None


def decode(raw: dict[str, str]) -> JobRecord:
    job: dict[str, Any] = dict(raw)
    if "status" in raw:
        job["status"] = JobState(raw["status"])
    for f in JSON_FIELDS:
        if raw.get(f):
            job[f] = json.loads(raw[f])
        else:
            job[f] = None
    for f in INT_FIELDS:
        job[f] = int(raw[f]) if raw.get(f) else 0
    for f in FLOAT_FIELDS:
        job[f] = float(raw[f]) if raw.get(f) else None
    for f in BOOL_FIELDS:
        job[f] = raw.get(f) == "1"
    return cast(JobRecord, job)


def load_for(job_id: str, tenant_id: str) -> JobRecord:
    """Another tenant's job is indistinguishable from a missing one."""
    job = load(job_id)
    if not job or job.get("tenant_id") != tenant_id:
        raise NotFound(f"job {job_id!r} not found", code="job_not_found")
    return job


def encode(fields: dict[str, Any]) -> list[Any]:
    flat: list[Any] = []
    for k, v in fields.items():
        if k in JSON_FIELDS:
            v = orjson.dumps(v) if v is not None else ""
        elif isinstance(v, bool):
            v = "1" if v else "0"
        elif v is None:
            v = ""
        flat += [k, v]
    return flat


def write(
    job_id: str,
    fields: dict[str, Any],
    *,
    lease: str = "",
    seq: int | None = None,
    status: str | None = None,
    reason: str = "",
    spool: dict[int, list[bytes]] | None = None,
    seen: str = "",
    next_step: tuple[int, Plan] | None = None,
    quiet: bool = False,
    audit: tuple[str, dict[str, Any]] | None = None,
) -> WriteResult:
    """One atomic, fenced update: fields, spooled records per block, a state-log entry, and
    the job's pending work: `next_step` (its number and plan) when the write hands over; a
    terminal `status` settles the step work and makes the webhook pending (job_write.lua).
    A `quiet` status change is published but not logged (a step resuming after a wait).
    `audit` (tenant id, entry) is appended to the tenant's audit log in the same step.

    Returns REFUSED (and changes nothing) when the job has ended or the caller lost its
    lease, SEEN when `seen` (a cursor's digest) was already recorded for this job, else WRITTEN.
    """
    now = time.time()
    fields = {**fields, "updated_at": now}
    if status:
        fields["status"] = status
    pairs = encode(fields)
    keys_ = [*_write_keys(job_id), keys.audit(audit[0]) if audit else ""]
    argv = [*_write_head(job_id, now, lease, seq, seen, next_step, quiet), len(pairs) // 2]
    argv += pairs
    for block, records in sorted((spool or {}).items()):
        keys_.append(keys.job_spool(job_id, block))
        argv += [len(records), *records]
    argv.append(log_entry(status, reason, now) if status or reason else "")
    argv += audit_argv(audit[1], now) if audit else ["", "", ""]
    return WriteResult(int(run_script(source("job_write"), keys_, argv)))  # type: ignore[call-overload]


def _write_keys(job_id: str) -> list[str]:
    """job_write.lua's KEYS[1..7] (the audit log and the spool blocks follow)."""
    return [
        keys.job(job_id),
        keys.job_lease(job_id),
        keys.job_log(job_id),
        keys.job_seen(job_id),
        keys.JOBS_BY_STATE,
        keys.DUE,
        keys.PENDING,
    ]


def _write_head(
    job_id: str,
    now: float,
    lease: str,
    seq: int | None,
    seen: str,
    next_step: tuple[int, Plan] | None,
    quiet: bool,
) -> list[Any]:
    """job_write.lua's ARGV[1..11]: the fence, the seen cursor and the pending work."""
    step, work = next_step if next_step else ("", None)
    return [
        lease,
        "" if seq is None else seq,
        get_settings().spool_ttl_s,
        seen,
        step,
        work.deadline if work else "",
        "1" if work and work.parked else "0",
        keys.step_work(job_id),
        keys.webhook_work(job_id),
        webhook_deadline(now),
        "1" if quiet else "0",
    ]


def audit_argv(entry: dict[str, Any], now: float) -> list[Any]:
    """An audit entry (`app.store.audit`'s shape) and the oldest id its log keeps."""
    retention = get_settings().audit_retention_s
    keep_from = int((now - retention) * 1000)
    return [orjson.dumps({**entry, "at": now_iso(now)}), keep_from, int(retention) + 60]


def webhook_deadline(now: float) -> float:
    """When an ended job's first webhook attempt, sent at `now`, must have started."""
    return now + get_settings().dispatch_grace_s


_NUMBERS = re.compile(r"\d+(?:\.\d+)?")


def log_entry(status: str | None, reason: str, now: float) -> str:
    """A state-log entry; its kind `k` (the status and the reason without its numbers) lets
    a run of alike entries merge into one (app/lua/log.lua)."""
    kind = f"{status or ''}:{_NUMBERS.sub('#', reason)}"
    return json.dumps({"status": status, "at": now_iso(now), "reason": reason, "k": kind})


def log(job_id: str, start: int = 0, end: int = -1) -> list[dict[str, Any]]:
    """State-log entries `start`..`end` (inclusive; negative counts from the newest)."""
    return [_public(e) for e in get_redis().lrange(keys.job_log(job_id), start, end)]


def log_length(job_id: str) -> int:
    return int(get_redis().llen(keys.job_log(job_id)))


def _public(raw: str) -> dict[str, Any]:
    entry: dict[str, Any] = json.loads(raw)
    entry.pop("k", None)
    return entry
