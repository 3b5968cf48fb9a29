"""Job records in Redis: state, progress, checkpoint, and the log of every state change."""

from __future__ import annotations

import json
import time
from typing import Any, Literal

import orjson

from app import keys
from app.errors import NotFound
from app.redis import get_redis, run_script
from app.settings import get_settings
from app.timefmt import now_iso

JobState = Literal[
    "queued",
    "running",
    "waiting_rate_limit",
    "waiting_vendor",
    "needs_reauth",
    "succeeded",
    "failed",
    "cancelled",
]
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
JSON_FIELDS = ("args", "fields", "cursor", "error", "prev_cursor")
INT_FIELDS = (
    "seq",
    "enqueued_seq",
    "pages",
    "records",
    "bytes",
    "block",
    "block_bytes",
    "block_records",
    "blocks",
    "max_bytes",
    "attempts",
    "max_pages",
    "limited",
    "reserve",
)
FLOAT_FIELDS = (
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "retry_at",
    "waited_s",
    "retry_waited_s",
    "vendor_waited_s",
)

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
_WRITE = GAUGE_LUA + """
local job, lease, log, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if ARGV[1] ~= '' and redis.call('GET', lease) ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' and redis.call('HGET', job, 'seq') ~= ARGV[2] then return 0 end
local st = redis.call('HGET', job, 'status')
if not st or st == 'succeeded' or st == 'failed' or st == 'cancelled' then return 0 end
local ttl = tonumber(ARGV[3])
if ARGV[4] ~= '' then
  if redis.call('SADD', seen, ARGV[4]) == 0 then return -1 end
  redis.call('EXPIRE', seen, ttl)
end
local i = 5
local np = tonumber(ARGV[i]); i = i + 1
local h = {}
for j = 1, np * 2 do h[j] = ARGV[i]; i = i + 1 end
for k = 6, #KEYS do
  local n = tonumber(ARGV[i]); i = i + 1
  local batch = {}
  for j = 1, n do
    batch[#batch + 1] = ARGV[i]; i = i + 1
    if #batch == 500 then redis.call('RPUSH', KEYS[k], unpack(batch)); batch = {} end
  end
  if #batch > 0 then redis.call('RPUSH', KEYS[k], unpack(batch)) end
  if n > 0 then redis.call('EXPIRE', KEYS[k], ttl) end
end
for j = 1, #h, 2 do
  if h[j] == 'status' then tq_move(KEYS[5], st, h[j + 1]) end
end
if np > 0 then redis.call('HSET', job, unpack(h)) end
redis.call('EXPIRE', job, ttl)
local entry = ARGV[i]
if entry and entry ~= '' then
  redis.call('RPUSH', log, entry)
  redis.call('EXPIRE', log, ttl)
  redis.call('PUBLISH', KEYS[3] .. ':events', entry)
end
return 1
"""


def load(job_id: str) -> dict[str, Any] | None:
    raw = get_redis().hgetall(keys.job(job_id)) if job_id else {}
    return decode(raw) if raw else None


def decode(raw: dict[str, str]) -> dict[str, Any]:
    job: dict[str, Any] = dict(raw)
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
    return job


def load_for(job_id: str, tenant_id: str) -> dict[str, Any]:
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
) -> int:
    """One atomic, fenced update: fields, spooled records per block, and a state-log entry.

    Returns 0 (and changes nothing) when the job has ended or the caller lost its lease,
    -1 when `seen` (a cursor's digest) was already recorded for this job, else 1.
    """
    now = time.time()
    fields = {**fields, "updated_at": now}
    entry = ""
    if status:
        fields["status"] = status
        entry = json.dumps({"status": status, "at": now_iso(now), "reason": reason})
    elif reason:
        entry = json.dumps({"status": None, "at": now_iso(now), "reason": reason})
    pairs = encode(fields)
    blocks = sorted((spool or {}).items())
    keys_ = [
        keys.job(job_id),
        keys.job_lease(job_id),
        keys.job_log(job_id),
        keys.job_seen(job_id),
        keys.JOBS_BY_STATE,
    ]
    argv: list[Any] = [
        lease,
        "" if seq is None else seq,
        get_settings().spool_ttl_s,
        seen,
        len(pairs) // 2,
    ]
    argv += pairs
    for block, records in blocks:
        keys_.append(keys.job_spool(job_id, block))
        argv.append(len(records))
        argv += records
    argv.append(entry)
    return int(run_script(_WRITE, keys_, argv))  # type: ignore[call-overload]


def log(job_id: str) -> list[dict[str, Any]]:
    return [json.loads(e) for e in get_redis().lrange(keys.job_log(job_id), 0, -1)]
