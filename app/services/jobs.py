"""Jobs as the surfaces see them: enqueue (call now), read, result, cancel (fetch later).

The HTTP API, the MCP server and trusted in-process agents all call these functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app import dispatch
from app.kernel import keys, metrics
from app.kernel.crypto import digest
from app.kernel.errors import Conflict, InvalidInput, NotFound
from app.kernel.redis import get_async_redis, get_redis
from app.kernel.registry import registry
from app.kernel.settings import get_settings
from app.kernel.ssrf import check_public_url
from app.kernel.states import TERMINAL
from app.services import routing
from app.store import apikeys, spool
from app.store.apikeys import Principal
from app.store.jobrecord import JobRecord
from app.store.jobstore import (
    decode,
    load_for,
    log,
    log_length,
    now_iso,
    write,
)
from app.work import launch
from app.work.launch import (  # what the surfaces and tests use from here
    Call,
    Options,
    permit,
)

logger = logging.getLogger("toolqueue.jobs")




class JobCreate(BaseModel):
    """A tool call. Either `tool` + `account_id` (+ `args`), or a `continuation`. Strict: no
    bool or numeric string becomes an int (`"max_pages": true` is refused)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    tool: str | None = Field(None, description="Tool name from GET /v1/tools", max_length=200)
    account_id: str | None = Field(None, max_length=100)
    args: dict[str, Any] = Field(default_factory=dict, description="The tool's arguments")
    fields: list[str] | None = Field(
        None, max_length=200, description="Project each record to these (dotted) fields"
    )
    callback_url: str | None = Field(None, max_length=2000, description="Webhook target")
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    max_bytes: int | None = Field(None, ge=4096, le=131072, description="Result body cap")
    max_pages: int | None = Field(
        None, ge=1, le=1_000_000, description="Page budget: stop and return a continuation"
    )
    delivery: Literal["single", "blocks"] = Field(
        "single", description="`blocks`: fetch everything into consecutive capped blocks"
    )
    continuation: str | None = Field(None, max_length=200, description="From a truncated result")
    dry_run: bool = Field(
        False,
        description="A write tool: say what it would do to each record (current and proposed "
        "values) without writing anything",
    )

    @model_validator(mode="after")
    def _shape(self) -> JobCreate:
        if self.continuation is None and not (self.tool and self.account_id):
            raise ValueError("give `tool` and `account_id`, or a `continuation`")
        carried = {"tool", "account_id", "args", "fields", "max_bytes", "delivery", "max_pages",
                   "dry_run"}  # fmt: skip
        if self.continuation is not None and carried & self.model_fields_set:
            raise ValueError(
                "a `continuation` carries its tool, account_id, args, fields, max_bytes, "
                "delivery and max_pages: omit them (only callback_url and idempotency_key "
                "may be added)"
            )
        if self.fields is not None and any(not f or len(f) > 200 for f in self.fields):
            raise ValueError("each of `fields` must be 1-200 characters")
        return self






def enqueue(tenant_id: str, req: JobCreate, key: Principal | None = None) -> dict[str, Any]:
    """Record the job and send its first step; no vendor call happens here. `key` is the
    caller's API key (None: the tenant itself, for trusted in-process callers): what it may
    call, and the policy that decides whether a write runs, waits for approval or is refused."""
    who = key or apikeys.full(tenant_id)
    cont = req.continuation
    if cont is None and req.tool in registry().tools:  # before its arguments are checked
        permit(who, req.tool or "", req.account_id or "")
    call = _continued(tenant_id, cont) if cont is not None else _validated(tenant_id, req)
    permit(who, call.tool, call.account_id)  # a continuation's, or a unified write's vendor tool
    if req.callback_url:
        check_public_url(req.callback_url)
    slot = digest(req.idempotency_key) if req.idempotency_key else None
    opts = Options(req.callback_url, req.idempotency_key, req.continuation, req.dry_run)
    return launch.create(tenant_id, who, call, opts, slot=slot)






def _continued(tenant_id: str, token: str) -> Call:
    """The call a continuation carries on (the tenant's own, still stored)."""
    cont = spool.load_continuation(token)
    if not cont or cont["tenant_id"] != tenant_id:
        raise NotFound("unknown or expired continuation", code="continuation_not_found")
    return Call(
        tool=cont["tool"],
        account_id=cont["account_id"],
        args=cont["args"],
        fields=cont["fields"],
        max_bytes=cont["max_bytes"],
        delivery=cont["delivery"],
        max_pages=cont.get("max_pages"),
        cursor=cont["cursor"],
    )


