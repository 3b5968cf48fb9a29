"""`toolqueue connect VENDOR` as a person runs it: a real subprocess against the real API,
Redis, workers and the sandbox vendor. The test reads the link the command prints, plays the
person in the browser over HTTP (connect page, the sandbox's consent page, Approve or Deny,
the callback, the API's /connect/done page), and checks what the command prints and exits
with: the new account's id (which runs a job), the same id after a re-authorization,
`access_denied`, an expired link, a timeout, Ctrl-C, 503s while Redis is paused, and when a
browser is opened (a terminal, a usable browser, no --no-browser; never a console one)."""

from __future__ import annotations

import contextlib
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from connectkit import RETURN_URL, Browser, elements, oauth_app, sealed_tokens, session
from support import ROOT, wait_until


class Running:
    """The command in the background; its stdout and stderr lines as they come."""

    def __init__(self, api: Any, *args: str, env: dict[str, str] | None = None,
                 stderr: int | None = None) -> None:  # fmt: skip
        full = {**os.environ, "TOOLQUEUE_API_URL": api.url,
                "TOOLQUEUE_API_KEY": api.tenant["api_key"], **(env or {})}  # fmt: skip
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "connect", *args], cwd=ROOT, env=full, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE if stderr is None else stderr,
        )  # fmt: skip
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._drain, args=(self.proc.stdout, self.out))]
        if self.proc.stderr is not None:
            self.readers.append(
                threading.Thread(target=self._drain, args=(self.proc.stderr, self.err))
            )
        for t in self.readers:
            t.start()

    @staticmethod
    def _drain(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def link(self) -> str:
        """The first line on stdout: the connect link."""
        return str(wait_until(lambda: self.out[0] if self.out else None, 30, 0.05))

    def finish(self, timeout: float = 60) -> tuple[int, list[str], str]:
        """(exit code, stdout lines, stderr text) once the command ended."""
        code = self.proc.wait(timeout)
        for t in self.readers:
            t.join(10)
        return code, self.out, "\n".join(self.err)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def connect(api: Any, *args: str, **kw: Any) -> Iterator[Running]:
    running = Running(api, *args, **kw)
    try:
        yield running
    finally:
        running.stop()


def consent(link: str, decision: str = "approve") -> tuple[Browser, str]:
    """The person's part: the connect page, the vendor's consent page, Approve or Deny, and
    the redirects to where the browser lands (fetched: the API's /connect/done page)."""
    browser = Browser()
    action, fields = browser.open_consent(link)
    landed = browser.follow(browser.decide(action, fields, decision))
    return browser, landed


def test_connect_prints_a_link_then_the_new_account_which_runs_a_job(
    api, fresh_sandbox, workers, r
):
    from app.kernel import keys

    app = oauth_app(api, fresh_sandbox, "hubspot")
    with connect(api, "hubspot", "--user", "u-cli-1", "--email", "ada@example.com") as cli:
        link = cli.link()
        assert link.startswith(api.url + "/connect/")
        assert cli.proc.poll() is None  # waiting for the person
        browser, landed = consent(link)
        code, out, err = cli.finish()

    assert code == 0, err
    assert landed.startswith(api.url + "/connect/done?")  # the default return_url
    done = elements(browser.pages[-1])
    account = out[-1]
    assert out == [link, account] and account.startswith("acc_")  # stdout: link, then id
    assert done.by_id["account-id"] and f">{account}<" in browser.pages[-1]
    assert f"hubspot account {account} connected" in err
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["vendor"] == "hubspot" and view["status"] == "active"
    assert view["name"] == "hubspot for ada@example.com"
    assert r.hget(keys.account(account), "end_user_id") == "u-cli-1"
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    assert api.wait(job["job_id"])["status"] == "succeeded"
    assert len(api.records(job["job_id"])) == 1000
    printed = "\n".join(out) + err
    secrets_ = [app["client_secret"], api.tenant["api_key"], *sealed_tokens(r, account).values()]
    assert not [s for s in secrets_ if s in printed]


def test_deny_at_the_vendor_exits_1_with_access_denied(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "hubspot")
    args = ("--scopes", "crm.read, crm.write", "--return-url", RETURN_URL, "--no-browser")
    with connect(api, "hubspot", *args) as cli:
        link = cli.link()
        browser, landed = consent(link, "deny")
        code, out, err = cli.finish()

    assert code == 1
    assert out == [link]  # no account id
    assert "error access_denied:" in err and "approve" in err
    assert landed.startswith(RETURN_URL + "?") and "error=access_denied" in landed
    authorize = dict(parse_qsl(urlsplit(browser.urls[1]).query))  # the page's Continue link
    assert authorize["scope"] == "crm.read crm.write"


def done_page(api_url: str, **query: str) -> requests.Response:
    return requests.get(f"{api_url}/connect/done", params=query, timeout=10)


def test_the_done_page_shows_only_a_well_formed_account_id_or_error_code(api_url):
    page = done_page(api_url, error="access_denied", error_description="call 555-0100")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert elements(page.text).by_id["error-code"] and ">access_denied<" in page.text
    assert "555-0100" not in page.text  # nobody's text on our page
    odd = done_page(api_url, status="connected", account_id="<b>x</b>", error="<script>")
    assert "<b>" not in odd.text and "<script>" not in odd.text
    assert "Nothing was connected" in odd.text and "account-id" not in elements(odd.text).by_id
    made = done_page(api_url, status="reactivated", account_id="acc_1f2e")
    assert "Account reconnected" in made.text and ">acc_1f2e<" in made.text


def test_reauthorizing_with_account_prints_the_same_id_and_new_tokens_are_stored(
    api, fresh_sandbox, r
):
    oauth_app(api, fresh_sandbox, "hubspot")
    account = Browser().connect(session(api, "hubspot").json()["connect_url"])["account_id"]
    before = sealed_tokens(r, account)

    with connect(api, "hubspot", "--account", account, "--no-browser") as cli:
        link = cli.link()
        page = Browser().request("GET", link)
        assert "Reconnect" in page.text
        _, landed = consent(link)
        code, out, err = cli.finish()

    assert code == 0, err
    assert out == [link, account]
    assert f"hubspot account {account} re-authorized" in err
    assert "status=reactivated" in landed
    assert sealed_tokens(r, account)["access_token"] != before["access_token"]
    assert api.get(f"/v1/accounts/{account}").json()["status"] == "active"


def test_an_expired_link_exits_1_without_waiting_for_the_timeout(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "hubspot")
    started = time.monotonic()
    with connect(api, "hubspot", "--expires-in", "1", "--timeout", "60", "--no-browser") as cli:
        link = cli.link()
        code, out, err = cli.finish(30)
    took = time.monotonic() - started

    assert code == 1
    assert out == [link]
    assert "error expired_session:" in err and "run this again" in err
    assert took < 20  # ended by the session's expiry, not the 60 s timeout
    assert Browser().request("GET", link).status_code == 410


def test_the_timeout_gives_up_on_a_pending_link(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "hubspot")
    started = time.monotonic()
    with connect(api, "hubspot", "--timeout", "2", "--no-browser") as cli:
        link = cli.link()
        code, out, err = cli.finish(30)

    assert code == 1 and out == [link]
    assert "gave up waiting" in err and "still pending" in err
    assert 2 <= time.monotonic() - started < 15
    assert Browser().request("GET", link).status_code == 200  # the link still works


def test_ctrl_c_stops_waiting_cleanly(api, fresh_sandbox):
    oauth_app(api, fresh_sandbox, "hubspot")
    with connect(api, "hubspot", "--no-browser") as cli:
        cli.link()
        time.sleep(0.5)  # in the wait loop
        cli.proc.send_signal(signal.SIGINT)
        code, _, err = cli.finish(15)

    assert code == 130
    assert "stopped waiting" in err and "Traceback" not in err


def test_an_unknown_vendor_or_a_missing_app_exits_1_with_the_fix(api, fresh_sandbox):
    with connect(api, "hubspot", "--no-browser") as cli:
        code, out, err = cli.finish(30)

    assert code == 1 and out == []
    assert "oauth_app_not_found" in err and "PUT /v1/oauth-apps/VENDOR" in err
    oauth_app(api, fresh_sandbox, "shopify")
    with connect(api, "shopify", "--no-browser") as cli:
        code, out, err = cli.finish(30)
    assert code == 1 and out == [] and "--shop" in err


def browser_script(folder: Path, name: str) -> tuple[Path, Path]:
    """A `BROWSER` command that writes the URL it was given to a file."""
    seen = folder / f"{name}.url"
    script = folder / name
    script.write_text(f'#!/bin/sh\necho "$1" > {seen}\n')
    script.chmod(0o755)
    return script, seen


def on_a_terminal(api: Any, env: dict[str, str], *args: str) -> tuple[Running, int]:
    """The command with stderr on a pseudo-terminal (a person at it); returns it and the
    terminal's master end (read it, or the command may block writing)."""
    master, slave = pty.openpty()
    running = Running(api, "hubspot", *args, env=env, stderr=slave)
    os.close(slave)
    threading.Thread(target=_read_all, args=(master,), daemon=True).start()
    return running, master


def _read_all(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 4096):
            pass


def test_the_link_opens_in_a_usable_browser_only_on_a_terminal(api, fresh_sandbox, tmp_path):
    oauth_app(api, fresh_sandbox, "hubspot")
    opener, opened = browser_script(tmp_path, "open-url")
    env = {"BROWSER": str(opener), "DISPLAY": "", "WAYLAND_DISPLAY": ""}

    cli, _ = on_a_terminal(api, env, "--timeout", "30")
    try:
        link = cli.link()
        wait_until(lambda: opened.exists() and opened.read_text().strip(), 10, 0.05)
        assert opened.read_text().strip() == link
    finally:
        cli.stop()

    opened.unlink()
    console, console_seen = browser_script(tmp_path, "lynx")  # would take the terminal
    for args, extra in [(["--no-browser"], {}), ([], {"BROWSER": str(console)})]:
        cli, _ = on_a_terminal(api, {**env, **extra}, "--timeout", "1", *args)
        try:
            assert cli.link().startswith(api.url + "/connect/")  # printed either way
            assert cli.finish(30)[0] == 1  # timed out
        finally:
            cli.stop()
        assert not opened.exists() and not console_seen.exists()
    piped = Running(api, "hubspot", "--timeout", "1", env=env)  # stderr not a terminal
    try:
        assert piped.finish(30)[0] == 1 and piped.out[0].startswith(api.url)
    finally:
        piped.stop()
    assert not opened.exists()


def test_503s_while_redis_is_paused_are_waited_out(api, fresh_sandbox, redis_server):
    oauth_app(api, fresh_sandbox, "hubspot")
    with connect(api, "hubspot", "--no-browser") as cli:
        link = cli.link()
        os.kill(redis_server.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: any("503 store_unavailable" in e for e in cli.err), 30, 0.1)
            assert cli.proc.poll() is None  # still waiting
        finally:
            os.kill(redis_server.pid, signal.SIGCONT)
        _, landed = consent(link)
        code, out, err = cli.finish()

    assert code == 0, err
    assert "reading again in 2 s" in err  # the API's Retry-After
    assert out == [link, out[-1]] and f"account_id={out[-1]}" in landed
