"""Under .ci/run (TOOLQUEUE_REQUIRE_BROWSER=1) a browser test that skips fails the run: here
pytest runs the MCP sign-in browser tests as a child with no Chromium to find."""

from __future__ import annotations

import os
import subprocess
import sys

from support import ROOT

TARGET = "tests/browser/test_browser_mcp_signin.py"


def run(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", TARGET, "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "TOOLQUEUE_CHROMIUM": "/nonexistent/chromium", **env},
    )  # fmt: skip


def test_skipped_browser_tests_fail_when_required_and_only_skip_otherwise():
    required = run(TOOLQUEUE_REQUIRE_BROWSER="1")
    assert required.returncode == 1, required.stdout[-2000:]
    assert "browser tests required: 2 skipped, 0 run" in required.stdout

    optional = run(TOOLQUEUE_REQUIRE_BROWSER="0")
    assert optional.returncode == 0, optional.stdout[-2000:]
    assert "2 skipped" in optional.stdout
