"""The demo's write act: 250 contacts upserted in three batches while HubSpot commits the
second batch and loses its answer. The job settles that uncertain batch by HubSpot's own
natural key (the email) instead of creating the contacts again: one contact each."""

from __future__ import annotations

from typing import Any

import requests
from rich.console import Console

from app.client import Client
from app.kernel.states import TERMINAL

console = Console()
Act = tuple[str, bool, str]
RECORDS = 250


def act_exactly_once(sandbox: str, client: Client, account_id: str) -> Act:
    console.rule("a write exactly once: the vendor's answer lost after it committed")
    requests.post(f"{sandbox}/_sandbox/config", json={"drop_after_commit_next": 1},
                  timeout=5).raise_for_status()  # fmt: skip
    records = [{"id": f"demo-{i}@example.com", "properties": {"firstname": f"Demo {i}"}}
               for i in range(RECORDS)]  # fmt: skip
    job = client.call("hubspot.contacts.upsert", account_id, {"records": records})
    view = client.get(job["job_id"])
    while view["status"] not in TERMINAL:
        view = client.get(job["job_id"], wait_s=10)
    results: list[dict[str, Any]] = []
    for block in range(view["progress"]["blocks"]):
        results += client.result(job["job_id"], block)["records"]
    ledger = requests.get(f"{sandbox}/hubspot/_sandbox/effects", timeout=10).json()
    ours = {r["id"] for r in results}
    creates = [c["create"] for oid, c in ledger["per_object"].items() if oid in ours]
    writes = view.get("writes") or {}
    ok = (view["status"] == "succeeded" and len(ours) == RECORDS
          and creates == [1] * RECORDS and writes.get("reconciled") == 1)  # fmt: skip
    evidence = (f"{RECORDS} records in {writes.get('ops')} batches, {writes.get('reconciled')} "
                f"answer lost and reconciled; HubSpot holds {len(creates)} contacts, "
                f"{sum(creates)} creates")  # fmt: skip
    console.print(f"  {evidence}")
    return "write exactly once", ok, evidence
