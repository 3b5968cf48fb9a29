"""The demo's write act: 250 contacts upserted in three batches while HubSpot commits the
second batch and loses its answer. An upsert overwrites, so the default policy holds it for a
person: the job previews (250 to create, nothing sent), a second key with the `approve` scope
approves the binding it was shown, and the write runs. The job settles the uncertain batch by
HubSpot's own natural key (the email) instead of creating the contacts again: one contact
each."""

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
    before = _count(sandbox)
    job = client.call("hubspot.contacts.upsert", account_id, {"records": records})
    held = _until(client, job["job_id"], ("awaiting_approval", *TERMINAL))
    preview = held.get("preview") or {}
    console.print(f"  held for approval ({held.get('approval', {}).get('reason')}): preview "
                  f"{preview.get('create')} to create, {preview.get('update')} to update; "
                  f"HubSpot writes meanwhile: {(sent := _count(sandbox) - before)}")  # fmt: skip
    person = {"name": "a person", "scopes": ["approve"]}
    made = client._request("POST", "/v1/keys", json=person)
    approver = Client(client.base_url, str(made["api_key"]))
    approver._request("POST", f"/v1/jobs/{job['job_id']}/approve",
                      json={"binding": held["approval"]["binding"], "reason": "demo"})  # fmt: skip
    console.print("  approved by a second key (the agent's own key may not)")
    view = _until(client, job["job_id"], tuple(TERMINAL))
    results: list[dict[str, Any]] = []
    for block in range(view["progress"]["blocks"]):
        results += client.result(job["job_id"], block)["records"]
    ledger = requests.get(f"{sandbox}/hubspot/_sandbox/effects", timeout=10).json()
    ours = {r["id"] for r in results}
    creates = [c["create"] for oid, c in ledger["per_object"].items() if oid in ours]
    writes = view.get("writes") or {}
    ok = (held["status"] == "awaiting_approval" and preview.get("create") == RECORDS and not sent
          and view["status"] == "succeeded" and len(ours) == RECORDS
          and creates == [1] * RECORDS and writes.get("reconciled") == 1)  # fmt: skip
    evidence = (f"{RECORDS} records in {writes.get('ops')} batches, {writes.get('reconciled')} "
                f"answer lost and reconciled; HubSpot holds {len(creates)} contacts, "
                f"{sum(creates)} creates")  # fmt: skip
    console.print(f"  {evidence}")
    return "write exactly once", ok, evidence


def _until(client: Client, job_id: str, states: tuple[str, ...]) -> dict[str, Any]:
    view = client.get(job_id)
    while view["status"] not in states:
        view = client.get(job_id, wait_s=10)
    return view


def _count(sandbox: str) -> int:
    return int(requests.get(f"{sandbox}/hubspot/_sandbox/effects", timeout=10).json()["count"])
