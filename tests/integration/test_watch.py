"""Seeing what happens: `watch` over a real job, the job list and the delivery log."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

from rich.console import Console
from support import ROOT

from app.cli.watch import watch
from app.client import Client
from app.store.tenants import create_tenant

CONTACTS = "crm/v3/objects/contacts"


def test_watch_draws_the_job_through_its_states_and_exits_with_it(api, fresh_sandbox, receiver):
    # the job will wait for the rate limit, and its 2 s access token will need refreshing
    fresh_sandbox.config(rate_budget=2, rate_window_ms=2000, hubspot_contacts=500, token_ttl_s=2)
    assert fresh_sandbox.spend("hubspot", CONTACTS, 2) == [200, 200]
    job = api.call(account_id=api.account(fresh_sandbox), args={"limit": 100}, fields=["id"],
                   callback_url=receiver.url)  # fmt: skip
    out = io.StringIO()  # a terminal without colours: every redraw lands in `out`
    console = Console(file=out, width=160, force_terminal=True, color_system=None)
    final = watch(Client(api.url, api.tenant["api_key"]), job["job_id"], console)
    assert final["status"] == "succeeded"
    text = out.getvalue()
    assert "waiting_rate_limit" in text and "next try in" in text  # the countdown
    assert "500 records" in text and "succeeded" in text
    assert "access token refreshed" in text  # the refresh, from the job's history
    assert re.search(r"attempt 1\s+200\s+\d+ ms", text)  # the webhook went out


def test_cli_watch_exits_when_the_job_ends(api, fresh_sandbox):
    job = api.call(account_id=api.account(fresh_sandbox), args={"limit": 100}, max_pages=3)
    env = {**os.environ, "TOOLQUEUE_API_URL": api.url, "TOOLQUEUE_API_KEY": api.tenant["api_key"]}
    done = subprocess.run([sys.executable, "-m", "app.cli", "watch", job["job_id"]], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "succeeded" in done.stderr and "300 records" in done.stderr


def test_jobs_list_filters_by_state(api, fresh_sandbox):
    account = api.account(fresh_sandbox)
    finished = api.call(account_id=account, args={"limit": 100}, max_pages=1)
    api.wait(finished["job_id"])
    rows = api.get("/v1/jobs").json()["jobs"]
    assert rows[0]["job_id"] == finished["job_id"] and rows[0]["status"] == "succeeded"
    assert rows[0]["records"] == 100
    assert all(
        r["status"] == "succeeded" for r in api.get("/v1/jobs?state=succeeded").json()["jobs"]
    )
    assert api.get("/v1/jobs?state=bogus").status_code == 422
    assert finished["job_id"] not in {
        r["job_id"] for r in api.get("/v1/jobs?state=failed").json()["jobs"]
    }


def test_delivery_log_lists_each_attempt(api, fresh_sandbox, receiver):
    job = api.call(account_id=api.account(fresh_sandbox), args={"limit": 100}, max_pages=1,
                   callback_url=receiver.url)  # fmt: skip
    receiver.wait(1)
    log = api.get(f"/v1/jobs/{job['job_id']}/deliveries").json()
    assert log["callback_url"] == receiver.url
    (first,) = log["deliveries"]
    assert first["attempt"] == 1 and first["status_code"] == 200 and first["error"] is None
    assert first["latency_ms"] >= 0 and first["webhook_id"] == f"msg_{job['job_id']}"
    other = type(api)(api.url, create_tenant("other"))
    assert other.get(f"/v1/jobs/{job['job_id']}/deliveries").status_code == 404


def test_cli_jobs_list_and_call_wait_show_the_job(api, fresh_sandbox):
    account = api.account(fresh_sandbox)
    env = {**os.environ, "TOOLQUEUE_API_URL": api.url, "TOOLQUEUE_API_KEY": api.tenant["api_key"],
           "COLUMNS": "200"}  # fmt: skip
    cli = [sys.executable, "-m", "app.cli"]
    call = [*cli, "call", "hubspot.contacts.list", "--account", account,
            "--args", '{"limit": 100}', "--max-pages", "2", "--wait", "30"]  # fmt: skip
    called = subprocess.run(call, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert called.returncode == 0, called.stderr
    out = json.loads(called.stdout)
    assert out["done"] is True and out["record_count"] == 200
    assert "succeeded" in called.stderr and "200 records" in called.stderr  # the live view
    fresh_sandbox.config(latency_ms=300)  # a job slow enough to cancel while it runs
    stopped = api.call(account_id=account, args={"limit": 100})["job_id"]
    assert api.post(f"/v1/jobs/{stopped}/cancel").json()["status"] == "cancelled"

    def jobs_list(state: str) -> str:
        listed = subprocess.run([*cli, "jobs", "list", "--state", state], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=60)  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        return listed.stdout

    succeeded, cancelled = jobs_list("succeeded"), jobs_list("cancelled")
    assert out["job_id"] in succeeded and "hubspot.contacts.list" in succeeded
    assert stopped not in succeeded  # --state filters
    assert stopped in cancelled and out["job_id"] not in cancelled
