"""`toolqueue demo`: start the whole stack and play an agent against a 90,000-contact CRM.

The agent calls `hubspot.contacts.list` with a projection and a callback URL, gets a job id
at once, receives the signed webhook, checks its signature, then follows the continuation
and shows that the next records start exactly after the last one. Then seven short acts:
a tool called over MCP as a task and polled; a vendor rate limit met and waited out to the
instant it named; a job that outlives its 3 s access token; an async vendor job resumed by the
vendor's signed webhook; a batch upsert whose answer the vendor loses after committing, written
exactly once all the same; a 20,000-contact pipeline (map, enrich, Salesforce upsert) through a
killed worker; an end user connecting their own HubSpot account through a connect link. A
summary table ends it.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from rich.console import Console
from rich.table import Table
from standardwebhooks import Webhook

from app.cli.democonnect import act_connect
from app.cli.demopipeline import act_pipeline
from app.cli.demowrite import act_exactly_once
from app.cli.stack import Stack
from app.client import Client
from app.kernel.settings import get_settings
from app.kernel.states import TERMINAL, JobState

console = Console()


class Receiver:
    """The agent's own webhook endpoint, on loopback."""

    def __init__(self) -> None:
        self.events: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                events.put(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/agent-webhook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def next(self, timeout: float = 120.0) -> tuple[dict[str, str], bytes]:
        return self.events.get(timeout=timeout)


def run() -> int:
    settings = get_settings()
    console.rule("[bold]toolqueue demo")
    console.print("starting Redis, worker, beat, API, Flower and the vendor sandbox …")
    t0 = time.monotonic()
    with Stack(settings, sandbox=True) as stack:
        console.print(f"stack up in {time.monotonic() - t0:.1f}s")
        return _agent(stack)


def _agent(stack: Stack) -> int:
    """The scenario: an agent's tool call, then the other acts; a table says what happened."""
    tenant, client, account_id = _setup(stack)
    acts = [
        _act_signed_webhook(tenant, client, account_id),
        _act_mcp(stack.api_url, tenant["api_key"], account_id),
        _act_rate_limit(stack.sandbox_url, client, account_id),
        _act_token_expiry(stack.sandbox_url, client),
        _act_vendor_webhook(stack.sandbox_url, client),
        act_exactly_once(stack.sandbox_url, client, account_id),
        act_pipeline(stack, client, account_id),
        act_connect(stack.sandbox_url, client),
    ]
    summary = Table(title="what happened")
    for col in ("act", "ok", "evidence"):
        summary.add_column(col)
    for name, passed, evidence in acts:
        summary.add_row(name, "[green]yes" if passed else "[red]no", evidence)
    console.print(summary)
    ok = all(passed for _, passed, _ in acts)

    console.rule("ops")
    user, _, password = get_settings().flower_basic_auth().partition(":")
    console.print(f"Flower: {stack.flower_url}  (user {user}, password {password})")
    console.print(f"API docs: {stack.api_url}/docs")
    console.print("[bold green]demo succeeded" if ok else "[bold red]demo failed")
    return 0 if ok else 1


def _setup(stack: Stack) -> tuple[dict[str, str], Client, str]:
    """A tenant, its client, and a HubSpot sandbox account of 90,000 contacts."""
    from app.store.tenants import create_tenant

    sandbox = stack.sandbox_url
    requests.post(
        f"{sandbox}/_sandbox/config",
        json={"hubspot_contacts": 90000, "rate_budget": 1000, "rate_window_ms": 10000},
        timeout=5,
    ).raise_for_status()
    tenant = create_tenant("demo")
    client = Client(stack.api_url, tenant["api_key"])
    app_creds = {"client_id": "demo-app", "client_secret": "demo-secret"}
    tokens = requests.post(
        f"{sandbox}/_sandbox/tokens", json={"vendor": "hubspot", **app_creds}, timeout=5
    ).json()
    account = client._request(
        "POST",
        "/v1/accounts",
        json={
            "vendor": "hubspot",
            "name": "Acme CRM (sandbox)",
            "base_url": f"{sandbox}/hubspot",
            "credentials": {
                "type": "oauth2",
                "access_token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"],
                "expires_in": tokens["expires_in"],
                **app_creds,
            },
        },
    )
    console.print(
        f"tenant {tenant['tenant_id']}, HubSpot sandbox account "
        f"{account['account_id']} (90,000 contacts)"
    )
    return tenant, client, account["account_id"]


