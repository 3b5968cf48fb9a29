"""Process-independent counters for `/metrics`, kept in one Redis hash.

The API and the workers are separate processes (and hosts), so an in-process
`prometheus_client` registry would show only the API's own counts. Every counter is a field
of the hash `tq:metrics` (field = metric name plus its labels, value = HINCRBY total), and
`GET /metrics` renders the hash. Labels are aggregate only (state, vendor, outcome): the
endpoint is unauthenticated, so no tenant, account or job id ever becomes a label.

Writes stay cheap: a job step adds into a `Tally` in memory and flushes it once, in one
pipelined round trip, when the step ends; single events (a token refresh, a webhook attempt)
call `incr`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache

from app.kernel import keys
from app.kernel.redis import get_redis
from app.kernel.states import TERMINAL, JobState

log = logging.getLogger("toolqueue.metrics")



@dataclass(frozen=True)
class Metric:
    """A counter's exposition name (without `_total`), help text and label names."""

    name: str
    help: str
    labels: tuple[str, ...] = ()


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("job_transitions", "Job state transitions, by the state entered.", ("state",)),
        Metric("pages_fetched", "Vendor pages fetched and committed by job steps."),
        Metric("records_fetched", "Records spooled by job steps."),
        Metric("spool_bytes", "Bytes of records written to job spools."),
        Metric(
            "vendor_refusals",
            "Vendor rate-limit refusals (429 and dialect equivalents) seen by job steps.",
            ("vendor",),
        ),
        Metric(
            "budget_deferrals",
            "Steps deferred by toolqueue's own account budget before sending a request.",
        ),
        Metric(
            "write_outcomes",
            "Records of write jobs by outcome (created, updated, unchanged, deleted, rejected).",
            ("outcome",),
        ),
        Metric(
            "writes_uncertain",
            "Write operations found sent without a recorded outcome (a worker died or the "
            "answer was lost), settled by the tool's retry-safety mechanism.",
            ("mechanism",),
        ),
        Metric("token_refreshes", "OAuth token refreshes, by outcome.", ("outcome",)),
        Metric("webhook_attempts", "Job webhook delivery attempts, by outcome.", ("outcome",)),
        Metric(
            "vendor_webhooks",
            "Inbound vendor webhook events, by vendor and outcome (accepted, duplicate, "
            "refused).",
            ("vendor", "outcome"),
        ),
        Metric(
            "work_resent",
            "Tasks the sweep sent again because they never started or their worker died "
            "(a lost message), by kind of work (step, hook, event).",
            ("kind",),
        ),
    )
}
PREFIX = "toolqueue_"


def field(name: str, labels: Mapping[str, str] | None = None) -> str:
    """The hash field of one counter: JSON of [name, label values in declared order].

    An unknown metric or a wrong label set is a bug in the caller, raised at once rather
    than exported under a name nobody documented."""
    metric = METRICS[name]
    given = dict(labels or {})
    if set(given) != set(metric.labels):
        raise ValueError(f"metric {name} takes labels {metric.labels}, got {sorted(given)}")
    return json.dumps([name, [str(given[k]) for k in metric.labels]])


@lru_cache(maxsize=64)
def _plain_field(name: str) -> str:
    """`field(name)` of a label-less counter, built once: a step adds three every page."""
    return field(name)


def incr(name: str, labels: Mapping[str, str] | None = None, n: int = 1) -> None:
    """Add n to one counter now (one HINCRBY). Never raises: a metric must not fail a job."""
    key = field(name, labels)  # a caller's bug raises here, outside the guard below
    try:
        get_redis().hincrby(keys.METRICS, key, n)
    except Exception as exc:
        log.warning("metric %s not recorded: %s", name, exc)


class Tally:
    """Counts accumulated in memory during one job step, written in one round trip."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, name: str, labels: Mapping[str, str] | None = None, n: int = 1) -> None:
        if n:
            key = field(name, labels) if labels else _plain_field(name)
            self.counts[key] = self.counts.get(key, 0) + n

    def flush(self) -> None:
        """One pipelined round trip (no MULTI); nothing at all when nothing was counted.
        A Redis error is logged, not raised, so it never masks the step's own outcome."""
        if not self.counts:
            return
        counts, self.counts = self.counts, {}
        try:
            pipe = get_redis().pipeline(transaction=False)
            for key, n in counts.items():
                pipe.hincrby(keys.METRICS, key, n)
            pipe.execute()
        except Exception as exc:
            log.warning("%d metric counts not recorded: %s", len(counts), exc)


def jobs_by_state() -> dict[str, int]:
    """The gauge of unfinished jobs per state (every such state, 0 when none), which the job
    scripts keep beside the records (app/kernel/lua/gauge.lua)."""
    held = get_redis().hgetall(keys.JOBS_BY_STATE)
    return {s: int(held.get(s, 0)) for s in [s.value for s in JobState] if s not in TERMINAL}


def read() -> Iterator[tuple[Metric, tuple[str, ...], int]]:
    """Every stored counter as (metric, label values, total); unknown fields are skipped
    (a newer process may have added a metric this one does not know)."""
    for key, value in get_redis().hgetall(keys.METRICS).items():
        try:
            name, values = json.loads(key)
            metric = METRICS[name]
        except (ValueError, KeyError, TypeError):
            continue
        if len(values) == len(metric.labels):
            yield metric, tuple(values), int(value)