def _validated(tenant_id: str, req: JobCreate) -> Call:
    """A first call: a known tool, its arguments checked against the tool's model (a unified
    write: then as its vendor tool, `app.services.routing`)."""
    tool_name = req.tool or ""
    tool = registry().tools.get(tool_name)
    if tool is None:
        raise InvalidInput(
            f"unknown tool {tool_name!r}; GET /v1/tools lists them", code="unknown_tool"
        )
    try:
        # strict, as JSON (app.strictjson): no "10" or true for an int, ISO dates still parse
        args = tool.args.model_validate_json(json.dumps(req.args), strict=True).model_dump(
            mode="json"
        )
    except ValidationError as exc:
        raise InvalidInput(explain(exc, "args"), code="invalid_args") from None
    if tool.routes is not None:
        tool, args = routing.route(tenant_id, tool, req.account_id or "", args)
        tool_name = tool.name
    if tool.write is not None:
        _write_options(req)
    elif req.dry_run:
        raise InvalidInput(
            f"`dry_run` applies to write tools; {tool_name} only reads", code="invalid_option"
        )
    return Call(
        tool=tool_name,
        account_id=req.account_id or "",
        args=args,
        fields=req.fields,
        max_bytes=req.max_bytes or get_settings().spool_max_bytes,
        # a write never stops at the cap (that would leave records unwritten): its results
        # go in consecutive blocks, each under the cap
        delivery="blocks" if tool.write is not None else req.delivery,
        max_pages=req.max_pages,
        cursor={"page": None, "skip": 0},
    )












def _write_options(req: JobCreate) -> None:
    """A write's result is one record per input record: no projection, no page budget."""
    for name in ("fields", "max_pages"):
        if getattr(req, name) is not None:
            raise InvalidInput(
                f"`{name}` does not apply to write tools ({req.tool}): omit it",
                code="invalid_option",
            )








MAX_WAIT_S = 60.0




def get(tenant_id: str, job_id: str) -> dict[str, Any]:
    return view(load_for(job_id, tenant_id), job_id)


async def changed(job_id: str, status: str, timeout_s: float) -> bool:
    """Wait (no polling: the job's state-log channel) until the job leaves `status`, at most
    `timeout_s`; True when it did. The caller checked the tenant."""
    r = get_async_redis()
    pubsub = r.pubsub(ignore_subscribe_messages=True)
    deadline = time.monotonic() + min(timeout_s, MAX_WAIT_S)
    with contextlib.suppress(RedisConnectionError, RedisTimeoutError):  # answer what we have
        return await _changed(r, pubsub, job_id, status, deadline)
    return False


async def _changed(r: Any, pubsub: Any, job_id: str, status: str, deadline: float) -> bool:
    try:
        await pubsub.subscribe(keys.job_events(job_id))
        # read after subscribing, so a change between the caller's read and now is not missed
        if await r.hget(keys.job(job_id), "status") != status:
            return True
        while (left := deadline - time.monotonic()) > 0:
            msg = await pubsub.get_message(timeout=left)
            if msg is None:
                await asyncio.sleep(0)  # a timeout, or a subscribe confirmation
                continue
            new = json.loads(msg["data"]).get("status")
            if new is not None and new != status:
                return True
        return False
    finally:
        await pubsub.aclose()


HISTORY_VIEW = 20  # state-log entries a job view carries (the newest); `history` pages on
HISTORY_PAGE_MAX = 500


def history(tenant_id: str, job_id: str, offset: int = 0, limit: int = 100) -> dict[str, Any]:
    """The job's whole state log, oldest first, a page at a time."""
    load_for(job_id, tenant_id)
    limit = max(1, min(limit, HISTORY_PAGE_MAX))
    total = log_length(job_id)
    entries = log(job_id, offset, offset + limit - 1) if offset < total else []
    out: dict[str, Any] = {"job_id": job_id, "total": total, "offset": offset, "entries": entries}
    if offset + len(entries) < total:
        out["next_offset"] = offset + len(entries)
    return out


def brief(tenant_id: str, job_id: str) -> dict[str, Any]:
    """What an agent needs to decide its next move, in a few hundred bytes: state, progress,
    when it resumes, and why (the latest entry of its history), plus the continuation or
    error once it has ended. The whole view is GET /v1/jobs/{id}."""
    job = load_for(job_id, tenant_id)
    full = view(job, job_id, history_view=1)
    last = full["history"][-1] if full["history"] else {}
    out = {k: full[k] for k in ("job_id", "tool", "status", "progress", "truncated")}
    if full["retry_at"]:
        out["retry_at"] = full["retry_at"]
    out["reason"] = (last.get("reason") or "")[:300]
    if last.get("count"):
        out["reason_count"] = last["count"]
    for key in ("continuation", "error", "writes", "dry_run", "preview", "approval"):
        if key in full:
            out[key] = full[key]
    out["history_total"] = full["history_total"]
    return out


