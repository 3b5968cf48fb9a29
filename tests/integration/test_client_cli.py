"""The Python client and the CLI against the real API."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from app.client import Client, ClientError


def test_client_call_wait_result(api, fresh_sandbox):
    client = Client(api.url, api.tenant["api_key"])
    account = api.account(fresh_sandbox)
    job = client.call("hubspot.contacts.list", account, {"limit": 100}, fields=["id"])
    assert job["status"] == "queued"
    out = client.wait(job["job_id"], budget_s=60)
    assert out["done"] is True and out["status"] == "succeeded"
    assert out["record_count"] == 1000


def test_client_wait_budget_returns_state(api, fresh_sandbox):
    fresh_sandbox.config(latency_ms=300)
    client = Client(api.url, api.tenant["api_key"])
    account = api.account(fresh_sandbox)
    job = client.call("hubspot.contacts.list", account, {"limit": 10})
    out = client.wait(job["job_id"], budget_s=0.5)
    assert out["done"] is False and out["status"] in ("queued", "running")
    assert "progress" in out
    client.cancel(job["job_id"])


def test_client_errors_are_typed(api):
    client = Client(api.url, api.tenant["api_key"])
    with pytest.raises(ClientError) as exc:
        client.get("nope")
    assert exc.value.status == 404 and exc.value.code == "job_not_found"


def _cli(*args: str, api_url: str, api_key: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOOLQUEUE_API_URL": api_url, "TOOLQUEUE_API_KEY": api_key}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_end_to_end(api_url, fresh_sandbox):
    out = _cli("tenants", "create", "cli-co", api_url=api_url)
    assert out.returncode == 0, out.stderr
    tenant = json.loads(out.stdout)
    assert set(tenant) == {"tenant_id", "api_key", "key_id", "webhook_secret"}
    assert tenant["webhook_secret"].startswith("whsec_")
    key = tenant["api_key"]
    tokens = fresh_sandbox.mint()
    creds = json.dumps({"type": "bearer", "token": tokens["access_token"]})
    out = _cli("accounts", "add", "--vendor", "hubspot", "--name", "crm",
               "--base-url", fresh_sandbox.hubspot(), "--credentials", creds,
               api_url=api_url, api_key=key)
    assert out.returncode == 0, out.stderr
    assert tokens["access_token"] not in out.stdout
    account = json.loads(out.stdout)["account_id"]
    out = _cli("call", "hubspot.contacts.list", "--account", account, "--args",
               '{"limit": 100}', "--fields", "id", "--wait", "60", api_url=api_url, api_key=key)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["status"] == "succeeded" and body["record_count"] == 1000
    out = _cli("status", body["job_id"], api_url=api_url, api_key=key)
    assert json.loads(out.stdout)["progress"]["records"] == 1000
    out = _cli("result", body["job_id"], api_url=api_url, api_key=key)
    assert json.loads(out.stdout)["records"][0] == {"id": "1"}
    out = _cli("status", body["job_id"], api_url=api_url, api_key="wrong")
    assert out.returncode == 1 and "unauthorized" in out.stderr
