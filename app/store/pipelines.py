"""Pipeline records in Redis: the definition, the state, per-stage counts and cursors, the
queues of blocks between stages, and the rejected records.

A pipeline's progress is a set of moves, each one atomic (pipeline_move.lua): a block leaves
a stage (the source's `src` cursor, a job stage's `cur:<stage>`, or the head of a stage's
queue) and, in the same script, its counts, its rejected records and its inputs to the next
stages are written. A move run twice (the coordinator died after it, and ran again) finds
its guard changed and writes nothing, so no block is handed on twice or lost.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from app.kernel import keys
from app.kernel.errors import NotFound
from app.kernel.lua import source
from app.kernel.redis import get_redis, run_script
from app.kernel.settings import get_settings
from app.kernel.timefmt import now_iso


class PipelineState(StrEnum):
    """`queued → running → succeeded | partly_done | failed | cancelled`; `partly_done`: every
    stage ran to its end, and some records are in the rejected list."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTLY_DONE = "partly_done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ENDED = frozenset(
    {PipelineState.SUCCEEDED, PipelineState.PARTLY_DONE, PipelineState.FAILED,
     PipelineState.CANCELLED}
)  # fmt: skip
JSON_FIELDS = ("definition", "error", "approval")
COUNTS = ("in", "out", "rejected", "dropped")


def ttl() -> int:
    """A pipeline lives as long as its jobs' spools (its blocks are read from them)."""
    return get_settings().spool_ttl_s


def count_field(stage: int, name: str) -> str:
    return f"c:{stage}:{name}"


def cursor_field(stage: int) -> str:
    return f"cur:{stage}"  # "<block>|<job id>": the block a job stage is working on


def create(pid: str, tenant_id: str, record: dict[str, Any], idem_slot: str | None) -> str:
    """Store a new pipeline; with an idempotency slot already naming one, that one's id."""
    r = get_redis()
    if idem_slot:
        key = keys.idempotency(tenant_id, idem_slot)
        existing = r.set(key, pid, nx=True, ex=ttl(), get=True)
        if existing:
            return str(existing)
    now = time.time()
    flat = {k: orjson.dumps(v).decode() if k in JSON_FIELDS else v for k, v in record.items()}
    with r.pipeline(transaction=True) as p:
        p.hset(keys.pipeline(pid), mapping={**flat, "created_at": now, "updated_at": now})
        p.expire(keys.pipeline(pid), ttl())
        p.zadd(keys.tenant_pipelines(tenant_id), {pid: now})
        p.expire(keys.tenant_pipelines(tenant_id), ttl())
        p.rpush(keys.pipeline_log(pid), log_entry("queued", "created", now))
        p.expire(keys.pipeline_log(pid), ttl())
        p.execute()
    return pid


def load(pid: str) -> dict[str, Any] | None:
    raw = get_redis().hgetall(keys.pipeline(pid)) if pid else {}
    if not raw:
        return None
    out: dict[str, Any] = dict(raw)
    for f in JSON_FIELDS:
        out[f] = json.loads(raw[f]) if raw.get(f) else None
    return out


def load_for(tenant_id: str, pid: str) -> dict[str, Any]:
    """Another tenant's pipeline is indistinguishable from a missing one."""
    p = load(pid)
    if p is None or p.get("tenant_id") != tenant_id:
        raise NotFound(f"pipeline {pid!r} not found", code="pipeline_not_found")
    return p


def log_entry(status: str | None, reason: str, now: float | None = None) -> str:
    return orjson.dumps(
        {"status": status, "at": now_iso(now or time.time()), "reason": reason}
    ).decode()


def log(pid: str, last: int = 20) -> list[dict[str, Any]]:
    return [json.loads(e) for e in get_redis().lrange(keys.pipeline_log(pid), -last, -1)]


def set_state(
    pid: str,
    fields: dict[str, Any],
    *,
    status: str | None = None,
    reason: str = "",
    mode: str = "",
) -> bool:
    """Change fields (None deletes), and the status with its log entry; refused (False) once
    the pipeline has ended, unless `mode` is "reopen" (then only if it has)."""
    now = time.time()
    if status in ENDED:
        mode = "end"
    argv: list[Any] = [status or "", mode, log_entry(status, reason, now) if reason else "", ttl()]
    for k, v in {**fields, "updated_at": now}.items():
        if k in JSON_FIELDS and v is not None:
            v = orjson.dumps(v).decode()
        argv += [k, "" if v is None else v]
    ok = run_script(source("pipeline_set"), [keys.pipeline(pid), keys.pipeline_log(pid)], argv)
    return bool(ok)