def _act_signed_webhook(tenant: dict[str, str], client: Client, account_id: str) -> Act:
    """The tool call returns a job id at once; the result comes as a signed webhook, and a
    truncated one carries on exactly after its last record."""
    receiver = Receiver()
    fields = ["id", "properties.firstname", "properties.lastname", "properties.email"]
    console.rule("agent: tool call")
    started = time.perf_counter()
    job = client.call(
        "hubspot.contacts.list",
        account_id,
        {"limit": 100, "properties": ["firstname", "lastname", "email"]},
        fields=fields,
        callback_url=receiver.url,
    )
    enqueue_ms = (time.perf_counter() - started) * 1000
    console.print(
        f"hubspot.contacts.list → job [bold]{job['job_id']}[/] "
        f"({job['status']}) in [bold]{enqueue_ms:.1f} ms[/]; the agent moves on"
    )
    event, size = _verified_event(tenant, receiver)
    data = event["data"]
    ok = event["type"] == "job.succeeded" and size <= 131072
    if data["truncated"]:
        ok = _follow(tenant, client, receiver, data) and ok
    return ("signed webhook", ok, f"{event['type']}, {size:,} bytes, signature verified")


def _verified_event(tenant: dict[str, str], receiver: Receiver) -> tuple[dict[str, Any], int]:
    headers, body = receiver.next()
    event: dict[str, Any] = Webhook(tenant["webhook_secret"]).verify(body, headers)
    data = event["data"]
    console.print(
        f"webhook {headers['webhook-id']} received; signature verified with standardwebhooks"
    )
    table = Table(title="first job")
    for col in ("event", "pages", "records", "bytes", "truncated"):
        table.add_column(col)
    table.add_row(
        event["type"],
        str(data["pages_fetched"]),
        str(data["record_count"]),
        f"{len(body):,} (cap 131,072)",
        str(data["truncated"]),
    )
    console.print(table)
    return event, len(body)


def _follow(
    tenant: dict[str, str], client: Client, receiver: Receiver, data: dict[str, Any]
) -> bool:
    """The continuation's job starts with the record after the first job's last one."""
    console.rule("agent: follow the continuation")
    last = data["records"][-1]
    nxt = client.continue_(data["continuation"], callback_url=receiver.url)
    headers2, body2 = receiver.next()
    event2 = Webhook(tenant["webhook_secret"]).verify(body2, headers2)
    first = event2["data"]["records"][0]
    console.print(
        f"job {nxt['job_id']}: {event2['data']['record_count']} more records; "
        f"last of job 1 was id {last['id']}, first of job 2 is id {first['id']}"
    )
    console.print(json.dumps(event2["data"]["records"][:2], ensure_ascii=False))
    return int(first["id"]) == int(last["id"]) + 1


Act = tuple[str, bool, str]


def _sandbox(sandbox: str, **config: Any) -> None:
    requests.post(f"{sandbox}/_sandbox/config", json=config, timeout=5).raise_for_status()


def _vendor_calls(sandbox: str, since: float) -> list[dict[str, Any]]:
    log = requests.get(f"{sandbox}/_sandbox/requests", params={"vendor": "hubspot"}, timeout=5)
    return [e for e in log.json() if e["t"] >= since and e.get("kind", "api") == "api"]


