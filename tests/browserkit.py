"""Headless Chromium for the browser tests (tests/browser): the system's Chromium (Debian's
`chromium`, which `.ci/run` installs when missing) driven by Playwright, never a browser
Playwright downloads. A `Tab` keeps every URL the browser requested and every page it showed,
so tests can assert that no secret was ever in one, and saves screenshots as artifacts."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, Request

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("TOOLQUEUE_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
# Chromium as this machine runs it: no GPU, no sandbox (CI runs as root), and none of the
# background calls to Google's hosts that a closed network refuses at every start
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]  # fmt: skip
REQUIRED = os.environ.get("TOOLQUEUE_REQUIRE_BROWSER") == "1"  # .ci/run: a skip fails CI


def chromium_path() -> str | None:
    """TOOLQUEUE_CHROMIUM when set (a path that is no browser means none, never another
    one), else `chromium` on PATH."""
    chosen = os.environ.get("TOOLQUEUE_CHROMIUM")
    if chosen is not None:
        return chosen if os.access(chosen, os.X_OK) else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch(p: Playwright) -> Browser:
    """Headless, with a fresh profile (Playwright makes one per launch)."""
    path = chromium_path()
    assert path, "no chromium on PATH"
    return p.chromium.launch(executable_path=path, headless=True, args=FLAGS)


@dataclass
class Tab:
    """One page of its own context (its own cookies), recording what it saw."""

    page: Page
    urls: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, browser: Browser) -> Tab:
        page = browser.new_context(locale="en-US").new_page()
        page.set_default_timeout(20_000)
        tab = cls(page)

        def requested(req: Request) -> None:
            tab.urls.append(req.url)
            if req.redirected_from is not None:  # a Location header the browser followed
                tab.urls.append(req.redirected_from.url)

        page.on("request", requested)
        return tab

    def goto(self, url: str) -> Any:
        response = self.page.goto(url)
        self.keep()
        return response

    def click(self, selector: str) -> None:
        self.page.click(selector)
        self.page.wait_for_load_state()
        self.keep()

    def keep(self) -> None:
        self.pages.append(self.page.content())

    def shot(self, name: str) -> Path:
        """A full-page screenshot under the artifacts folder; the path."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def seen(self) -> str:
        return "\n".join(self.urls + self.pages)

    def close(self) -> None:
        self.page.context.close()
