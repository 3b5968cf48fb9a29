"""`toolqueue up` as a user runs it: everything starts (a worker per lane group, the API as
several uvicorn processes), a crashed worker is restarted like a supervisor would, and
SIGTERM stops every child and grandchild."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from support import ROOT, free_port, wait_until


def _children(pid: int) -> dict[int, str]:
    """Direct children of `pid` with their command lines, from /proc."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                cmd = (entry / "cmdline").read_bytes()
                out[int(entry.name)] = cmd.replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return out


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/healthz", timeout=3).status_code == 200
    except requests.RequestException:
        return False


def test_up_supervises_and_stops_cleanly(tmp_path):
    api_port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TOOLQUEUE_REDIS_URL"}
    env.update(
        {
            "TOOLQUEUE_HOME": str(tmp_path),
            "TOOLQUEUE_LOCAL_REDIS_PORT": str(free_port()),
            "TOOLQUEUE_API_PORT": str(api_port),
            "TOOLQUEUE_FLOWER_PORT": str(free_port()),
            "TOOLQUEUE_SANDBOX_PORT": str(free_port()),
            "TOOLQUEUE_API_WORKERS": "2",
        }
    )
    log = open(tmp_path / "up.out", "wb")  # noqa: SIM115
    up = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "up", "--concurrency", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{api_port}"
    try:
        wait_until(lambda: _healthy(url), 120, 0.5)
        # the banner: every URL, and Flower's credentials
        wait_until(lambda: "admin" in (tmp_path / "up.out").read_text(), 60, 0.5)
        out = (tmp_path / "up.out").read_text()
        assert f"127.0.0.1:{env['TOOLQUEUE_FLOWER_PORT']}" in out and url in out
        workers = {
            cmd.rsplit("-Q ", 1)[1].strip(): p
            for p, cmd in _children(up.pid).items()
            if " worker " in cmd
        }
        assert sorted(workers) == ["bulk", "interactive", "webhooks,housekeeping"]
        api = next(p for p, cmd in _children(up.pid).items() if " uvicorn " in cmd)
        # uvicorn's processes serve the port: both answer, one or the other by accept order
        wait_until(lambda: len(_children(api)) >= 2, 30)
        os.kill(workers["interactive"], signal.SIGKILL)
        wait_until(lambda: "restarting worker-interactive" in (tmp_path / "up.out").read_text(), 30)
        wait_until(
            lambda: any(
                " -Q interactive" in c and p != workers["interactive"]
                for p, c in _children(up.pid).items()
            ),
            30,
        )
        time.sleep(3)  # the health cache (2 s) must see the new worker
        wait_until(lambda: _healthy(url), 60, 0.5)
        assert up.poll() is None
        children = list(_children(up.pid))
        everyone = children + [g for c in children for g in _children(c)]
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
        for pid in everyone:  # the API's uvicorn workers and Celery's pool processes too
            assert (
                not Path(f"/proc/{pid}").exists()
                or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
            )
    finally:
        if up.poll() is None:
            up.kill()
        log.close()