def view(job: JobRecord, job_id: str, history_view: int = HISTORY_VIEW) -> dict[str, Any]:
    def iso(at: float | None) -> str | None:
        return now_iso(at) if at else None

    out: dict[str, Any] = {
        "job_id": job_id,
        "tool": job["tool"],
        "account_id": job["account_id"],
        "status": job["status"],
        "delivery": job.get("delivery") or "single",
        "progress": {
            "pages": job["pages"],
            "records": job["records"],
            "bytes": job["bytes"],
            "blocks": job["blocks"] if job["records"] else 0,
        },
        "created_at": iso(job["created_at"]),
        "updated_at": iso(job["updated_at"]),
        "started_at": iso(job["started_at"]),
        "finished_at": iso(job["finished_at"]),
        "retry_at": iso(job["retry_at"]) if job["status"] not in TERMINAL else None,
        "truncated": job["truncated"],
        "history": log(job_id, -history_view),
        "history_total": log_length(job_id),
    }
    if job.get("continuation"):
        out["continuation"] = job["continuation"]
    if job.get("error"):
        out["error"] = job["error"]
    if job.get("writes"):
        out["writes"] = job["writes"]
    out.update(consent_view(job))
    if job.get("pipeline"):  # a pipeline's stage job: which pipeline, stage and block
        out["pipeline"] = {
            "pipeline_id": job.get("pipeline"),
            "stage": int(job.get("pstage") or 0),
            "kind": job.get("pkind"),
            "block": job.get("pblock"),
        }
    if job.get("callback_url"):
        out["callback_url"] = job["callback_url"]
    return out


def consent_view(job: JobRecord) -> dict[str, Any]:
    """A write job's dry run, preview summary and approval, as a job view shows them."""
    out: dict[str, Any] = {}
    if job.get("dry_run"):
        out["dry_run"] = True
    if job.get("preview"):
        out["preview"] = job["preview"]
    a = job.get("approval")
    if a:
        shown = {k: a[k] for k in ("state", "reason", "binding", "decided_by") if a.get(k)}
        for k in ("expires_at", "decided_at"):
            if a.get(k):
                shown[k] = now_iso(float(a[k]))
        if a.get("note"):
            shown["note"] = a["note"]
        out["approval"] = shown
    return out


