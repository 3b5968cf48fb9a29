"""Webhooks: job completions and account events, signed per Standard Webhooks, retried on a
schedule, logged.

Per attempt: 2xx delivered; 410 disables (no more attempts, dead-lettered); 429/502/503/504
wait their `Retry-After` when given; anything else (3xx included: redirects are not followed,
timeouts, refused connections, SSRF refusals) waits the schedule's next delay. A job event whose
schedule runs out lands in the tenant's dead-letter list.

Each series is pending work (`app.dispatch`): the attempt in hand has a deadline, long retries
are parked until beat's sweep sends them, and an attempt whose message was lost or whose worker
died is sent again. An attempt runs only while it is the pending one, under its lease, so of two
copies one posts and moves the series on."""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import requests

from app import dispatch
from app.kernel import keys, metrics
from app.kernel.errors import InvalidInput
from app.kernel.leases import Lease
from app.kernel.redis import get_redis
from app.kernel.settings import get_settings
from app.kernel.signing import sign
from app.kernel.ssrf import check_public_url, pinned
from app.kernel.timefmt import now_iso
from app.store import accounts, spool, tenants
from app.store.jobrecord import JobRecord
from app.store.jobstore import load
from connectors.ratelimit import parse as parse_rate_limit

log = logging.getLogger("toolqueue.webhooks")


def event_body(job_id: str, job: JobRecord, timestamp: str) -> bytes:
    """`{"type": "job.<status>", "timestamp", "data": <result body, first block>}`."""
    count, runs = spool.read_block(job_id, 0)
    data = spool.render(spool.envelope(job_id, job), runs, count)
    return spool.render_event(f"job.{job['status']}", data, timestamp)


# Answers whose `Retry-After` (seconds or HTTP-date) replaces the schedule's next delay.
RETRY_AFTER_STATUSES = frozenset({429, 502, 503, 504})
DISABLED = 410  # the receiver says the endpoint is gone: stop, record, dead-letter
MAX_RETRY_AFTER_S = 86400.0  # a receiver cannot push an attempt out further than a day


@dataclass(frozen=True)
class Outcome:
    """One attempt's result: the receiver's status (None: no answer), an error ("" when it
    took the event) and the `Retry-After` it asked for (seconds), if any."""

    status: int | None
    error: str
    retry_after: float | None = None

    @property
    def disabled(self) -> bool:
        return self.status == DISABLED


def next_delay(outcome: Outcome, attempt: int, schedule: list[float]) -> float | None:
    """Seconds until attempt `attempt + 1` (0-based), or None when there is none: delivered,
    disabled (410), or the schedule is spent. A 429/502/503/504 with `Retry-After` waits what
    it says instead of the schedule's delay (the number of attempts stays the schedule's)."""
    if not outcome.error or outcome.disabled or attempt + 1 >= len(schedule):
        return None
    if outcome.status in RETRY_AFTER_STATUSES and outcome.retry_after is not None:
        return min(outcome.retry_after, MAX_RETRY_AFTER_S)
    return schedule[attempt + 1]


def deliver(job_id: str, attempt: int, manual: str = "") -> None:
    """One attempt; the next is scheduled (countdown or parked), never slept.

    `manual` is "" for the scheduled series, "redeliver" or "replay" for a single attempt asked
    for through the API: same webhook-id, fresh timestamp and signature, no retries of its own
    (one that lands ends the series, and a replay removes the job's dead letter)."""
    member = keys.webhook_work(job_id)
    job = load(job_id)
    if not job or not job.get("callback_url"):
        if not manual:
            dispatch.settle(member, attempt)  # nothing to deliver (any more)
        return
    if manual:
        _attempt(job_id, job, attempt, manual)
    else:
        _as_the_pending_attempt(member, attempt, lambda: _attempt(job_id, job, attempt, manual))


def _as_the_pending_attempt(member: str, attempt: int, run: Callable[[], None]) -> None:
    """Run `attempt` of a delivery series only while it is the pending one, and under its
    lease: of two copies of one attempt (a resend, a redelivery), one posts."""
    if dispatch.pending(member) != attempt:
        return  # a stale copy: the series has moved on, or ended
    lease = Lease(member, get_settings().webhook_timeout_s + 5)
    if not lease.acquire():
        return  # another copy of this attempt is being sent
    with lease:
        if dispatch.pending(member) == attempt:
            run()


