"""Webhooks: job completions and account events, signed per Standard Webhooks, retried on a
schedule, logged."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime

import requests

from app import keys, spool, tenants
from app.celery import app
from app.errors import InvalidInput
from app.jobstore import load
from app.redis import get_redis
from app.settings import get_settings
from app.ssrf import check_public_url
from app.timefmt import now_iso
from app.webhooks import sign

log = logging.getLogger("toolqueue.webhooks")


def event_body(job_id: str, job: dict, timestamp: str) -> bytes:
    """`{"type": "job.<status>", "timestamp", "data": <result body, first block>}`."""
    count, runs = spool.read_block(job_id, 0)
    data = spool.render(spool.envelope(job_id, job), runs, count)
    return spool.render_event(f"job.{job['status']}", data, timestamp)


@app.task(name="toolqueue.deliver_webhook", ignore_result=True)
def deliver(job_id: str, attempt: int) -> None:
    """One attempt; the next is a countdown from the schedule (never a sleep)."""
    job = load(job_id)
    if not job or not job.get("callback_url"):
        return
    settings = get_settings()
    url = job["callback_url"]
    msg_id = f"msg_{job_id}"  # stable across attempts so receivers can de-duplicate
    now = datetime.now(UTC)
    body = event_body(job_id, job, now_iso(now.timestamp()))
    started = time.perf_counter()
    status, error = _post(url, "callback_url", job["tenant_id"], msg_id, now, body)
    entry = {
        "attempt": attempt + 1,
        "at": now_iso(),
        "status_code": status,
        "error": error or None,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "webhook_id": msg_id,
    }
    r = get_redis()
    r.rpush(keys.job_deliveries(job_id), json.dumps(entry))
    r.expire(keys.job_deliveries(job_id), settings.spool_ttl_s)
    if not error:
        return
    schedule = settings.webhook_retry_schedule_s
    if attempt + 1 < len(schedule):
        log.info(
            "webhook for %s failed (%s); attempt %d in %.0fs",
            job_id,
            error,
            attempt + 2,
            schedule[attempt + 1],
        )
        deliver.apply_async(args=[job_id, attempt + 1], countdown=schedule[attempt + 1])
    else:
        log.warning("webhook for %s failed for good after %d attempts", job_id, attempt + 1)


def _post(
    url: str, field: str, tenant_id: str, msg_id: str, now: datetime, body: bytes
) -> tuple[int | None, str]:
    """One signed POST: (the receiver's status, or None; an error, or "" when it took it).
    The URL is SSRF-checked on every attempt, so a DNS change after registration cannot
    turn it inwards."""
    try:
        check_public_url(url, field=field)
        headers = sign(tenants.webhook_secret(tenant_id), msg_id, now, body)
        resp = requests.post(
            url,
            data=body,
            headers=headers,
            timeout=get_settings().webhook_timeout_s,
            allow_redirects=False,
        )
    except InvalidInput as exc:
        return None, exc.message
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}"
    if not 200 <= resp.status_code < 300:
        return resp.status_code, f"receiver answered {resp.status_code}"
    return resp.status_code, ""


ACCOUNT_TARGET = ""  # an account event's target: "" is the account's events_url, else a job id


@app.task(name="toolqueue.deliver_account_event", ignore_result=True)
def deliver_account_event(event_id: str, target: str, attempt: int) -> None:
    """One attempt of an account event (`account.needs_reauth`, `account.reactivated`) to one
    target: the account's `events_url`, or the `callback_url` of the job it concerns.

    The body was fixed when the event happened (tasks/reauth.py stores it; task arguments stay
    ids only, as Flower shows them); each attempt signs it afresh under one webhook-id, and
    failures retry on the job webhooks' schedule."""
    r = get_redis()
    raw = r.get(keys.account_event(event_id))
    if not raw:
        return
    event = json.loads(raw)
    account_id = event["account_id"]
    if target == ACCOUNT_TARGET:
        url, field = r.hget(keys.account(account_id), "events_url"), "events_url"
    else:
        url, field = r.hget(keys.job(target), "callback_url"), "callback_url"
    if not url:
        return
    settings = get_settings()
    started = time.perf_counter()
    status, error = _post(
        url,
        field,
        event["tenant_id"],
        f"msg_{event_id}",
        datetime.now(UTC),
        event["body"].encode(),
    )
    entry = {
        "event": event_id,
        "type": event["type"],
        "target": target or "events_url",
        "attempt": attempt + 1,
        "at": now_iso(),
        "status_code": status,
        "error": error or None,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
    }
    with r.pipeline(transaction=False) as p:
        p.rpush(keys.account_deliveries(account_id), json.dumps(entry))
        p.ltrim(keys.account_deliveries(account_id), -1000, -1)
        p.expire(keys.account_deliveries(account_id), settings.spool_ttl_s)
        p.execute()
    if not error:
        return
    schedule = settings.webhook_retry_schedule_s
    if attempt + 1 < len(schedule):
        deliver_account_event.apply_async(
            args=[event_id, target, attempt + 1], countdown=schedule[attempt + 1]
        )
    else:
        log.warning(
            "%s to %s failed for good after %d attempts", event_id, entry["target"], attempt + 1
        )
