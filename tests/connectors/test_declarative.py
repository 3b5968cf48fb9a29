"""A spec written here (not a built-in) runs end to end: real worker, sandbox as the vendor."""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support import LANES, Proc, wait_until

SPEC = {
    "vendor": {
        "name": "acme",
        "base_url": "https://api.acme.example",
        "token_url": "/oauth/v1/token",
        "error_code": "category",
        "error_message": "message",
    },
    "resources": [
        {   # the motivating article's shape: `recurse` with `if` and `config.query`
            "name": "fetch-all-contacts",
            "resource": "crm/contacts",
            "method": "list",
            "path": "/crm/v3/objects/contacts",
            "query": {"limit": "{{args.page_size}}", "properties": "{{args.props:csv}}"},
            "args": {
                "page_size": {"type": "integer", "default": 100, "minimum": 1, "maximum": 100},
                "props": {"type": "array", "items": "string", "default": ["email"]},
            },
            "records": "results",
            "record_id": "id",
            "recurse": {
                "if": "{{response.paging.next.after:bool}}",
                "config": {"query": {"after": "{{response.paging.next.after}}"}},
            },
            "persist": False,
        }
    ],
}


LOOPY = {  # a vendor whose cursors come back around: A, B, A …
    "vendor": {"name": "loopy", "base_url": "https://loopy.example"},
    "resources": [{
        "name": "loopy.items.list", "path": "/items", "records": "items",
        "pagination": {"type": "body_cursor", "cursor": "next", "param": "cursor"},
    }],
}


class LoopyVendor:
    """A real HTTP server on loopback that pages A -> B -> A forever."""

    def __init__(self) -> None:
        self.requests: list[str | None] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                cursor = parse_qs(urlsplit(self.path).query).get("cursor", [None])[0]
                seen.append(cursor)
                body = json.dumps({"items": [{"id": len(seen)}],
                                   "next": "B" if cursor == "A" else "A"}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def spec_worker(tmp_path, workers, monkeypatch):
    from app.kernel.registry import registry
    from app.kernel.settings import get_settings

    (tmp_path / "acme.json").write_text(json.dumps(SPEC))
    (tmp_path / "loopy.json").write_text(json.dumps(LOOPY))
    workers.stop_all()  # the job must land on a worker that knows the spec
    name = "specworker"
    proc = Proc(name, [sys.executable, "-m", "celery", "-A", "app.celery", "worker",
                       "--concurrency=1", "-n", f"{name}@%h", "--without-mingle",
                       "--without-gossip", "-Q", ",".join(LANES)],
                env={"TOOLQUEUE_CONNECTORS_DIR": str(tmp_path)})
    from app.celery import app

    wait_until(lambda: app.control.ping(destination=[f"{name}@{socket.gethostname()}"],
                                        timeout=0.5), 60, 0.2)
    monkeypatch.setattr(get_settings(), "connectors_dir", tmp_path)
    registry.cache_clear()
    yield proc
    proc.stop()
    monkeypatch.undo()
    registry.cache_clear()
    workers.ensure()


def test_spec_from_a_directory_runs_end_to_end(spec_worker, fresh_sandbox, tenant):
    from app.services.jobs import JobCreate, enqueue, result
    from app.store.accounts import AccountCreate, create_account
    from app.store.jobstore import load

    token = fresh_sandbox.mint()["access_token"]
    account = create_account(tenant["tenant_id"], AccountCreate.model_validate({
        "vendor": "acme", "name": "acme", "base_url": fresh_sandbox.hubspot(),
        "credentials": {"type": "bearer", "token": token},
    }))["account_id"]
    job = enqueue(tenant["tenant_id"], JobCreate.model_validate({
        "tool": "acme.crm.contacts.list", "account_id": account,
        "args": {"page_size": 100}, "fields": ["id", "properties.email"],
    }))
    done = wait_until(lambda: (j := load(job["job_id"])) and j["status"] in (
        "succeeded", "failed") and j, 60)
    assert done["status"] == "succeeded", (done, spec_worker.log()[-2000:])
    body = json.loads(result(tenant["tenant_id"], job["job_id"]))
    assert [r["id"] for r in body["records"]] == [str(i) for i in range(1, 1001)]
    assert body["pages_fetched"] == 10
    assert set(body["records"][0]["properties"]) == {"email"}
    pages = [e for e in fresh_sandbox.requests() if e["kind"] == "api"]
    assert len(pages) == 10  # the `if` template ended it: no request after the last page


def test_repeated_cursor_fails_with_pagination_loop(spec_worker, tenant):
    from app.services.jobs import JobCreate, enqueue
    from app.store.accounts import AccountCreate, create_account
    from app.store.jobstore import load

    vendor = LoopyVendor()
    account = create_account(tenant["tenant_id"], AccountCreate.model_validate({
        "vendor": "loopy", "name": "loopy", "base_url": vendor.url,
        "credentials": {"type": "bearer", "token": "t"},
    }))["account_id"]
    job = enqueue(tenant["tenant_id"], JobCreate.model_validate(
        {"tool": "loopy.items.list", "account_id": account}))
    done = wait_until(lambda: (j := load(job["job_id"])) and j["status"] in (
        "succeeded", "failed") and j, 60)
    vendor.server.shutdown()
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "pagination_loop"
    assert vendor.requests == [None, "A", "B"]  # A came back: stop, don't spin


def test_page_budget_truncates_with_continuation(api, fresh_sandbox):
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"], max_pages=3)
    done = api.wait(job["job_id"])
    body = api.result(job["job_id"])
    assert done["status"] == "succeeded" and body["truncated"] is True
    assert body["pages_fetched"] == 3 and len(body["records"]) == 300
    assert "page budget of 3 reached" in done["history"][-1]["reason"]
    nxt = api.post("/v1/jobs", {"continuation": body["continuation"]}).json()
    body2 = api.result(api.wait(nxt["job_id"])["job_id"])
    assert body2["records"][0] == {"id": "301"} and len(body2["records"]) == 300
