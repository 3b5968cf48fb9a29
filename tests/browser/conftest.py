"""A headless Chromium per module, a fresh tab (its own cookies) per test, and the page a
connect flow returns to (return_url), served on loopback so the browser really lands."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from browserkit import Tab, chromium_path, launch
from playwright.sync_api import Browser, sync_playwright


@pytest.fixture(scope="session")
def system_chromium() -> str:
    found = chromium_path()
    if not found:
        pytest.skip("no Chromium: apt-get install chromium (.ci/run does; there a skip fails)")
    return found


@pytest.fixture(scope="module")
def chromium(system_chromium: str) -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = launch(p)
        yield browser
        browser.close()


@pytest.fixture
def tab(chromium: Browser) -> Iterator[Tab]:
    opened = Tab.open(chromium)
    yield opened
    opened.close()


class Landing:
    """The tenant's return_url: a page that says where the browser arrived."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                hits.append(self.path)
                body = b'<!doctype html><html lang="en"><title>Back</title><h1>Back home</h1>'
                self.send_response(200)
                self.send_header("content-type", "text/html")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/done"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="session")
def landing() -> Iterator[Landing]:
    server = Landing()
    yield server
    server.server.shutdown()
