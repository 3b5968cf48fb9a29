"""Creating a job: the record, the consent fields a write's policy adds, and the atomic
create (job_create.lua) that also honours the idempotency key and sends the first step.

`app.services.jobs.enqueue` checks a tenant's call and creates it here; work that starts
jobs of its own (a pipeline's coordinator, `app.work.pipelinerun`) calls `start`.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from app import dispatch
from app.dispatch import lanes
from app.kernel import keys, metrics, storeclock
from app.kernel.errors import Conflict, Forbidden, InvalidInput, NotFound, StoreUnavailable
from app.kernel.lua import source
from app.kernel.redis import STORE_ERRORS, run_script
from app.kernel.registry import registry
from app.kernel.settings import get_settings
from app.store import audit, policies, spool
from app.store.apikeys import Principal
from app.store.jobstore import Plan, encode, load_for, now_iso
from connectors.base import Tool

logger = logging.getLogger("toolqueue.jobs")


@dataclass(frozen=True)
class Options:
    """How a call was asked for, beyond what it runs."""

    callback_url: str | None = None
    idempotency_key: str | None = None
    continued_from: str | None = None  # the continuation it carries on from
    dry_run: bool = False
    # a write a person approved for the work that starts it (a pipeline's sink): its
    # approval, recorded on the job and in its audit entries, instead of holding the job
    approved: dict[str, Any] | None = None


CREATE_FRESH_S = 2.0  # a create Redis runs later than this after it was sent creates nothing
SEND_ERRORS = (OperationalError, RedisError)  # the broker (Redis) did not take the message
_QUEUED = metrics.field("job_transitions", {"state": "queued"})


class CreateOutcome(StrEnum):
    """job_create.lua's reply codes (the first element of its reply)."""

    OK = "ok"  # created, or it existed already (a retried create)
    LATE = "late"  # Redis ran it after the caller stopped waiting: nothing created
    NO_ACCOUNT = "no_account"  # not an account of the tenant
    VENDOR = "vendor"  # the tool does not run on the account's vendor (second: the vendor)
    EXISTS = "exists"  # the idempotency key names a job already (second: its id)


@dataclass(frozen=True)
class Call:
    """What a job runs: the tool on an account with its arguments, how its result is cut, and
    where its pagination stands (a continuation's cursor, or the start)."""

    tool: str
    account_id: str
    args: dict[str, Any]
    fields: list[str] | None
    max_bytes: int
    delivery: str
    max_pages: int | None
    cursor: dict[str, Any]