def _attempt(job_id: str, job: JobRecord, attempt: int, manual: str) -> None:
    """Post the job's event once, log it, and move the series on (or end it)."""
    member = keys.webhook_work(job_id)
    if not manual and job.get("webhook_delivered"):
        dispatch.settle(member, attempt)  # a manual redelivery landed meanwhile
        return
    msg_id = f"msg_{job_id}"  # stable across attempts so receivers can de-duplicate
    now = datetime.now(UTC)
    body = event_body(job_id, job, now_iso(now.timestamp()))
    started = time.perf_counter()
    outcome = _post(job["callback_url"], "callback_url", job["tenant_id"], msg_id, now, body)
    metrics.incr("webhook_attempts", {"outcome": "failed" if outcome.error else "delivered"})
    schedule = get_settings().webhook_retry_schedule_s
    delay = None if manual else next_delay(outcome, attempt, schedule)
    entry = _job_entry(outcome, attempt, started, msg_id, manual, delay)
    _record_job_attempt(job_id, job, entry, delivered=not outcome.error, manual=manual)
    if manual:
        current = dispatch.pending(member)
        if not outcome.error and current is not None:
            dispatch.settle(member, current)  # it landed: the scheduled series ends
    elif not outcome.error:
        dispatch.settle(member, attempt)
    elif delay is not None:
        log.info("webhook for %s failed (%s); attempt %d in %.1fs", job_id, outcome.error,
                 attempt + 2, delay)  # fmt: skip
        dispatch.advance(member, attempt, dispatch.plan(delay))
    elif dispatch.settle(member, attempt):
        _dead_letter(job_id, job, entry)


def _job_entry(
    outcome: Outcome,
    attempt: int,
    started: float,
    msg_id: str,
    manual: str,
    delay: float | None,
) -> dict[str, Any]:
    """The attempt as its job's delivery log shows it."""
    entry: dict[str, Any] = {
        "attempt": attempt + 1,
        "at": now_iso(),
        "status_code": outcome.status,
        "error": outcome.error or None,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "webhook_id": msg_id,
    }
    if manual:
        entry["manual"] = manual
    if outcome.disabled:
        entry["disabled"] = True
    if delay is not None:
        entry["next_attempt_in_s"] = round(delay, 3)
    return entry


def _record_job_attempt(
    job_id: str, job: JobRecord, entry: dict[str, Any], *, delivered: bool, manual: str
) -> None:
    with get_redis().pipeline(transaction=False) as p:
        p.rpush(keys.job_deliveries(job_id), json.dumps(entry))
        p.expire(keys.job_deliveries(job_id), get_settings().spool_ttl_s)
        if delivered:
            p.hset(keys.job(job_id), "webhook_delivered", 1)
            if manual:
                p.hdel(keys.tenant_dead_letters(job["tenant_id"]), job_id)
        p.execute()


def _dead_letter(job_id: str, job: JobRecord, last: dict[str, Any]) -> None:
    """Every scheduled attempt failed, or the receiver answered 410: the event goes to the
    tenant's dead-letter list (`delivery.exhausted` / `delivery.disabled`), from which
    `POST /v1/webhooks/dead-letters/{job_id}/replay` sends it again."""
    reason = "delivery.disabled" if last.get("disabled") else "delivery.exhausted"
    log.warning("webhook for %s: %s after %d attempt(s)", job_id, reason, last["attempt"])
    entry = {
        "job_id": job_id,
        "event": reason,
        "type": f"job.{job['status']}",
        "webhook_id": last["webhook_id"],
        "callback_url": job["callback_url"],
        "attempts": last["attempt"],
        "last_status_code": last["status_code"],
        "last_error": last["error"],
        "at": now_iso(),
    }
    key = keys.tenant_dead_letters(job["tenant_id"])
    r = get_redis()
    with r.pipeline(transaction=False) as p:
        p.hset(key, job_id, json.dumps(entry))
        p.expire(key, get_settings().spool_ttl_s)  # the job (and so a replay) lives this long
        p.execute()
    # the tenant hears of it where it can still listen: the account's events_url
    emit(job["account_id"], reason, [ACCOUNT_TARGET], {"dead_letter": entry})


def _post(url: str, field: str, tenant_id: str, msg_id: str, now: datetime, body: bytes) -> Outcome:
    """One signed POST (redirects are not followed: a 3xx is a failure). The URL is
    SSRF-checked on every attempt, so a DNS change after registration cannot turn it
    inwards."""
    try:
        check_public_url(url, field=field)
        headers = sign(tenants.webhook_secrets(tenant_id), msg_id, now, body)
        resp = _session().post(
            url,
            data=body,
            headers=headers,
            timeout=get_settings().webhook_timeout_s,
            allow_redirects=False,
        )
    except InvalidInput as exc:
        return Outcome(None, exc.message)
    except requests.RequestException as exc:
        return Outcome(None, f"{type(exc).__name__}")
    if 200 <= resp.status_code < 300:
        return Outcome(resp.status_code, "")
    retry_after = None
    if resp.status_code in RETRY_AFTER_STATUSES and "retry-after" in resp.headers:
        retry_after = parse_rate_limit(resp.headers, resp.status_code).retry_after
    return Outcome(resp.status_code, f"receiver answered {resp.status_code}", retry_after)


_local = threading.local()


def _session() -> requests.Session:
    """A pooled session per worker thread: keep-alive to busy receivers saves a TCP (and TLS)
    handshake per event."""
    s = getattr(_local, "session", None)
    if s is None:
        s = _local.session = requests.Session()
        pinned(s, "callback_url")  # connects only to an address the guard passed
    return s


ACCOUNT_TARGET = ""  # an account event's target: "" is the account's events_url, else a job id
PIPELINE_TARGET = "pipeline="  # a pipeline's ending event goes to its callback_url


