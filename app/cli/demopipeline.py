"""The demo's pipeline act: 20,000 sandbox HubSpot contacts → map → enrich by Clearbit's
company lookup → Salesforce upsert, as one handle. A live view of the stages while the bulk
worker (the one running the stage jobs) is SIGKILLed mid-way and started again, as a
supervisor would; its writes are approved once by a second key (the default policy holds
upserts); then the counts are checked against the sandbox: every contact upserted
once, one Clearbit lookup per domain."""

from __future__ import annotations

import time
from typing import Any

import requests
from rich.console import Console
from rich.live import Live
from rich.text import Text

from app.cli.pipeline import render_pipeline
from app.cli.stack import Stack
from app.client import Client

console = Console()
Act = tuple[str, bool, str]
CONTACTS = 20_000
ENDED = ("succeeded", "partly_done", "failed", "cancelled")
TIMEOUT_S = 240.0  # the act fails rather than hang


def act_pipeline(stack: Stack, client: Client, hubspot: str) -> Act:
    console.rule(f"a pipeline: {CONTACTS:,} contacts → map → enrich → Salesforce, a worker killed")
    sandbox = stack.sandbox_url
    _config(sandbox, hubspot_contacts=CONTACTS)
    try:
        salesforce, clearbit = _accounts(sandbox, client)
        view, killed = _run(stack, client, _definition(hubspot, clearbit, salesforce))
    finally:
        _config(sandbox, hubspot_contacts=90_000)
    ledger = requests.get(f"{sandbox}/salesforce/_sandbox/effects", timeout=60).json()
    creates = [c["create"] for c in ledger["per_object"].values()]
    lookups = [e for e in _requests(sandbox, "clearbit") if "/companies/find" in e["path"]]
    named = sum(1 for e in ledger["effects"] if (e["fields"] or {}).get("Company__c"))
    sink = view["stages"][-1]
    ok = (view["status"] == "succeeded" and killed is not None and sink["out"] == CONTACTS
          and len(creates) == CONTACTS and set(creates) == {1} and len(lookups) <= 11)  # fmt: skip
    evidence = (f"{len(creates):,} contacts upserted, each created once ({named:,} with their "
                f"company's name), {len(lookups)} Clearbit lookups (one per domain), bulk "
                f"worker SIGKILLed mid-way")  # fmt: skip
    console.print(f"  {evidence}")
    return "pipeline through a crash", ok, evidence


def _definition(hubspot: str, clearbit: str, salesforce: str) -> dict[str, Any]:
    return {
        "name": "enrich CRM contacts into Salesforce",
        "source": {"tool": "hubspot.contacts.list", "account_id": hubspot,
                   "args": {"limit": 100, "properties": ["email", "lastname"]},
                   "fields": ["id", "properties.email", "properties.lastname"]},
        "stages": [
            {"map": {"Email": "properties.email", "External_Id__c": "id",
                     "LastName": "properties.lastname"}},
            {"enrich": {"tool": "clearbit.companies.find", "account_id": clearbit,
                        "args": {"domain": "{{ record.properties.email | domain }}"},
                        "into": "company"}},
            {"map": {"Company__c": "company.name"}},
        ],
        "sink": {"tool": "salesforce.records.upsert", "account_id": salesforce,
                 "args": {"sobject": "Contact", "external_id_field": "External_Id__c"}},
    }  # fmt: skip


def _run(stack: Stack, client: Client, definition: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Start it, watch it live, approve its writes once (a second key: the sink upserts, and
    the default policy holds what overwrites), kill the bulk worker once the sink is a
    quarter through."""
    started = time.monotonic()
    pid = client.pipeline(definition)["pipeline_id"]
    killed, approver = None, _approver(client)
    with Live(Text(""), console=console, refresh_per_second=4) as live:
        while time.monotonic() - started < TIMEOUT_S:
            view = client.pipeline_get(pid)
            live.update(Text(render_pipeline(view)))
            if view["status"] in ENDED:
                break
            approval = view.get("approval") or {}
            if approval.get("state") == "required" and view["stages"][-1]["queued_blocks"]:
                approver.pipeline_approve(pid, approval["binding"], "demo: reviewed the preview")
                console.print(f"  held for approval ({approval['reason']}): approved once, by a "
                              "second key, for every block")  # fmt: skip
            if killed is None and view["stages"][-1]["out"] >= CONTACTS // 4:
                killed = stack.kill("worker-bulk")
                console.print(f"  [red]SIGKILL[/red] the bulk worker (pid {killed}) mid-way; "
                              "a supervisor starts it again")  # fmt: skip
                stack.restart("worker-bulk")
            time.sleep(0.5)
    console.print(f"  {view['status']} in {time.monotonic() - started:.1f}s")
    return view, killed


def _approver(client: Client) -> Client:
    made = client._request("POST", "/v1/keys", json={"name": "reviewer", "scopes": ["approve"]})
    return Client(client.base_url, str(made["api_key"]))


def _accounts(sandbox: str, client: Client) -> tuple[str, str]:
    """A Salesforce (OAuth) and a Clearbit (API key) sandbox account."""
    app_creds = {"client_id": "demo-app", "client_secret": "demo-secret"}
    tokens = requests.post(f"{sandbox}/_sandbox/tokens", json={"vendor": "salesforce", **app_creds},
                           timeout=5).json()  # fmt: skip
    salesforce = client._request("POST", "/v1/accounts", json={
        "vendor": "salesforce", "name": "Acme Salesforce (sandbox)",
        "base_url": f"{sandbox}/salesforce",
        "credentials": {"type": "oauth2", "access_token": tokens["access_token"],
                        "refresh_token": tokens["refresh_token"],
                        "expires_in": tokens["expires_in"], **app_creds}})  # fmt: skip
    key = "sk_demo_clearbit"
    requests.post(f"{sandbox}/_sandbox/static-token", json={"vendor": "clearbit", "token": key},
                  timeout=5).raise_for_status()  # fmt: skip
    clearbit = client._request("POST", "/v1/accounts", json={
        "vendor": "clearbit", "name": "Clearbit (sandbox)", "base_url": f"{sandbox}/clearbit",
        "credentials": {"type": "bearer", "token": key}})  # fmt: skip
    return str(salesforce["account_id"]), str(clearbit["account_id"])


def _config(sandbox: str, **changes: Any) -> None:
    requests.post(f"{sandbox}/_sandbox/config", json=changes, timeout=5).raise_for_status()


def _requests(sandbox: str, vendor: str) -> list[dict[str, Any]]:
    resp = requests.get(f"{sandbox}/_sandbox/requests", params={"vendor": vendor}, timeout=30)
    return list(resp.json())