def start(
    tenant_id: str,
    who: Principal,
    call: Call,
    *,
    slot: str,
    extra: dict[str, Any],
    approved: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A job other work starts (a pipeline's stage job): `call` is checked already, `slot`
    names it among the tenant's idempotency keys (never a tenant's own: those are digests)
    so starting it again returns the same job, and `extra` joins its record. The key's scope
    and the policy apply as to any call (a write may wait for approval, or be refused);
    `approved` is a person's approval of the work as a whole, which the job carries instead
    of waiting for its own."""
    permit(who, call.tool, call.account_id)
    return create(tenant_id, who, call, Options(approved=approved), slot=slot, extra=extra)


def create(
    tenant_id: str,
    who: Principal,
    call: Call,
    opts: Options,
    *,
    slot: str | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record the job and send its first step (the call is checked, the key permitted)."""
    tool = registry().tools[call.tool]
    job_id = str(uuid.uuid4())
    now = time.time()
    record = {**_record(tenant_id, opts, call, job_id, now), **_consent(who, tool, call, opts)}
    made = _Create(
        tenant_id=tenant_id,
        job_id=job_id,
        now=now,
        created_at=now_iso(now),
        job={**record, **(extra or {})},
        vendors=tool.accepts,
        idempotency_slot=slot,
        first=dispatch.plan(now=now),
    )
    try:
        outcome = made.run()
    except STORE_ERRORS as exc:  # sent, unanswered: Redis may have run it before it stopped
        raise StoreUnavailable(
            f"the job store stopped answering after the create was sent, so job {job_id} may "
            f"exist: once the store answers, GET /v1/jobs/{job_id} tells (404: it was not "
            "created), and the same request again with its idempotency_key returns that job",
            job_id=job_id,
        ) from exc
    replay = _refused_or_replay(outcome, tenant_id, call, tool, opts.dry_run)
    if replay is not None:
        return replay
    try:
        dispatch.send(keys.step_work(job_id), 0, made.first, lane=made.job["lane"])
    except SEND_ERRORS as exc:  # the job exists: beat's sweep sends its step after the grace
        logger.warning("job %s recorded, its first step not sent (%s): the sweep will", job_id, exc)
    return {
        "job_id": job_id,
        "status": "queued",
        "tool": call.tool,
        "account_id": call.account_id,
        "created_at": made.created_at,
    }


def permit(who: Principal, tool_name: str, account_id: str) -> None:
    """The key may call this tool on this account (403 naming which it lacks)."""
    tool = registry().tools[tool_name]
    if not who.may_use(tool_name, writes=not tool.read_only):
        need = "read" if tool.read_only else "write"
        raise Forbidden(
            f"this API key may not call {tool_name} (it needs the `{need}` scope and the tool "
            "on the key's list): GET /v1/tools lists what it may call",
            code="tool_not_allowed",
        )
    if not who.may_act_on(account_id):
        raise Forbidden(
            f"this API key may not act on account {account_id}", code="account_not_allowed"
        )


def _consent(who: Principal, tool: Tool, call: Call, opts: Options) -> dict[str, Any]:
    """A write's fields for policy: a dry run previews; a write policy holds for approval
    previews first (`app.work.approval`); a write it denies is refused here (403)."""
    if tool.write is None:
        return {}
    out: dict[str, Any] = {"key_id": who.key_id, "args_digest": args_digest(call.args)}
    if opts.dry_run:
        return {**out, "dry_run": True, "previewing": True}
    records = sum(len(op.items) for op in tool.write.plan(tool.args.model_validate(call.args)))
    policy = policies.effective(who.tenant_id, call.account_id, who.key_id)
    decision = policies.decide(policy, destructive=tool.destructive, records=records)
    if decision.rule == "deny":
        refuse_denied(who, call.tool, call.account_id, decision.reason, records)
    if decision.rule == "approve" and opts.approved is not None:
        return {**out, "approval": {"state": "approved", "reason": decision.reason,
                                    "requested_by": who.key_id, **opts.approved}}  # fmt: skip
    if decision.rule == "approve":
        approval = {"state": "required", "reason": decision.reason, "requested_by": who.key_id}
        return {**out, "previewing": True, "approval": approval}
    return out


def refuse_denied(who: Principal, tool: str, account_id: str, reason: str, records: int) -> None:
    """A write the policy denies: audited, and a 403 naming the policy line."""
    detail = {"tool": tool, "account_id": account_id, "records": records}
    audit.append(who.tenant_id, "write_denied", key_id=who.key_id, **detail, reason=reason)
    raise Forbidden(
        f"{tool} on account {account_id} is refused by {reason}; a tenant admin can change it "
        "(PUT /v1/policy, or the account's or key's policy)",
        code="policy_denied",
    )


def args_digest(args: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(args, option=orjson.OPT_SORT_KEYS)).hexdigest()


def tool_writes(name: str) -> bool:
    return registry().tools[name].write is not None


def _record(tenant_id: str, opts: Options, call: Call, job_id: str, now: float) -> dict[str, Any]:
    """The new job's hash; counters absent from it read as 0 (see jobstore.decode)."""
    out: dict[str, Any] = {
        "tenant_id": tenant_id,
        "account_id": call.account_id,
        "tool": call.tool,
        "args": call.args,
        "max_bytes": call.max_bytes,
        "delivery": call.delivery,
        "status": "queued",
        "created_at": now,
        "updated_at": now,
        "seq": 0,
        "cursor": call.cursor,
        "reserve": spool.reserve(job_id, call.tool, writes=tool_writes(call.tool)),
        "lane": lanes.first(call.delivery, continued=opts.continued_from is not None),
    }
    optional = {
        "max_pages": call.max_pages,
        "fields": call.fields,
        "callback_url": opts.callback_url,
        "idempotency_key": opts.idempotency_key,
        "continued_from": opts.continued_from,
    }
    out.update((k, v) for k, v in optional.items() if v)
    return out


@dataclass(frozen=True)
class _Create:
    """One run of job_create.lua, its KEYS and ARGV by name."""

    tenant_id: str
    job_id: str
    now: float
    created_at: str  # `now` as the API shows it
    job: dict[str, Any]  # the record (`_record`)
    vendors: tuple[str, ...]  # the accounts' vendors the tool runs on
    idempotency_slot: str | None  # the idempotency key's digest, or an internal slot
    first: Plan  # when the first step comes due

    def run(self) -> list[str]:
        """The script's reply: a CreateOutcome code, and its detail for some."""
        reply = run_script(source("job_create"), self.lua_keys(), self.lua_argv())
        return reply  # type: ignore[return-value]

    def lua_keys(self) -> list[str]:
        slot = self.idempotency_slot
        return [
            keys.account(self.job["account_id"]),
            keys.idempotency(self.tenant_id, slot) if slot else "",
            keys.job(self.job_id),
            keys.job_log(self.job_id),
            keys.tenant_jobs(self.tenant_id),
            keys.JOBS_BY_STATE,
            keys.METRICS,
            keys.DUE,
            keys.PENDING,
        ]

    def lua_argv(self) -> list[object]:
        settings = get_settings()
        entry = {"status": "queued", "at": self.created_at, "reason": "enqueued"}
        return [
            self.tenant_id,
            ",".join(self.vendors),
            "1" if self.idempotency_slot else "0",
            self.job_id,
            settings.spool_ttl_s,
            self.now,
            orjson.dumps(entry),
            storeclock.now() + CREATE_FRESH_S,
            _QUEUED,
            keys.step_work(self.job_id),
            self.first.deadline,
            index_ttl(settings),
            *encode(self.job),
        ]


def _refused_or_replay(
    outcome: list[str], tenant_id: str, call: Call, tool: Tool, dry_run: bool
) -> dict[str, Any] | None:
    """Raise for a create refused; the job already created under the idempotency key, shaped
    like a first call's answer with the job's current status; None when it was created."""
    code = outcome[0]
    if code == CreateOutcome.LATE:
        raise StoreUnavailable(
            "the job store answered too late; nothing was created: send the request again"
        )
    if code == CreateOutcome.NO_ACCOUNT:
        raise NotFound(f"account {call.account_id!r} not found", code="account_not_found")
    if code == CreateOutcome.VENDOR:
        raise InvalidInput(
            f"tool {call.tool} runs on {' or '.join(tool.accepts)} accounts; "
            f"{call.account_id} is a {outcome[1]} account",
            code="account_vendor_mismatch",
        )
    if code != CreateOutcome.EXISTS:
        return None
    job = load_for(outcome[1], tenant_id)
    if tool.write is not None and (job["tool"], job["account_id"], job["args"], job["dry_run"]) != (
        call.tool,
        call.account_id,
        call.args,
        dry_run,
    ):
        raise Conflict(
            f"idempotency_key was used for job {outcome[1]} with other arguments; a write's "
            "key names one call: use a new key for a new write",
            code="idempotency_key_reused",
            job_id=outcome[1],
        )
    return {
        "job_id": outcome[1],
        "status": job["status"],
        "tool": job["tool"],
        "account_id": job["account_id"],
        "created_at": now_iso(job["created_at"]),
        "idempotent_replay": True,
    }


def index_ttl(settings: Any) -> int:
    """The longest a job can live: its record outlives its last write by the spool TTL, and
    its last write can come after the longest vendor wait, or a park awaiting credentials."""
    return int(settings.spool_ttl_s + settings.vendor_wait_max_s + settings.reauth_timeout_s)
