"""Job records in Redis: state, progress, checkpoint, and the log of every state change."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, cast

import orjson

from app.kernel import keys
from app.kernel.errors import NotFound
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.settings import get_settings
from app.kernel.states import JobState
from app.kernel.timefmt import now_iso
from app.store.jobrecord import FLOAT_FIELDS, INT_FIELDS, JSON_FIELDS, JobRecord


@dataclass(frozen=True)
class Plan:
    """When work comes due (see `app.dispatch.plan`, which makes these): its `deadline`
    (epoch s), and whether it is `parked` (no message sent before it)."""

    countdown: float
    deadline: float
    parked: bool


def work_lua() -> str:
    """The prelude of pending-work functions (app/lua/work.lua) for scripts that hand over or
    end work in the same atomic step as their own change."""
    return source("work") + "\n"


# Every script that changes a job's status moves the job in the gauge of unfinished jobs
# by state (keys.JOBS_BY_STATE) in the same atomic step, so the gauge cannot drift from the
# records. Prepend to a script; call tq_move(gauge key, old status, new status).
GAUGE_LUA = """
local function tq_unfinished(s)
  return s and s ~= '' and s ~= 'succeeded' and s ~= 'failed' and s ~= 'cancelled'
end
local function tq_move(gauge, old, new)
  if old == new then return end
  if tq_unfinished(old) then redis.call('HINCRBY', gauge, old, -1) end
  if tq_unfinished(new) then redis.call('HINCRBY', gauge, new, 1) end
end
"""

# Fenced write: only the lease holder of the current step (or anyone, with an empty token)
# may change a job that has not ended; optionally append spooled records and a log entry,
# and record a pagination cursor as seen (-1, and no change, if it was seen before: a loop).
# It also keeps the job's pending work (app/dispatch.py) in the same atomic step: the next
# step's deadline when the write hands over (ARGV[5..7]); on a terminal status, the step work
# settled and, for a job with a callback_url, its webhook's first attempt made pending.
# KEYS: job, lease, log, seen, jobs-by-state gauge, due, pending, spool blocks...
# ARGV: lease, seq, ttl, seen digest, next step ('' none), its deadline, parked, step member,
#       webhook member, webhook deadline, quiet log entry ('1'), #pairs, pairs..., per block:
#       #records, records..., log entry (app/lua/log.lua).
_WRITE = work_lua() + source("log") + "\n" + GAUGE_LUA + """
local job, lease, log, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local due, pending = KEYS[6], KEYS[7]
if ARGV[1] ~= '' and redis.call('GET', lease) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', job, 'seq') ~= ARGV[2] then return 0 end
local st = redis.call('HGET', job, 'status')
if not st or st == 'succeeded' or st == 'failed' or st == 'cancelled' then return 0 end
local ttl = tonumber(ARGV[3])
if ARGV[4] ~= '' then
  if redis.call('SADD', seen, ARGV[4]) == 0 then return -1 end
  redis.call('EXPIRE', seen, ttl)
end
local i = 12
local np = tonumber(ARGV[i]); i = i + 1
local h = {}
for j = 1, np * 2 do h[j] = ARGV[i]; i = i + 1 end
for k = 8, #KEYS do
  local n = tonumber(ARGV[i]); i = i + 1
  local batch = {}
  for j = 1, n do
    batch[#batch + 1] = ARGV[i]; i = i + 1
    if #batch == 500 then redis.call('RPUSH', KEYS[k], unpack(batch)); batch = {} end
  end
  if #batch > 0 then redis.call('RPUSH', KEYS[k], unpack(batch)) end
  if n > 0 then redis.call('EXPIRE', KEYS[k], ttl) end
end
local ended = false
for j = 1, #h, 2 do
  if h[j] == 'status' then
    tq_move(KEYS[5], st, h[j + 1])
    ended = not tq_unfinished(h[j + 1])
  end
end
if np > 0 then redis.call('HSET', job, unpack(h)) end
redis.call('EXPIRE', job, ttl)
if ARGV[5] ~= '' then tq_pending(due, pending, ARGV[8], ARGV[5], ARGV[6], ARGV[7]) end
if ended then
  tq_settled(due, pending, ARGV[8])
  local url = redis.call('HGET', job, 'callback_url')
  if url and url ~= '' and redis.call('HEXISTS', pending, ARGV[9]) == 0 then
    tq_pending(due, pending, ARGV[9], '0', ARGV[10], '0')
  end
end
local entry = ARGV[i]
if entry and entry ~= '' then tq_log(log, entry, ARGV[11], ttl) end
return 1
"""


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
    job["truncated"] = raw.get("truncated") == "1"
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
) -> int:
    """One atomic, fenced update: fields, spooled records per block, a state-log entry, and
    the job's pending work: `next_step` (its number and plan) when the write hands over; a
    terminal `status` settles the step work and makes the webhook pending (see `_WRITE`).
    A `quiet` status change is published but not logged (a step resuming after a wait).

    Returns 0 (and changes nothing) when the job has ended or the caller lost its lease,
    -1 when `seen` (a cursor's digest) was already recorded for this job, else 1.
    """
    now = time.time()
    fields = {**fields, "updated_at": now}
    if status:
        fields["status"] = status
    entry = log_entry(status, reason, now) if status or reason else ""
    pairs = encode(fields)
    blocks = sorted((spool or {}).items())
    keys_ = [
        keys.job(job_id),
        keys.job_lease(job_id),
        keys.job_log(job_id),
        keys.job_seen(job_id),
        keys.JOBS_BY_STATE,
        keys.DUE,
        keys.PENDING,
    ]
    step, work = next_step if next_step else ("", None)
    argv: list[Any] = [
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
        len(pairs) // 2,
    ]
    argv += pairs
    for block, records in blocks:
        keys_.append(keys.job_spool(job_id, block))
        argv.append(len(records))
        argv += records
    argv.append(entry)
    return int(run_script(_WRITE, keys_, argv))  # type: ignore[call-overload]


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