def _act_mcp(api_url: str, api_key: str, account_id: str) -> Act:
    """The agent's MCP client declares the tasks extension: `tools/call` answers with a task
    at once; the agent polls `tasks/get` until the result comes inline."""
    import anyio

    from app.mcp.client import CreateTaskResult, connect, get_task

    console.rule("agent over MCP: a tool call as a task")
    seen: list[str] = []

    async def main() -> dict[str, Any]:
        async with connect(api_url, api_key) as mcp:
            args = {"account_id": account_id, "args": {"limit": 100}, "max_pages": 5,
                    "fields": ["id"]}  # fmt: skip
            handle = await mcp.session.call_tool("hubspot_contacts_list", args,
                                                 allow_claimed=True)  # fmt: skip
            if not isinstance(handle, CreateTaskResult):
                raise RuntimeError(f"the server answered the call inline, not as a task: {handle}")
            console.print(f"tools/call → task {handle.task_id} ({handle.status}) at once")
            while True:
                task = await get_task(mcp, handle.task_id)
                seen.append(task.get("statusMessage") or task["status"])
                if task["status"] != "working":
                    return task
                await anyio.sleep(min(task.get("pollIntervalMs", 200), 500) / 1000)

    task = anyio.run(main)
    for message in dict.fromkeys(seen):
        console.print(f"  tasks/get: {message}")
    result = json.loads(task["result"]["content"][0]["text"]) if "result" in task else {}
    ok = task["status"] == "completed" and result.get("record_count") == 500
    return "MCP task", ok, f"{task['status']}: {result.get('record_count')} records inline"


def _act_rate_limit(sandbox: str, client: Client, account_id: str) -> Act:
    """Another app spent the portal's window: HubSpot refuses the job's first request; the
    job waits exactly the interval HubSpot named, then paces itself to the learned budget."""
    console.rule("a vendor rate limit: wait as told, then pace")
    _sandbox(sandbox, rate_budget=20, rate_window_ms=2000)
    time.sleep(2.1)  # the agent (not a worker) lets the earlier acts' calls leave the window
    token = requests.post(f"{sandbox}/_sandbox/tokens", json={
        "vendor": "hubspot", "client_id": "other-app", "client_secret": "s"}, timeout=5,
    ).json()["access_token"]  # fmt: skip
    since = time.time()
    with requests.Session() as other:
        other.headers["Authorization"] = f"Bearer {token}"
        for _ in range(20):  # another app on the same portal spends the window
            other.get(f"{sandbox}/hubspot/crm/v3/objects/contacts", timeout=5)
    job = client.call("hubspot.contacts.list", account_id, {"limit": 100}, fields=["id"],
                      max_pages=30)  # fmt: skip
    view = client.get(job["job_id"])
    while view["status"] not in TERMINAL:
        if view["status"] == JobState.WAITING_RATE_LIMIT and view.get("retry_at"):
            console.print(f"  {view['status']} until {view['retry_at']}")
        view = client.get(job["job_id"], wait_s=10)
    calls = _vendor_calls(sandbox, since)[20:]
    refused = [e for e in calls if e["status"] == 429]
    waited = calls[1]["t"] - refused[0]["t"] if refused and len(calls) > 1 else 0.0
    for entry in view["history"]:
        if entry["status"] == JobState.WAITING_RATE_LIMIT and "TEN_SECONDLY" in entry["reason"]:
            console.print(f"  {entry['reason']}")
    _sandbox(sandbox, rate_budget=1000, rate_window_ms=10000)
    ok = view["status"] == JobState.SUCCEEDED and len(refused) == 1 and waited >= 2.0
    evidence = (f"{len(calls)} vendor calls, {len(refused)} refused; next call {waited:.2f}s "
                "after the 429 (HubSpot said 2 s)")  # fmt: skip
    console.print(f"  {evidence}")
    return "rate limit", ok, evidence


