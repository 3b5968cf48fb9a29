"""/metrics: the Redis-held counters of app/metrics.py in Prometheus text format.

Unauthenticated like /healthz (scrapers rarely carry API keys); safe because every label is an
aggregate (state, vendor, outcome) and no tenant, account or job id is ever stored.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from app.kernel import metrics

router = APIRouter(tags=["health"])


class RedisCounters(Collector):
    """Builds the families from the hash at scrape time; the API process keeps no counts."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            metrics.PREFIX + "jobs", "Unfinished jobs in each state now.", labels=["state"]
        )
        for state, n in metrics.jobs_by_state().items():
            jobs.add_metric([state], n)
        yield jobs
        families = {
            name: CounterMetricFamily(metrics.PREFIX + name, m.help, labels=list(m.labels) or None)
            for name, m in metrics.METRICS.items()
        }
        seen: set[str] = set()
        for metric, values, total in sorted(metrics.read(), key=lambda x: (x[0].name, x[1])):
            family = families[metric.name]
            if metric.labels:
                family.add_metric(list(values), total)
            else:
                family.add_metric([], total)
            seen.add(metric.name)
        for name, family in families.items():
            if name not in seen and not metrics.METRICS[name].labels:
                family.add_metric([], 0)  # an unlabelled counter exists from the start
            yield family


@router.get(
    "/metrics",
    summary="Prometheus metrics (aggregate counters, no tenant data)",
    response_class=PlainTextResponse,
    include_in_schema=False,  # scraper text, not part of the JSON API the OpenAPI describes
)
def prometheus_metrics() -> PlainTextResponse:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCounters())
    return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