def deliver_account_event(event_id: str, target: str, attempt: int) -> None:
    """One attempt of an account event (`account.needs_reauth`, `account.reactivated`) to one
    target: the account's `events_url`, or the `callback_url` of the job it concerns.

    The body was fixed when the event happened (tasks/reauth.py stores it; task arguments stay
    ids only, as Flower shows them); each attempt signs it afresh under one webhook-id, and
    failures retry on the job webhooks' schedule."""
    member = keys.event_work(event_id, target)
    _as_the_pending_attempt(
        member, attempt, lambda: _event_attempt(event_id, target, attempt, member)
    )


def _event_attempt(event_id: str, target: str, attempt: int, member: str) -> None:
    raw = get_redis().get(keys.account_event(event_id))
    event = json.loads(raw) if raw else None
    url, field = _event_target(event.get("account_id", ""), target) if event else (None, "")
    if not event or not url:
        dispatch.settle(member, attempt)
        return
    started = time.perf_counter()
    msg_id, body = f"msg_{event_id}", event["body"].encode()
    outcome = _post(url, field, event["tenant_id"], msg_id, datetime.now(UTC), body)
    entry = {
        "event": event_id,
        "type": event["type"],
        "target": target or "events_url",
        "attempt": attempt + 1,
        "at": now_iso(),
        "status_code": outcome.status,
        "error": outcome.error or None,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    if target.startswith(PIPELINE_TARGET):
        _record_event_attempt(keys.pipeline_deliveries(target[len(PIPELINE_TARGET) :]), entry)
    else:
        _record_event_attempt(keys.account_deliveries(event["account_id"]), entry)
    schedule = get_settings().webhook_retry_schedule_s
    delay = next_delay(outcome, attempt, schedule) if outcome.error else None
    if delay is not None:
        dispatch.advance(member, attempt, dispatch.plan(delay))
    elif dispatch.settle(member, attempt) and outcome.error:
        log.warning(
            "%s to %s failed for good after %d attempts", event_id, entry["target"], attempt + 1
        )


def _event_target(account_id: str, target: str) -> tuple[str | None, str]:
    """Where an account event goes: the account's `events_url`, or a job's `callback_url`."""
    if target == ACCOUNT_TARGET:
        return get_redis().hget(keys.account(account_id), "events_url"), "events_url"
    if target.startswith(PIPELINE_TARGET):
        pid = target[len(PIPELINE_TARGET) :]
        return get_redis().hget(keys.pipeline(pid), "callback_url"), "callback_url"
    return get_redis().hget(keys.job(target), "callback_url"), "callback_url"


def _record_event_attempt(key: str, entry: dict[str, Any], keep: int = 1000) -> None:
    """An event's attempt, in the account's (or a pipeline's) delivery log."""
    with get_redis().pipeline(transaction=False) as p:
        p.rpush(key, json.dumps(entry))
        p.ltrim(key, -keep, -1)
        p.expire(key, get_settings().spool_ttl_s)
        p.execute()


def emit_pipeline(
    pid: str, event_id: str, tenant_id: str, event_type: str, data: dict[str, Any]
) -> None:
    """A pipeline's ending event to its callback_url, once per `event_id` (the pipeline's, or
    a retry's): the body is kept the first time (SET NX), the delivery series starts once."""
    body = {"type": event_type, "timestamp": now_iso(), "data": data}
    event = {"tenant_id": tenant_id, "pipeline_id": pid, "type": event_type,
             "body": orjson.dumps(body).decode()}  # fmt: skip
    r = get_redis()
    r.set(keys.account_event(event_id), orjson.dumps(event), ex=get_settings().spool_ttl_s, nx=True)
    dispatch.start(keys.event_work(event_id, PIPELINE_TARGET + pid))


def emit(account_id: str, event_type: str, targets: list[str], data: dict[str, Any]) -> str | None:
    """Record one account-level event (data: the account's view plus `data`) and queue its
    delivery to each target with a URL (the account's events_url, a job's callback_url), once
    per distinct URL: receivers de-duplicate on the webhook-id, which is the event's."""
    r = get_redis()
    acc = r.hgetall(keys.account(account_id))
    if not acc:
        return None
    urls: dict[str, str] = {}
    for target in targets:
        if target == ACCOUNT_TARGET:
            url = acc.get("events_url")
        else:
            url = r.hget(keys.job(target), "callback_url")
        if url and url not in urls.values():
            urls[target] = url
    if not urls:
        return None
    event_id = "evt_" + secrets.token_hex(12)
    body = {
        "type": event_type,
        "timestamp": now_iso(),
        "data": {**accounts.view(account_id, acc["tenant_id"]), **data},
    }
    event = {
        "tenant_id": acc["tenant_id"],
        "account_id": account_id,
        "type": event_type,
        "body": orjson.dumps(body).decode(),
    }
    r.set(keys.account_event(event_id), orjson.dumps(event), ex=get_settings().spool_ttl_s)
    for target in urls:
        dispatch.start(keys.event_work(event_id, target))
    return event_id
