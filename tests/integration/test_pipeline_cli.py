"""`toolqueue pipeline …` as a user runs it (a subprocess, not a terminal) against the real API,
workers and the vendor sandbox: run FILE (JSON and YAML), watch and its exit codes (0
succeeded, 3 partly_done, 1 cancelled), status, rejected, retry-rejected, cancel; the table
`render_pipeline` draws and the live (terminal) view."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pipelinekit import definition, stage, view, wait
from support import ROOT, wait_until
from surfacekit import LOCK, UNLOCK, some_phones

from app.cli.pipeline import load_definition, render_pipeline, watch_pipeline
from app.client import Client


def cli(api: Any, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOOLQUEUE_API_URL": api.url, "TOOLQUEUE_API_KEY": api.tenant["api_key"]}
    return subprocess.run([sys.executable, "-m", "app.cli", "pipeline", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def accounts(api: Any, sandbox: Any) -> tuple[str, str]:
    return api.account(sandbox, "hubspot"), api.account(sandbox, "salesforce")


def test_run_a_json_file_then_status(api: Any, fresh_sandbox: Any, tmp_path: Path) -> None:
    spec = tmp_path / "contacts.json"
    spec.write_text(json.dumps(definition(*accounts(api, fresh_sandbox))))
    started = cli(api, "run", str(spec))
    assert started.returncode == 0, started.stderr
    pid = started.stdout.strip()
    assert view(api, pid)["pipeline_id"] == pid  # the one line is the id
    assert wait(api, pid)["status"] == "succeeded"
    status = cli(api, "status", pid)
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["status"] == "succeeded" and shown["stages"][-1]["out"] == 1000
    table = cli(api, "status", pid, "--table").stdout
    assert f"pipeline {pid}  succeeded" in table
    assert "salesforce.records.upsert" in table and "1,000" in table
    listed = cli(api, "list").stdout
    assert listed.startswith(f"{pid}  succeeded")


def test_run_a_yaml_file_and_watch_it_to_succeeded(
    api: Any, fresh_sandbox: Any, tmp_path: Path
) -> None:
    spec = tmp_path / "contacts.yaml"
    spec.write_text(yaml.safe_dump(definition(*accounts(api, fresh_sandbox))))
    assert not spec.read_text().lstrip().startswith("{")  # block YAML, not JSON
    done = cli(api, "run", str(spec), "--watch")
    assert done.returncode == 0, done.stderr
    pid = done.stdout.strip()
    assert view(api, pid)["status"] == "succeeded"
    last = done.stderr.strip().split("\n\n")[-1]  # plain text: the tables printed in turn
    assert last.startswith(f"pipeline {pid}  succeeded")
    rows = [line.split() for line in last.splitlines()[2:6]]
    assert [r[:2] for r in rows] == [["0", "source"], ["1", "map"], ["2", "filter"], ["3", "sink"]]
    assert all("done" in r and "1,000" in r for r in rows)
    assert "\x1b[" not in done.stderr  # no terminal codes when not a terminal


def test_partly_done_exits_3_and_its_rejected_records_can_be_read_and_retried(
    api: Any, fresh_sandbox: Any, tmp_path: Path
) -> None:
    spec = tmp_path / "phones.json"
    spec.write_text(json.dumps(some_phones(*accounts(api, fresh_sandbox))))
    fresh_sandbox.config(**LOCK)
    try:
        pid = cli(api, "run", str(spec)).stdout.strip()
        watched = cli(api, "watch", pid)
        assert watched.returncode == 3, watched.stderr
        assert "partly_done" in watched.stderr
        assert f"100 rejected: toolqueue pipeline rejected {pid}" in watched.stderr
        page = cli(api, "rejected", pid, "--limit", "5")
        assert page.returncode == 0, page.stderr
        rejected = json.loads(page.stdout)
        assert rejected["total"] == 100 and len(rejected["rejected"]) == 5
        assert rejected["next_offset"] == 5
        assert rejected["rejected"][0]["error"]["code"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
        rest = json.loads(cli(api, "rejected", pid, "--offset", "95").stdout)
        assert len(rest["rejected"]) == 5 and "next_offset" not in rest

        fresh_sandbox.config(**UNLOCK)
        retried = cli(api, "retry-rejected", pid, "--watch")
        assert retried.returncode == 0, retried.stderr
        after = view(api, pid)
        assert after["status"] == "succeeded" and after["rejected"] == 0
    finally:
        fresh_sandbox.config(**UNLOCK)


def test_a_cancelled_pipeline_ends_its_watch_with_exit_1(api: Any, fresh_sandbox: Any) -> None:
    fresh_sandbox.config(hubspot_contacts=5000, rate_budgets={"hubspot": 5})
    try:
        pid = api.post("/v1/pipelines", definition(*accounts(api, fresh_sandbox))).json()[
            "pipeline_id"
        ]
        env = {**os.environ, "TOOLQUEUE_API_URL": api.url,
               "TOOLQUEUE_API_KEY": api.tenant["api_key"]}  # fmt: skip
        watcher = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "pipeline", "watch", pid], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_until(lambda: stage(view(api, pid), "source")["out"] > 0, 60, 0.2)
            assert watcher.poll() is None  # still watching a running pipeline
            cancelled = cli(api, "cancel", pid)
            assert cancelled.returncode == 0, cancelled.stderr
            assert json.loads(cancelled.stdout)["status"] == "cancelled"
            _, err = watcher.communicate(timeout=30)
        finally:
            if watcher.poll() is None:
                watcher.kill()
        assert watcher.returncode == 1, err
        assert err.strip().split("\n\n")[-1].startswith(f"pipeline {pid}  cancelled")
        assert "running" in err  # it drew the pipeline while it ran
    finally:
        fresh_sandbox.config(hubspot_contacts=1000, rate_budgets={})


def test_a_definition_that_cannot_run_exits_1_naming_the_problem(
    api: Any, fresh_sandbox: Any, tmp_path: Path
) -> None:
    spec = definition(*accounts(api, fresh_sandbox))
    spec["stages"][1]["filter"] = "properties.emial != null"
    path = tmp_path / "typo.yml"
    path.write_text(yaml.safe_dump(spec))
    refused = cli(api, "run", str(path))
    assert refused.returncode == 1 and refused.stdout == ""
    assert "unknown_field" in refused.stderr and "properties.emial" in refused.stderr
    missing = cli(api, "run", str(tmp_path / "nope.json"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    assert api.get("/v1/pipelines").json()["pipelines"] == []


def test_load_definition_reads_json_or_yaml_whatever_the_name(tmp_path: Path) -> None:
    body = {"source": {"tool": "t", "account_id": "a"}, "sink": {"tool": "s", "account_id": "b"}}
    (tmp_path / "a.txt").write_text(json.dumps(body))
    (tmp_path / "b.txt").write_text(yaml.safe_dump(body))
    assert load_definition(str(tmp_path / "a.txt")) == load_definition(str(tmp_path / "b.txt"))
    assert load_definition(str(tmp_path / "b.txt")) == body
    (tmp_path / "c.json").write_text("source: x\n")
    with pytest.raises(SystemExit, match="not valid JSON"):
        load_definition(str(tmp_path / "c.json"))
    (tmp_path / "d.yaml").write_text("- a list\n")
    with pytest.raises(SystemExit, match="is an object with source, stages, sink"):
        load_definition(str(tmp_path / "d.yaml"))


VIEW = {
    "pipeline_id": "p-1", "status": "running", "name": "nightly", "rejected": 2,
    "reason": "started the source job",
    "stages": [
        {"index": 0, "kind": "source", "tool": "hubspot.contacts.list", "in": 1200, "out": 1200,
         "rejected": 0, "state": "running"},
        {"index": 1, "kind": "filter", "in": 1200, "out": 1100, "rejected": 0, "dropped": 100,
         "state": "idle"},
        {"index": 2, "kind": "sink", "tool": "salesforce.records.upsert", "in": 1100, "out": 900,
         "rejected": 2, "state": "waiting_rate_limit"},
    ],
}  # fmt: skip


def test_render_pipeline_is_a_row_per_stage_with_its_counts() -> None:
    lines = render_pipeline(VIEW).splitlines()
    assert lines[0] == "pipeline p-1  running  'nightly'"
    assert lines[1].split() == ["#", "kind", "tool", "state", "in", "out", "rejected", "dropped"]
    assert lines[2].split() == ["0", "source", "hubspot.contacts.list", "running", "1,200",
                                "1,200", "0"]  # fmt: skip
    assert lines[3].split() == ["1", "filter", "-", "idle", "1,200", "1,100", "0", "100"]
    assert lines[4].split()[3] == "waiting_rate_limit"
    assert len({len(line) for line in lines[1:4]} - {len(lines[1])}) <= 1  # aligned columns
    assert lines[5] == "2 rejected: toolqueue pipeline rejected p-1"
    assert lines[6] == "reason: started the source job"
    failed = {**VIEW, "status": "failed", "rejected": 0,
              "error": {"code": "stage_failed", "message": "the sink job failed"}}  # fmt: skip
    assert "error stage_failed: the sink job failed" in render_pipeline(failed)


def test_the_live_view_draws_on_a_terminal(api: Any, fresh_sandbox: Any) -> None:
    pid = api.post("/v1/pipelines", definition(*accounts(api, fresh_sandbox))).json()[
        "pipeline_id"
    ]
    out = io.StringIO()
    client = Client(api.url, api.tenant["api_key"])
    final = watch_pipeline(client, pid, out, live=True, refresh_s=0.1)
    assert final["status"] == "succeeded"
    text = out.getvalue()
    assert f"pipeline {pid}  succeeded" in text and "salesforce.records.upsert" in text
    assert "\x1b[" in text  # drawn (and redrawn in place) as on a terminal