def list_jobs(tenant_id: str, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The tenant's newest jobs (optionally in one state), a line each; expired ones drop
    out of the index as they are met."""
    r = get_redis()
    index = keys.tenant_jobs(tenant_id)
    rows: list[dict[str, Any]] = []
    start, batch = 0, max(limit, 50)
    while len(rows) < limit:
        ids = r.zrevrange(index, start, start + batch - 1)
        if not ids:
            break
        start += batch
        with r.pipeline(transaction=False) as p:
            for job_id in ids:
                p.hgetall(keys.job(job_id))
            raws = p.execute()
        gone = [job_id for job_id, raw in zip(ids, raws, strict=True) if not raw]
        if gone:
            r.zrem(index, *gone)
            start -= len(gone)
        for job_id, raw in zip(ids, raws, strict=True):
            if raw and (state is None or raw.get("status") == state):
                job = decode(raw)
                rows.append(
                    {
                        "job_id": job_id,
                        "tool": job["tool"],
                        "status": job["status"],
                        "pages": job["pages"],
                        "records": job["records"],
                        "created_at": now_iso(job["created_at"]) if job["created_at"] else None,
                        "updated_at": now_iso(job["updated_at"]) if job["updated_at"] else None,
                    }
                )
    return rows[:limit]


def deliveries(tenant_id: str, job_id: str) -> dict[str, Any]:
    """Every webhook attempt for the job: time, status code, latency, error."""
    job = load_for(job_id, tenant_id)
    raw = get_redis().lrange(keys.job_deliveries(job_id), 0, -1)
    return {
        "job_id": job_id,
        "callback_url": job.get("callback_url"),
        "deliveries": [json.loads(e) for e in raw],
    }


def ended(tenant_id: str, job_id: str, what: str) -> JobRecord:
    """The tenant's job, which must have ended for `what` to exist (409 `job_not_finished`)."""
    job = load_for(job_id, tenant_id)
    if job["status"] not in TERMINAL:
        raise Conflict(
            f"job {job_id} is {job['status']}; {what} exists once it ends",
            code="job_not_finished",
            status=job["status"],
        )
    return job


def redeliver(tenant_id: str, job_id: str, manual: str = "redeliver") -> dict[str, Any]:
    """Send the ended job's event once more, now: same webhook-id (receivers de-duplicate on
    it), a fresh timestamp and signature. One attempt, logged with the others; `replay` also
    clears the job's dead letter when it lands."""
    job = ended(tenant_id, job_id, "its event")
    if not job.get("callback_url"):
        raise Conflict(f"job {job_id} has no callback_url", code="no_callback_url")
    attempt = get_redis().llen(keys.job_deliveries(job_id))
    dispatch.send_once(
        dispatch.WEBHOOK_TASK, [job_id, attempt, manual], f"{job_id}.webhook.{attempt}.{manual}"
    )
    return {"job_id": job_id, "webhook_id": f"msg_{job_id}", "status": "queued"}


def result(tenant_id: str, job_id: str, block: int = 0) -> bytes:
    """The result body (or export block `block`): at most the job's `max_bytes`."""
    job = ended(tenant_id, job_id, "the result")
    if not 0 <= block < max(job["blocks"], 1):
        raise NotFound(
            f"block {block} does not exist; the job has {job['blocks']} block(s)",
            code="block_not_found",
        )
    count, runs = spool.read_block(job_id, block)
    return spool.render(spool.envelope(job_id, job, block=block), runs, count)


PARTIAL_HINT = "`p:<block>.<run>`, a `continuation` from an earlier partial read of this job"


def parse_after(after: str | None) -> tuple[int, int]:
    """(block, run) of a partial cursor (None: the start); InvalidInput when malformed."""
    if after is None:
        return 0, 0
    pos = spool.parse_partial(after)
    if pos is None:
        if after.startswith(spool.CONTINUATION_PREFIX):
            why = "that is a job continuation (POST it to /v1/jobs to start the next job)"
        else:
            why = "malformed"
        raise InvalidInput(f"`after` must be {PARTIAL_HINT}; {why}", code="invalid_continuation")
    return pos


def partial(tenant_id: str, job_id: str, after: str | None = None) -> tuple[bytes, bool]:
    """The records spooled so far after the partial cursor `after` (None: from the start),
    readable while the job runs: at most one block (so at most the job's `max_bytes`), whole
    spool elements only. `done: true` once the job has ended and this was its last block
    (`continuation` is then the job's own, when truncated); otherwise `continuation` is the
    cursor to read on from. Returns the body and `done`."""
    block, start = parse_after(after)
    # the job first, then the spool: runs pushed in between are read now or on the next call
    job = load_for(job_id, tenant_id)
    blocks = max(job["blocks"], 1)
    if block >= blocks:
        raise NotFound(
            f"block {block} does not exist (yet); the job has {job['blocks']} block(s)",
            code="block_not_found",
        )
    count, runs = spool.read_block(job_id, block, start)
    last = block == blocks - 1
    done = last and job["status"] in TERMINAL
    if done:
        env = spool.envelope(job_id, job, block=block, done=True)
    elif not last:  # the job has moved on: this block is complete
        env = spool.envelope(
            job_id, job, block=block, done=False, partial=spool.partial_token(block + 1, 0)
        )
    else:
        token = spool.partial_token(block, start + len(runs))
        env = spool.envelope(job_id, job, block=block, done=False, partial=token)
    return spool.render(env, runs, count), done


def cancel(tenant_id: str, job_id: str) -> dict[str, Any]:
    job = load_for(job_id, tenant_id)
    if job["status"] in TERMINAL and job["status"] != "cancelled":
        raise Conflict(
            f"job {job_id} already {job['status']}",
            code="job_already_finished",
            status=job["status"],
        )
    if job["status"] != "cancelled" and write(
        job_id,
        {"finished_at": time.time(), "retry_at": None},
        status="cancelled",
        reason="cancelled by the caller",
    ):
        metrics.incr("job_transitions", {"state": "cancelled"})
        if job.get("callback_url"):  # pending since the write; this sends it at once
            dispatch.send(keys.webhook_work(job_id), 0)
    return get(tenant_id, job_id)


def tools(who: Principal | None = None) -> list[dict[str, Any]]:
    """The tools `who` may call (None: all)."""
    return [
        {
            "name": t.name,
            "vendors": list(t.accepts),
            "description": t.description,
            "input_schema": t.args.model_json_schema(),
            "annotations": t.hints,  # the MCP tool annotations, as tools/list sends them
        }
        for t in registry().tools.values()
        if who is None or who.may_use(t.name, writes=not t.read_only)
    ]


def explain(exc: ValidationError, prefix: str = "args") -> str:
    return explain_errors(exc.errors(), prefix)


def explain_errors(errors: Any, prefix: str) -> str:
    """The first few validation errors, each as `<where>: <what>`."""
    parts = []
    for err in list(errors)[:5]:
        loc = ".".join(str(p) for p in (prefix, *err["loc"]))
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