def _act_token_expiry(sandbox: str, client: Client) -> Act:
    """Access tokens living 3 s, a job of about 6 s: refreshed ahead of expiry, never a 401."""
    console.rule("a job that outlives its access token")
    _sandbox(sandbox, token_ttl_s=3, latency_ms=60)
    creds = requests.post(f"{sandbox}/_sandbox/tokens", json={
        "vendor": "hubspot", "client_id": "demo-app", "client_secret": "demo-secret"},
        timeout=5).json()  # fmt: skip
    account = client._request("POST", "/v1/accounts", json={
        "vendor": "hubspot", "name": "short-lived tokens", "base_url": f"{sandbox}/hubspot",
        "credentials": {"type": "oauth2", "access_token": creds["access_token"],
                        "refresh_token": creds["refresh_token"], "expires_in": 3,
                        "client_id": "demo-app", "client_secret": "demo-secret"}})  # fmt: skip
    since = time.time()
    job = client.call("hubspot.contacts.list", account["account_id"], {"limit": 100},
                      fields=["id"], max_pages=80)  # fmt: skip
    view = client.get(job["job_id"])
    while view["status"] not in TERMINAL:
        view = client.get(job["job_id"], wait_s=10)
    _sandbox(sandbox, token_ttl_s=1800, latency_ms=0)
    refreshes = [h["reason"] for h in view["history"] if "token refreshed" in h["reason"]]
    for reason in refreshes[:3]:
        console.print(f"  {reason}")
    unauthorized = sum(e["status"] == 401 for e in _vendor_calls(sandbox, since))
    status = client._request("GET", f"/v1/accounts/{account['account_id']}")
    ok = view["status"] == JobState.SUCCEEDED and unauthorized == 0 and status["refresh_count"] >= 1
    evidence = (f"{view['progress']['pages']} pages, {status['refresh_count']} refreshes, "
                f"{unauthorized} vendor 401s")  # fmt: skip
    console.print(f"  {evidence}")
    return "token expiry", ok, evidence


def _act_vendor_webhook(sandbox: str, client: Client) -> Act:
    """A Shopify bulk operation on an account with a vendor-webhook secret: the job waits in
    waiting_vendor with its fallback poll a minute away, and the shop's signed
    `bulk_operations/finish` webhook resumes it as soon as Shopify is done."""
    console.rule("an async vendor job, resumed by the vendor's webhook")
    secret = "shpss_" + secrets.token_hex(16)
    creds = requests.post(f"{sandbox}/_sandbox/tokens", json={
        "vendor": "shopify", "client_id": "demo-app", "client_secret": "demo-secret"},
        timeout=5).json()  # fmt: skip
    account = client._request("POST", "/v1/accounts", json={
        "vendor": "shopify", "name": "demo shop", "base_url": f"{sandbox}/shopify",
        "credentials": {"type": "bearer", "token": creds["access_token"]}})  # fmt: skip
    account_id = account["account_id"]
    view = client._request("PUT", f"/v1/accounts/{account_id}/vendor-webhook",
                           json={"secret": secret, "fallback_s": 60})  # fmt: skip
    inbound = client.base_url + view["vendor_webhook"]["url"]
    requests.post(f"{sandbox}/shopify/_sandbox/webhooks",  # the app's subscription
                  json={"callback_url": inbound, "secret": secret}, timeout=5).raise_for_status()
    requests.post(f"{sandbox}/shopify/_sandbox/bulk", json={"duration_s": 1.5},
                  timeout=5).raise_for_status()  # fmt: skip
    started = time.monotonic()
    job = client.call("shopify.bulk_query", account_id,
                      {"query": "{ customers { edges { node { id email } } } }"})  # fmt: skip
    job_view = client.get(job["job_id"])
    while job_view["status"] not in TERMINAL:
        job_view = client.get(job["job_id"], wait_s=10)
    took = time.monotonic() - started
    reasons = [h["reason"] for h in job_view["history"]]
    for reason in reasons:
        if "webhook" in reason:
            console.print(f"  {reason}")
    resumed = any("vendor webhook export.completed" in r for r in reasons)
    ok = job_view["status"] == JobState.SUCCEEDED and resumed and took < 30
    evidence = (f"{job_view['progress']['records']:,} customers in {took:.1f}s, resumed by the "
                "signed bulk_operations/finish webhook (fallback poll: 60 s)")  # fmt: skip
    console.print(f"  {evidence}")
    return "vendor webhook", ok, evidence