@dataclass
class Input:
    """Records entering stage `stage` as block `block`; `queued`: a stage that runs them
    later takes them from its queue (a pure stage applied at once only keeps a copy, for a
    re-run from it)."""

    stage: int
    block: str
    records: list[Any]
    queued: bool


@dataclass
class Move:
    """One atomic move of a block (pipeline_move.lua). The guard: field `guard` holding
    `expect` (then set to `new`), and/or block `head` at the head of stage `head_stage`'s
    queue."""

    guard: str = ""
    expect: str = ""
    new: str = ""
    head: str = ""
    head_stage: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    retried: int = 0  # rejected entries taken for a retry (the list's first ones)

    def count(self, stage: int, name: str, n: int) -> None:
        if n:
            f = count_field(stage, name)
            self.counts[f] = self.counts.get(f, 0) + n


def move(pid: str, m: Move) -> bool:
    """Run the move; False when its guard failed (it was made already) or the pipeline ended."""
    rec = keys.pipeline(pid)
    lua_keys = [
        rec,
        keys.pipeline_rejected(pid),
        keys.pipeline_queue(pid, m.head_stage) if m.head else rec,
    ]
    argv: list[Any] = [m.guard, m.expect, m.head, m.new, ttl(), len(m.counts)]
    for k, v in m.counts.items():
        argv += [k, v]
    argv.append(len(m.rejected))
    argv += [orjson.dumps(e).decode() for e in m.rejected]
    argv.append(len(m.inputs))
    for i in m.inputs:
        lua_keys += [
            keys.pipeline_input(pid, i.stage, i.block),
            keys.pipeline_entered(pid, i.stage),
            keys.pipeline_queue(pid, i.stage) if i.queued else rec,
        ]
        argv += [i.block, orjson.dumps(i.records).decode(), "1" if i.queued else "0"]
    argv.append(m.retried)
    return bool(run_script(source("pipeline_move"), lua_keys, argv))


def touch(pid: str, stages: int) -> None:
    """Keep a running pipeline's keys as long as it runs (each lives the TTL after this)."""
    life = ttl()
    with get_redis().pipeline(transaction=False) as p:
        for key in (keys.pipeline(pid), keys.pipeline_log(pid), keys.pipeline_rejected(pid),
                    keys.pipeline_cache(pid)):  # fmt: skip
            p.expire(key, life)
        for stage in range(1, stages):
            p.expire(keys.pipeline_queue(pid, stage), life)
        p.execute()


def first_start(pid: str, stage: int) -> None:
    """When a stage first had work (kept once)."""
    get_redis().hsetnx(keys.pipeline(pid), f"t:{stage}:start", time.time())


def queue_head(pid: str, stage: int) -> str | None:
    head = get_redis().lindex(keys.pipeline_queue(pid, stage), 0)
    return str(head) if head is not None else None


def first_busy(pid: str, p: dict[str, Any], stages: int) -> int:
    """The first stage that still has work (a job on a block, or blocks queued): every stage
    before it is done. 0 while the source reads; `stages` when nothing is left."""
    if p.get("src_done") != "1":
        return 0
    for stage in range(1, stages):
        if p.get(cursor_field(stage)) or queue_length(pid, stage):
            return stage
    return stages


def queued(pid: str, stage: int) -> list[str]:
    return [str(b) for b in get_redis().lrange(keys.pipeline_queue(pid, stage), 0, -1)]


def queue_length(pid: str, stage: int) -> int:
    return int(get_redis().llen(keys.pipeline_queue(pid, stage)))


class InputExpired(LookupError):
    """A block's records are gone: they outlived the spool TTL."""


def read_input(pid: str, stage: int, block: str) -> list[Any]:
    raw = get_redis().get(keys.pipeline_input(pid, stage, block))
    if raw is None:
        raise InputExpired(
            f"the records of block {block} entering stage {stage} expired (spool TTL)"
        )
    records: list[Any] = orjson.loads(raw)
    return records


def entered(pid: str, stage: int) -> list[str]:
    return [str(b) for b in get_redis().lrange(keys.pipeline_entered(pid, stage), 0, -1)]


def rejected_count(pid: str) -> int:
    return int(get_redis().llen(keys.pipeline_rejected(pid)))


def rejected_page(pid: str, offset: int, limit: int) -> list[dict[str, Any]]:
    raw = get_redis().lrange(keys.pipeline_rejected(pid), offset, offset + limit - 1)
    return [json.loads(e) for e in raw]


def list_for(tenant_id: str, limit: int) -> list[str]:
    return [str(p) for p in get_redis().zrevrange(keys.tenant_pipelines(tenant_id), 0, limit - 1)]
