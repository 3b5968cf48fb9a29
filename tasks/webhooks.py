"""Completion webhooks: signed per Standard Webhooks, retried on a schedule, logged."""

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
    status: int | None = None
    error = ""
    try:
        check_public_url(url)
        headers = sign(tenants.webhook_secret(job["tenant_id"]), msg_id, now, body)
        resp = requests.post(
            url,
            data=body,
            headers=headers,
            timeout=settings.webhook_timeout_s,
            allow_redirects=False,
        )
        status = resp.status_code
        if not 200 <= status < 300:
            error = f"receiver answered {status}"
    except InvalidInput as exc:
        error = exc.message
    except requests.RequestException as exc:
        error = f"{type(exc).__name__}"
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
