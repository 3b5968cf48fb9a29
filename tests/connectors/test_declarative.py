"""A spec written here (not a built-in) runs end to end: real worker, sandbox as the vendor."""

from __future__ import annotations

import json
import socket
import sys

import pytest
from conftest import Proc, wait_until

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


@pytest.fixture
def spec_worker(tmp_path, workers, monkeypatch):
    from app.registry import registry
    from app.settings import get_settings

    (tmp_path / "acme.json").write_text(json.dumps(SPEC))
    workers.stop_all()  # the job must land on a worker that knows the spec
    name = "specworker"
    proc = Proc(name, [sys.executable, "-m", "celery", "-A", "app.celery", "worker",
                       "--concurrency=1", "-n", f"{name}@%h", "--without-mingle",
                       "--without-gossip"], env={"TOOLQUEUE_CONNECTORS_DIR": str(tmp_path)})
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
    from app.accounts import AccountCreate, create_account
    from app.jobs import JobCreate, enqueue, result
    from app.jobstore import load

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
