"""The ways to run toolqueue (compose, Dockerfile, Makefile, CI script) point at real code.

Docker does not run here, so the compose file is checked statically, and every command it
runs is resolved against the importable entrypoints it names.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKERS = {"worker-interactive", "worker-bulk", "worker-service"}
SERVICES = {"redis", "api", "beat", "flower", "sandbox", *WORKERS}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    assert cmd, "every service states its command"
    return shlex.split(cmd) if isinstance(cmd, str) else [str(part) for part in cmd]


def test_compose_has_every_service(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) >= SERVICES
    assert services["sandbox"].get("profiles") == ["dev"]
    for name in SERVICES - {"sandbox"}:
        assert "profiles" not in services[name], f"{name} must run by default"
    for name in WORKERS:
        assert "container_name" not in services[name], f"{name} must scale with --scale"


def test_compose_workers_consume_real_lanes_and_every_lane(compose: dict[str, Any]) -> None:
    """Each worker names real queues (a typo would leave a lane unconsumed and its jobs
    waiting forever), together every lane, and bulk apart from interactive and webhooks."""
    from app.dispatch.lanes import ALL, Lane

    consumed: dict[str, set[str]] = {}
    for name in WORKERS:
        cmd = _command(compose["services"][name])
        consumed[name] = set(cmd[cmd.index("-Q") + 1].split(","))
        assert consumed[name] <= {lane.value for lane in ALL}, (name, consumed[name])
    assert set().union(*consumed.values()) == {lane.value for lane in ALL}
    for queues in consumed.values():
        assert not (Lane.BULK in queues and queues & {Lane.INTERACTIVE, Lane.WEBHOOKS})


def test_compose_redis_is_durable(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    assert str(redis["image"]).startswith("redis:7")
    cmd = _command(redis)
    assert cmd[0] == "redis-server"
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--appendfsync") + 1] == "everysec"
    volume = redis["volumes"][0]
    name, _, target = volume.partition(":")
    assert target == "/data" and name in compose["volumes"], "AOF must live in a named volume"
    assert "healthcheck" in redis


def test_compose_app_services_share_redis_and_secret(compose: dict[str, Any]) -> None:
    for name in SERVICES - {"redis"}:
        env = compose["services"][name]["environment"]
        assert env["TOOLQUEUE_REDIS_URL"] == "redis://redis:6379/0", name
        assert env["TOOLQUEUE_SECRET_KEY"].startswith("${TOOLQUEUE_SECRET_KEY:?"), name
    flower_env = compose["services"]["flower"]["environment"]
    assert "FLOWER_BASIC_AUTH" in flower_env
    assert "FLOWER_UNAUTHENTICATED_API" not in flower_env
    beat = compose["services"]["beat"]
    schedule = _command(beat)[_command(beat).index("-s") + 1]
    assert any(v.split(":")[1] == str(Path(schedule).parent) for v in beat["volumes"])


def _check_celery(cmd: list[str]) -> None:
    module = cmd[cmd.index("-A") + 1]
    assert module == "app.celery"
    assert cmd[cmd.index("-A") + 2] in {"worker", "beat", "flower"}
    celery_app = importlib.import_module(module).app
    from celery import Celery

    assert isinstance(celery_app, Celery)


def _check_uvicorn(cmd: list[str]) -> None:
    target = next(arg for arg in cmd[1:] if ":" in arg and not arg.startswith("-"))
    module_name, _, attr = target.partition(":")
    obj = getattr(importlib.import_module(module_name), attr)
    if "--factory" in cmd:
        obj = obj()
    assert callable(obj), f"{target} is not an ASGI app"
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"


def assert_python_m(cmd: list[str]) -> None:
    module = cmd[cmd.index("-m") + 1]
    assert importlib.util.find_spec(module) is not None
    assert importlib.util.find_spec(f"{module}.__main__") is not None


@pytest.mark.parametrize("service", sorted(SERVICES - {"redis"}))
def test_compose_commands_name_real_entrypoints(compose: dict[str, Any], service: str) -> None:
    cmd = _command(compose["services"][service])
    if cmd[0] == "celery":
        _check_celery(cmd)
    elif cmd[0] == "uvicorn":
        _check_uvicorn(cmd)
    elif cmd[0] in {"python", "python3"} and "-m" in cmd:
        assert_python_m(cmd)
    else:
        pytest.fail(f"{service}: unknown entrypoint {cmd!r}")


def test_python_m_sandbox_exists() -> None:
    assert_python_m(["python", "-m", "sandbox"])


def test_dockerfile_installs_project_as_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"pip install[^\n]*\s\.(\s|$)", text), "the image must `pip install .`"
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in {"root", "0"}


def test_ci_run_calls_make_test() -> None:
    script = ROOT / ".ci" / "run"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash") or text.startswith("#!/bin/bash")
    assert "set -euo pipefail" in text
    assert re.search(r"\bmake test\b", text)


def test_makefile_targets() -> None:
    text = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, re.M))
    assert {"install", "up", "demo", "test", "bench"} <= targets
    assert re.search(r"^PYTHON \?=", text, re.M)


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_makefile_parses_and_targets_self_install() -> None:
    for target in ("up", "demo", "test", "bench"):
        out = subprocess.run(
            ["make", "-n", "-C", str(ROOT), "-W", "pyproject.toml", target],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "pip install" in out, f"`make {target}` must install first"


NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
}
# "22 tools", "**8 vendors**", "two unified tools", "4 job tools": a number, one optional
# qualifier, then what it counts
COUNT = re.compile(
    r"\b(\d+|" + "|".join(NUMBER_WORDS) + r")\s+(?:([a-z-]+)\s+)?(tools|vendors|connectors)\b",
    re.IGNORECASE,
)


def _registry_counts() -> dict[tuple[str, str], int]:
    """What each counted phrase may say, from the registry the server lists."""
    from app.kernel.registry import registry
    from app.mcp.pipelinetools import PIPELINE_TOOLS
    from app.mcp.server import JOB_TOOLS

    reg = registry()
    unified = [t for t in reg.tools.values() if t.vendor not in reg.vendors]
    reads = [t for t in reg.tools.values() if t.read_only]
    return {
        ("", "tools"): len(reg.tools),
        ("read", "tools"): len(reads),
        ("write", "tools"): len(reg.tools) - len(reads),
        ("vendor", "tools"): len(reg.tools) - len(unified),
        ("unified", "tools"): len(unified),
        ("job", "tools"): len(JOB_TOOLS),
        ("pipeline", "tools"): len(PIPELINE_TOOLS),
        ("mcp", "tools"): len(reg.tools) + len(JOB_TOOLS) + len(PIPELINE_TOOLS),
        ("", "vendors"): len(reg.vendors),
        ("", "connectors"): len(reg.vendors),
    }


def test_every_count_of_tools_or_vendors_in_the_readme_is_the_registrys() -> None:
    """A hand-written count drifts (the README said 19 tools while the server listed 22): any
    that remains must match the registry, or go."""
    counts = _registry_counts()
    text = (ROOT / "README.md").read_text().replace("**", "")
    found = []
    for m in COUNT.finditer(text):
        number, qualifier, noun = m.group(1).lower(), (m.group(2) or "").lower(), m.group(3)
        said = NUMBER_WORDS[number] if number in NUMBER_WORDS else int(number)
        line = text.count("\n", 0, m.start()) + 1
        key = (qualifier, noun.lower())
        assert key in counts, f"README.md:{line}: {m[0]!r} counts something the registry cannot"
        assert said == counts[key], f"README.md:{line}: {m[0]!r}, the registry has {counts[key]}"
        found.append(m[0])
    assert found, "the README's headline count is checked here; if it was dropped, drop this"


def test_the_readme_tool_table_lists_exactly_the_registrys_tools() -> None:
    """Every read tool pages (the write tools' table is generated: `tests/unit/test_docs.py`)."""
    from app.kernel.registry import registry

    text = (ROOT / "docs" / "tools.md").read_text()  # the README's tool table moved there
    section = text[text.index("\n## How each tool pages\n") : text.index("\n## Vendors\n")]
    listed = re.findall(r"^\| `([a-z0-9_.]+)` \|", section, re.MULTILINE)
    reads = [name for name, tool in registry().tools.items() if tool.read_only]
    assert listed and sorted(listed) == sorted(reads)
