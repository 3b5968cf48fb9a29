"""The consent commands of the real CLI (`tenants policy`, `keys`, `approvals`, `watch`) over
the real API, workers and sandbox: what they print, how they exit, and what the job then is."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from typing import Any

from consentkit import awaiting, consent_tenant, effects, seeded_contacts
from rich.console import Console
from support import ROOT

from app.cli.watch import watch
from app.client import Client

FULL = {"writes": "approve", "destructive": "deny", "approve_above": 5, "self_approve": True}


def cli(api: Any, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOOLQUEUE_API_URL": api.url, "COLUMNS": "200",
           "TOOLQUEUE_API_KEY": key or api.tenant["api_key"]}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "app.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_key(api: Any, *flags: str) -> dict[str, Any]:
    made: dict[str, Any] = json.loads(ok(cli(api, "keys", "create", *flags)))
    return made


def update_job(owner: Any, account: str, cid: str, key: str, name: str = "Grace") -> str:
    """An update (destructive: held under the default policy), enqueued through the CLI."""
    args = json.dumps({"id": cid, "properties": {"firstname": name}})
    called = cli(owner, "call", "hubspot.contacts.update", "--account", account, "--args", args,
                 key=key)  # fmt: skip
    job: dict[str, Any] = json.loads(ok(called))
    rested = awaiting(owner, job["job_id"])
    assert rested["status"] == "awaiting_approval", rested
    return str(job["job_id"])


def previewed(api: Any, job_id: str) -> tuple[dict[str, Any], str]:
    """The one record of a job's preview (GET /v1/jobs/{id}/preview), and its counts as the
    CLI should print them."""
    (row,) = api.get(f"/v1/jobs/{job_id}/preview").json()["records"]
    return row, f"1 {row['action']} of 1 records"


def test_policy_set_replaces_each_level_and_show_reads_it_back(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "cli-policy")
    account = owner.account(sandbox, "hubspot")
    agent = new_key(owner, "--name", "agent")
    levels = [([], "/v1/policy"), (["--account", account], f"/v1/accounts/{account}/policy"),
              (["--key", agent["key_id"]], f"/v1/keys/{agent['key_id']}/policy")]  # fmt: skip
    for level, path in levels:
        view = json.loads(ok(cli(owner, "tenants", "policy", "set", *level, "--writes", "approve",
                                 "--destructive", "deny", "--approve-above", "5",
                                 "--self-approve", "yes")))  # fmt: skip
        assert view["policy"] == FULL
        shown = json.loads(ok(cli(owner, "tenants", "policy", "show", *level)))
        assert shown["policy"] == FULL and shown["defaults"]["destructive"] == "approve"
        # `set` replaces: what is not given is no longer set at this level
        ok(cli(owner, "tenants", "policy", "set", *level, "--destructive", "deny"))
        shown = json.loads(ok(cli(owner, "tenants", "policy", "show", *level)))
        assert shown["policy"] == {"destructive": "deny"}
        assert owner.get(path).json()["policy"] == {"destructive": "deny"}  # the API agrees
        refused = cli(owner, "call", "hubspot.contacts.upsert", "--account", account,
                      "--args", '{"records": [{"id": "x@example.com", "properties": {}}]}',
                      key=agent["api_key"])  # fmt: skip
        assert refused.returncode == 1 and "policy_denied" in refused.stderr  # (destructive)
        ok(cli(owner, "tenants", "policy", "set", *level))  # nothing given: removed
        assert json.loads(ok(cli(owner, "tenants", "policy", "show", *level)))["policy"] == {}
    # only an admin key sets policy; a level is one of the three
    denied = cli(owner, "tenants", "policy", "set", "--writes", "deny", key=agent["api_key"])
    assert denied.returncode == 1 and "scope_missing" in denied.stderr
    assert owner.get("/v1/policy").json()["policy"] == {}
    both = cli(owner, "tenants", "policy", "show", "--account", account, "--key", "k")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_keys_create_list_revoke_and_a_read_only_key_is_refused_writes(
    api: Any, sandbox: Any
) -> None:
    owner = consent_tenant(api, "cli-keys")
    account = owner.account(sandbox, "hubspot")
    made = cli(owner, "keys", "create", "--name", "reader", "--scope", "read")
    reader = json.loads(ok(made))
    assert reader["api_key"].startswith("tq_") and reader["scopes"] == ["read"]
    assert "shown this once" in made.stderr
    scoped = new_key(owner, "--scope", "read", "--scope", "write", "--scope", "approve",
                     "--tool", "hubspot.*", "--account", account)  # fmt: skip
    assert scoped["scopes"] == ["approve", "read", "write"]
    assert scoped["tools"] == ["hubspot.*"] and scoped["accounts"] == [account]

    listed = ok(cli(owner, "keys", "list"))
    rows = {row["key_id"]: row for row in json.loads(listed)}
    assert rows[reader["key_id"]]["name"] == "reader"
    assert rows[reader["key_id"]]["scopes"] == ["read"]
    assert reader["api_key"] not in listed and scoped["api_key"] not in listed

    records = '{"records": [{"id": "r@example.com", "properties": {"firstname": "R"}}]}'
    write = ["call", "hubspot.contacts.upsert", "--account", account, "--args", records]
    refused = cli(owner, *write, key=reader["api_key"])
    assert refused.returncode == 1 and "tool_not_allowed" in refused.stderr
    assert "403" in refused.stderr
    read = json.loads(ok(cli(owner, "call", "hubspot.contacts.list", "--account", account,
                             "--args", '{"limit": 10}', key=reader["api_key"])))  # fmt: skip
    assert owner.wait(read["job_id"])["status"] == "succeeded"
    assert not [j for j in owner.get("/v1/jobs").json()["jobs"] if j["tool"].endswith("upsert")]
    other = cli(owner, "keys", "list", key=reader["api_key"])
    assert other.returncode == 1 and "scope_missing" in other.stderr

    revoked = ok(cli(owner, "keys", "revoke", reader["key_id"]))
    assert revoked.strip() == f"revoked {reader['key_id']}"
    gone = cli(owner, "status", read["job_id"], key=reader["api_key"])
    assert gone.returncode == 1 and "unauthorized" in gone.stderr
    assert reader["key_id"] not in ok(cli(owner, "keys", "list"))


def test_approvals_list_show_then_approve_by_another_key(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "cli-approve")
    account = owner.account(sandbox, "hubspot")
    (cid,) = seeded_contacts(owner, account, ["ada@example.com"])
    agent = new_key(owner, "--name", "agent", "--scope", "read", "--scope", "write")
    person = new_key(owner, "--name", "person", "--scope", "approve")
    before = effects(sandbox, "hubspot")["per_object"].get(cid)
    job_id = update_job(owner, account, cid, agent["api_key"])
    binding = owner.get(f"/v1/jobs/{job_id}").json()["approval"]["binding"]
    row, counts = previewed(owner, job_id)

    listed = ok(cli(owner, "approvals", "list", key=person["api_key"]))
    (line,) = [row for row in listed.splitlines() if job_id in row]
    assert "hubspot.contacts.update" in line and counts in line
    assert "destructive: approve" in line

    shown = ok(cli(owner, "approvals", "show", job_id, key=person["api_key"]))
    assert f"{job_id}  hubspot.contacts.update on {account}  awaiting_approval" in shown
    assert "approval pending" in shown
    assert row["action"] == "update" and f"#0  update  {cid}" in shown
    assert 'firstname: "Ada" → "Grace"' in shown  # the vendor's value beside the proposed one
    assert f"binding {binding}" in shown

    own = cli(owner, "approvals", "approve", job_id, key=agent["api_key"])
    assert own.returncode == 1 and "scope_missing" in own.stderr
    stale = cli(owner, "approvals", "approve", job_id, "--binding", "0" * 64, key=person["api_key"])
    assert stale.returncode == 1 and "approval_mismatch" in stale.stderr
    assert owner.get(f"/v1/jobs/{job_id}").json()["status"] == "awaiting_approval"
    assert effects(sandbox, "hubspot")["per_object"].get(cid) == before  # nothing sent yet

    approved = ok(cli(owner, "approvals", "approve", job_id, "--binding", binding,
                      "--reason", "checked", key=person["api_key"]))  # fmt: skip
    assert approved.splitlines()[0].startswith(f"{job_id}  hubspot.contacts.update")
    assert f"approved: {job_id} is queued" in approved
    done = owner.wait(job_id)
    assert done["status"] == "succeeded", done
    assert done["approval"]["state"] == "approved" and done["approval"]["note"] == "checked"
    assert done["approval"]["decided_by"] == person["key_id"]
    assert effects(sandbox, "hubspot")["per_object"][cid].get("update", 0) == 1
    assert job_id not in ok(cli(owner, "approvals", "list", key=person["api_key"]))
    again = cli(owner, "approvals", "approve", job_id, key=person["api_key"])
    assert again.returncode == 1 and "job_not_awaiting_approval" in again.stderr


def test_reject_needs_a_reason_and_cancels_the_job(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "cli-reject")
    account = owner.account(sandbox, "hubspot")
    (cid,) = seeded_contacts(owner, account, ["rej@example.com"])
    agent = new_key(owner, "--scope", "read", "--scope", "write")
    person = new_key(owner, "--scope", "approve")
    before = effects(sandbox, "hubspot")["per_object"].get(cid)
    job_id = update_job(owner, account, cid, agent["api_key"], "Mallory")

    bare = cli(owner, "approvals", "reject", job_id, key=person["api_key"])
    assert bare.returncode == 2 and "--reason" in bare.stderr
    out = ok(cli(owner, "approvals", "reject", job_id, "--reason", "wrong contact",
                 key=person["api_key"]))  # fmt: skip
    assert f"rejected: {job_id} is cancelled" in out
    job = owner.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "cancelled" and job["error"]["code"] == "approval_rejected"
    assert job["approval"]["state"] == "rejected" and job["approval"]["note"] == "wrong contact"
    assert job["approval"]["decided_by"] == person["key_id"]
    assert effects(sandbox, "hubspot")["per_object"].get(cid) == before
    shown = ok(cli(owner, "status", job_id, key=person["api_key"]))
    assert json.loads(shown)["status"] == "cancelled"


def test_watch_shows_the_preview_and_the_approval_until_the_job_ends(
    api: Any, sandbox: Any
) -> None:
    owner = consent_tenant(api, "cli-watch")
    account = owner.account(sandbox, "hubspot")
    (cid,) = seeded_contacts(owner, account, ["watch@example.com"])
    agent = new_key(owner, "--scope", "read", "--scope", "write")
    person = new_key(owner, "--scope", "approve")
    job_id = update_job(owner, account, cid, agent["api_key"])
    _, counts = previewed(owner, job_id)

    out = io.StringIO()  # a terminal without colours: every redraw lands in `out`
    console = Console(file=out, width=200, force_terminal=True, color_system=None)
    view = watch(Client(api.url, agent["api_key"]), job_id, console, budget_s=1.5)
    assert view["status"] == "awaiting_approval"
    text = out.getvalue()
    assert "awaiting_approval" in text and f"preview: {counts}" in text
    assert "approval pending (policy `destructive: approve`) until" in text
    assert re.search(r"\d+h\d\dm left", text)  # a day, as a person reads it
    assert "next try in" not in text  # the parked step is the expiry, not a retry

    env = {**os.environ, "TOOLQUEUE_API_URL": api.url, "TOOLQUEUE_API_KEY": agent["api_key"],
           "COLUMNS": "200"}  # fmt: skip
    command = [sys.executable, "-m", "app.cli", "watch", job_id]
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:  # fmt: skip
        try:
            proc.wait(timeout=2)
            raise AssertionError("watch ended while the job awaited approval")
        except subprocess.TimeoutExpired:
            pass
        Client(api.url, person["api_key"]).approve(job_id, view["approval"]["binding"])
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "succeeded" in err and f"preview: {counts}" in err
    assert f"approval approved (policy `destructive: approve`) by {person['key_id']}" in err
    assert "awaiting approval (policy" in err  # the rest, from the job's history
