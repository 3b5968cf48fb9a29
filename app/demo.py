"""`toolqueue demo`: start the whole stack and play an agent against a 90,000-contact CRM.

The agent calls `hubspot.contacts.list` with a projection and a callback URL, gets a job id
at once, receives the signed webhook, checks its signature, then follows the continuation
and shows that the next records start exactly after the last one.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from rich.console import Console
from rich.table import Table
from standardwebhooks import Webhook

from app.client import Client
from app.settings import get_settings
from app.stack import Stack

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
    from app.tenants import create_tenant

    sandbox = stack.sandbox_url
    requests.post(
        f"{sandbox}/_sandbox/config",
        json={
            "hubspot_contacts": 90000,
            "rate_budget": 1000,
            "rate_window_ms": 10000,
        },
        timeout=5,
    ).raise_for_status()
    tenant = create_tenant("demo")
    client = Client(stack.api_url, tenant["api_key"])
    tokens = requests.post(
        f"{sandbox}/_sandbox/tokens",
        json={
            "vendor": "hubspot",
            "client_id": "demo-app",
            "client_secret": "demo-secret",
        },
        timeout=5,
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
                "client_id": "demo-app",
                "client_secret": "demo-secret",
            },
        },
    )
    console.print(
        f"tenant {tenant['tenant_id']}, HubSpot sandbox account "
        f"{account['account_id']} (90,000 contacts)"
    )

    receiver = Receiver()
    fields = ["id", "properties.firstname", "properties.lastname", "properties.email"]
    console.rule("agent: tool call")
    started = time.perf_counter()
    job = client.call(
        "hubspot.contacts.list",
        account["account_id"],
        {"limit": 100, "properties": ["firstname", "lastname", "email"]},
        fields=fields,
        callback_url=receiver.url,
    )
    enqueue_ms = (time.perf_counter() - started) * 1000
    console.print(
        f"hubspot.contacts.list → job [bold]{job['job_id']}[/] "
        f"({job['status']}) in [bold]{enqueue_ms:.1f} ms[/]; the agent moves on"
    )

    headers, body = receiver.next()
    event = Webhook(tenant["webhook_secret"]).verify(body, headers)
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
    ok = event["type"] == "job.succeeded" and len(body) <= 131072
    last = data["records"][-1]

    if data["truncated"]:
        console.rule("agent: follow the continuation")
        nxt = client.continue_(data["continuation"], callback_url=receiver.url)
        headers2, body2 = receiver.next()
        event2 = Webhook(tenant["webhook_secret"]).verify(body2, headers2)
        first = event2["data"]["records"][0]
        console.print(
            f"job {nxt['job_id']}: {event2['data']['record_count']} more records; "
            f"last of job 1 was id {last['id']}, first of job 2 is id {first['id']}"
        )
        ok = ok and int(first["id"]) == int(last["id"]) + 1
        console.print(json.dumps(event2["data"]["records"][:2], ensure_ascii=False))

    console.rule("ops")
    user, _, password = get_settings().flower_basic_auth().partition(":")
    console.print(f"Flower: {stack.flower_url}  (user {user}, password {password})")
    console.print(f"API docs: {stack.api_url}/docs")
    console.print("[bold green]demo succeeded" if ok else "[bold red]demo failed")
    return 0 if ok else 1
