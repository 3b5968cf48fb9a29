"""Shared helpers of the pipeline tests (a plain module: `conftest` is every folder's name)."""

from __future__ import annotations

from typing import Any

import requests
from support import wait_until

ENDED = ("succeeded", "partly_done", "failed", "cancelled")
EXT = "External_Id__c"


def definition(source_account: str, sink_account: str, **extra: Any) -> dict[str, Any]:
    """HubSpot contacts → map → filter → Salesforce Contact upsert (no enrichment)."""
    return {
        "source": {"tool": "hubspot.contacts.list", "account_id": source_account,
                   "args": {"limit": 100},
                   "fields": ["id", "properties.email", "properties.lastname"]},
        "stages": [{"map": {"Email": "properties.email", EXT: "id",
                            "LastName": "properties.lastname"}},
                   {"filter": "properties.email != null"}],
        "sink": {"tool": "salesforce.records.upsert", "account_id": sink_account,
                 "args": {"sobject": "Contact", "external_id_field": EXT}},
        **extra,
    }  # fmt: skip


def start(api: Any, body: dict[str, Any]) -> str:
    resp = api.post("/v1/pipelines", body)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["pipeline_id"])


def view(api: Any, pid: str) -> dict[str, Any]:
    resp = api.get(f"/v1/pipelines/{pid}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def wait(
    api: Any, pid: str, timeout: float = 120.0, states: tuple[str, ...] = ENDED
) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        p = view(api, pid)
        return p if p["status"] in states else None

    return wait_until(done, timeout, 0.2)


def rejected(api: Any, pid: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = api.get(
            f"/v1/pipelines/{pid}/rejected", params={"offset": offset, "limit": 200}
        ).json()
        out += page["rejected"]
        offset = page.get("next_offset")
    return out


def sf_effects(sandbox: Any) -> dict[str, Any]:
    return dict(requests.get(f"{sandbox.url}/salesforce/_sandbox/effects", timeout=30).json())


def stage(p: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(s for s in p["stages"] if s["kind"] == kind)


def kill_one_and_replace(workers: Any, rng: Any, size: int = 3) -> None:
    """SIGKILL a random live worker (and its pool), then start replacements up to `size`, as a
    supervisor would."""
    from support import kill_worker_tree, live

    victims = live(workers)
    if victims:
        kill_worker_tree(rng.choice(victims))
    for p in [p for p in workers.procs if p.proc.poll() is not None]:
        p.stop()
        workers.procs.remove(p)
    while len(live(workers)) < size:
        workers.start(concurrency=1)


def restart_redis(redis_server: Any, workers: Any) -> None:
    """SIGTERM Redis (it fsyncs its AOF), start it again, and make sure the workers reconnect
    (replacing any that do not answer)."""
    import contextlib
    import time

    from support import answers_ping, live, refresh_broker_connections

    running = live(workers)
    redis_server.stop()
    time.sleep(0.5)
    redis_server.start()
    refresh_broker_connections()
    with contextlib.suppress(AssertionError):
        wait_until(lambda: all(p.proc.poll() is not None or answers_ping(p) for p in running),
                   20, 0.2)  # fmt: skip
    stale = [p for p in running if p.proc.poll() is not None or not answers_ping(p)]
    for p in stale:
        p.stop()
        workers.procs.remove(p)
    while len(live(workers)) < len(running):
        workers.start(concurrency=1)


def clearbit_account(api: Any, sandbox: Any, key: str = "sk_clearbit_test") -> str:
    """A Clearbit account holding a static API key the sandbox accepts."""
    requests.post(
        f"{sandbox.url}/_sandbox/static-token", json={"vendor": "clearbit", "token": key}, timeout=5
    ).raise_for_status()
    resp = api.post("/v1/accounts", {"vendor": "clearbit", "name": "enrichment",
                                     "base_url": f"{sandbox.url}/clearbit",
                                     "credentials": {"type": "bearer", "token": key}})  # fmt: skip
    assert resp.status_code == 201, resp.text
    return str(resp.json()["account_id"])


def example(acc_h: str, acc_c: str, acc_s: str, *more: dict[str, Any]) -> dict[str, Any]:
    """The issue's example, as written (plus `more` stages after it)."""
    return {
        "source": {"tool": "hubspot.contacts.list", "account_id": acc_h, "args": {"limit": 100},
                   "fields": ["id", "properties.email", "properties.company"]},
        "stages": [{"map": {"Email": "properties.email", "External_Id__c": "id"}},
                   {"filter": "properties.email != null"},
                   {"enrich": {"tool": "clearbit.companies.find", "account_id": acc_c,
                               "args": {"domain": "{{ record.properties.email | domain }}"},
                               "into": "company"}},
                   *more],
        "sink": {"tool": "salesforce.records.upsert", "account_id": acc_s,
                 "args": {"sobject": "Contact", "external_id_field": "External_Id__c"}},
    }  # fmt: skip


def tricky(src: str, dst: str, *, map_failures: bool = True) -> dict[str, Any]:
    """HubSpot → map → filter → map → Salesforce, with records each stage turns away:
    Umbrella contacts fail the first map (abs() of a string; unless not `map_failures`),
    Initech ones are filtered out, Hooli ones have no external id (the sink's model refuses
    them) and Globex ones set the Phone the Salesforce sandbox may lock (the vendor rejects
    them then). The sink is stage 4."""
    first = {"Email": "properties.email",
             EXT: "properties.company != 'Hooli' && id || null",
             "Phone": "properties.company == 'Globex' && properties.phone || null"}  # fmt: skip
    if map_failures:
        first["Weird__c"] = "properties.company == 'Umbrella' && abs(properties.email) || null"
    return {
        "source": {"tool": "hubspot.contacts.list", "account_id": src,
                   "args": {"limit": 100, "properties": ["email", "company", "phone"]},
                   "fields": ["id", "properties.email", "properties.company", "properties.phone"]},
        "stages": [{"map": first}, {"filter": "properties.company != 'Initech'"},
                   {"map": {"LastName": "properties.company"}}],
        "sink": {"tool": "salesforce.records.upsert", "account_id": dst,
                 "args": {"sobject": "Contact", "external_id_field": EXT}},
    }  # fmt: skip


def company_ids(company: str, n: int) -> set[str]:
    """The ids of the sandbox's first `n` HubSpot contacts at `company`."""
    from sandbox.hubspot.data import contact

    return {str(i) for i in range(1, n + 1) if contact(i)["properties"]["company"] == company}
