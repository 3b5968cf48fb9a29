"""Randomized write chaos on the real stack: waves of write jobs across vendors (HubSpot and
Salesforce upsert batches, Stripe and Zendesk keyed creates, GitHub, Jira and Slack marker
creates) on three worker processes SIGKILLed at random moments (each replaced, as a
supervisor would), while the sandbox drops 10 % of its answers after committing the write.

Every job ends succeeded, every operation's effect happens exactly once (each record's
object created once, none missing, none extra, the result ids those of the ledger), and
nothing is left pending. TOOLQUEUE_CHAOS_SEED replays the kill schedule (the sandbox's
drops are seeded by its reset, but which write draws a drop depends on timing)."""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ledger import assert_ledger_holds, connect
from support import kill_worker_tree, live

from app.kernel import keys

WAVES = 6
CHANNELS = ("C01GENERAL", "C02RANDOM0", "C03SUPPORT")


@dataclass(frozen=True)
class Kind:
    """One write tool in the mix: its vendor, args for a tag, records per job."""

    tool: str
    vendor: str
    args: Callable[[str, int], dict[str, Any]]  # (tag, wave) -> args
    records: int = 1
    upsert: bool = False  # a resend after an uncertain attempt reads `updated`
    prefix: str = ""  # result id -> the ledger's object id


KINDS = (
    Kind("hubspot.contacts.upsert", "hubspot", lambda tag, _: {"records": [
        {"id": f"{tag}-{i}@example.com", "properties": {"firstname": "C"}}
        for i in range(250)]}, records=250, upsert=True),  # fmt: skip
    Kind("salesforce.records.upsert", "salesforce", lambda tag, _: {
        "sobject": "Contact", "external_id_field": "Ext_Id__c", "records": [
            {"Ext_Id__c": f"{tag}-{i}", "LastName": f"L{i}"} for i in range(250)]},
        records=250, upsert=True),  # fmt: skip
    Kind("stripe.customers.create", "stripe",
         lambda tag, _: {"email": f"{tag}@example.com", "name": tag}),  # fmt: skip
    Kind("stripe.customers.create", "stripe",
         lambda tag, _: {"email": f"{tag}-b@example.com"}),  # fmt: skip
    Kind("zendesk.tickets.create", "zendesk", lambda tag, _: {"subject": tag, "body": "Hi."}),
    Kind("github.issues.create", "github", lambda tag, _: {
        "owner": "acme", "repo": "widgets", "title": tag, "body": "It smokes."},
        prefix="acme/widgets#"),  # fmt: skip
    Kind("jira.issues.create", "jira", lambda tag, _: {
        "project_key": "ENG", "summary": tag, "issue_type": "Task"}),  # fmt: skip
    Kind("slack.chat.post_message", "slack",
         lambda tag, wave: {"channel": CHANNELS[wave % 3], "text": tag}),  # fmt: skip
)


Jobs = list[tuple[str, Kind]]  # (job id, what it writes)


def enqueue_wave(api: Any, accounts: dict[str, str], seed: int, wave: int) -> Jobs:
    """One job of every kind."""
    out: Jobs = []
    for n, kind in enumerate(KINDS):
        tag = f"chaos-{seed}-{wave}-{n}"
        job = api.call(kind.tool, account_id=accounts[kind.vendor], args=kind.args(tag, wave))
        out.append((job["job_id"], kind))
    return out


TASK_LINE = re.compile(r"Task toolqueue\.step\[([^\]]+)\] (received|succeeded|raised|retry)")


def in_flight(log: str) -> int:
    """Steps a worker's log shows received and never finished: what its kill cut short."""
    seen: dict[str, str] = {}
    for task_id, event in TASK_LINE.findall(log):
        seen[task_id] = event
    return sum(event == "received" for event in seen.values())


def kill_one_and_replace(workers: Any, rng: random.Random) -> int:
    """SIGKILL a random live worker, start replacements; the steps the kill cut short."""
    victims = live(workers)
    cut = 0
    if victims:
        victim = rng.choice(victims)
        kill_worker_tree(victim)
        cut = in_flight(victim.log())
    for p in [p for p in workers.procs if p.proc.poll() is not None]:
        p.stop()
        workers.procs.remove(p)
    while len(live(workers)) < 3:
        workers.start(concurrency=1)
    return cut


def settled_ids(api: Any, job_id: str, kind: Kind) -> list[str]:
    """The job succeeded with one result per record, each naming its own object; the
    ledger ids of those objects."""
    done = api.wait(job_id, 120)
    assert done["status"] == "succeeded", (kind.tool, job_id, done.get("error"), done["history"])
    results = api.records(job_id)
    assert [r["index"] for r in results] == list(range(kind.records)), kind.tool
    allowed = {"created", "updated"} if kind.upsert else {"created"}
    assert {r["status"] for r in results} <= allowed, (kind.tool, results[:3])
    ids = [kind.prefix + r["id"] for r in results]
    assert len(set(ids)) == len(ids), kind.tool
    return ids


def test_writes_exactly_once_with_workers_sigkilled_and_answers_dropped(
    api: Any, fresh_sandbox: Any, workers: Any, r: Any
) -> None:
    seed = int(os.environ.get("TOOLQUEUE_CHAOS_SEED") or time.time())
    rng = random.Random(seed)
    print(f"write chaos seed {seed}")
    started = time.monotonic()
    fresh_sandbox.config(slack_channel_post_interval_ms=0, github_content_per_minute=10000,
                         github_content_per_hour=10000, write_latency_ms=300)  # fmt: skip
    accounts = {v: connect(api, fresh_sandbox, v) for v in {k.vendor for k in KINDS}}
    fresh_sandbox.config(drop_after_commit_rate=0.1)
    workers.stop_all()
    try:
        for _ in range(3):
            workers.start(concurrency=1)
        jobs: Jobs = []
        cut = 0
        for wave in range(WAVES):
            jobs += enqueue_wave(api, accounts, seed, wave)
            time.sleep(rng.uniform(0.5, 2.0))
            cut += kill_one_and_replace(workers, rng)
        ledger: dict[str, list[str]] = {}
        for job_id, kind in jobs:
            ledger.setdefault(kind.vendor, []).extend(settled_ids(api, job_id, kind))
        for vendor, ids in ledger.items():
            assert_ledger_holds(fresh_sandbox, vendor, ids)
        for job_id, _ in jobs:
            assert r.hget(keys.PENDING, keys.step_work(job_id)) is None, job_id
        reconciled = sum(api.result(j)["writes"]["reconciled"] for j, _ in jobs)
        print(f"write chaos: {len(jobs)} jobs, {sum(map(len, ledger.values()))} objects, "
              f"{reconciled} operations reconciled, {WAVES} kills, {cut} steps cut short, "
              f"{time.monotonic() - started:.1f}s")
    finally:
        fresh_sandbox.config(drop_after_commit_rate=0.0, write_latency_ms=0)
        workers.stop_all()
        workers.procs.clear()
        workers.start()
