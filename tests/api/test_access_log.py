"""Credentials in a query string never reach a log file: the API's access log, started exactly
as `toolqueue up`, docker-compose and the Dockerfile start it, shows the path and the
parameter's name, never its value."""

from __future__ import annotations

import json
import logging
import os
import re
import sys

import pytest
import requests
import yaml
from support import ROOT, Proc, free_port, wait_until

from app.cli.stack import Stack
from connectors.logredact import REDACTED, RedactCredentials, redact

SECRET = "SECRETVALUE"
LINK_TOKEN = "tqcs_" + "Zq3" * 14  # the shape of a connect link's token


def stack_argv() -> list[str]:
    """The API's command in `toolqueue up` (app/stack.py), at its most verbose log level."""
    (api,) = [c for c in Stack(sandbox=False)._children_spec() if c.name == "api"]
    argv = list(api.argv)
    argv[argv.index("--log-level") + 1] = "debug"
    return argv


def compose_argv() -> list[str]:
    """The compose file's command as compose runs it: `${VAR:-default}` interpolated."""
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

    def interpolate(arg: str) -> str:
        return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: os.environ.get(m[1], m[2]), arg)

    return [sys.executable, "-m", *map(interpolate, doc["services"]["api"]["command"])]


def dockerfile_argv() -> list[str]:
    (cmd,) = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.startswith("CMD")]
    return [sys.executable, "-m", *json.loads(cmd.removeprefix("CMD"))]


def serve(name: str, argv: list[str], port: int) -> Proc:
    """`argv` with its host and port on loopback, and its access log (if any) on."""
    argv = [a for a in argv if a != "--no-access-log"]
    for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    if "--log-level" not in argv:
        argv += ["--log-level", "info"]
    return Proc(name, argv)


@pytest.mark.parametrize("command", [stack_argv, compose_argv, dockerfile_argv],
                         ids=["toolqueue-up", "docker-compose", "dockerfile"])  # fmt: skip
def test_credentials_in_a_query_string_stay_out_of_the_access_log(api_url, command):
    port = free_port()
    proc = serve(f"api-log-{command.__name__}", command(), port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ok(f"{url}/healthz"), 60, 0.2)
        assert requests.get(f"{url}/v1/jobs?limit=5&api_key={SECRET}", timeout=5).status_code
        assert requests.get(f"{url}/healthz?token={SECRET}", timeout=5).status_code == 200
        requests.get(f"{url}/v1/jobs?Access_Token={SECRET}&x-amz-signature={SECRET}", timeout=5)
        requests.get(f"{url}/connect/{LINK_TOKEN}", timeout=5)  # a connect link is a credential
        wait_until(lambda: proc.log().count("/healthz?token=") >= 1, 10, 0.1)
        wait_until(lambda: "Access_Token=" in proc.log(), 10, 0.1)
        wait_until(lambda: "/connect/" in proc.log(), 10, 0.1)
    finally:
        proc.stop()
    log = proc.log()
    assert SECRET not in log
    assert f"/v1/jobs?limit=5&api_key={REDACTED}" in log  # the path and the other parameters
    assert f"/healthz?token={REDACTED}" in log
    assert f"/v1/jobs?Access_Token={REDACTED}&x-amz-signature={REDACTED}" in log
    assert LINK_TOKEN not in log and f"/connect/{REDACTED}" in log


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize(("text", "want"), [
    ("/v1/jobs?api_key=s3cr3t", f"/v1/jobs?api_key={REDACTED}"),
    ("/cb?a=1&token=t&b=2", f"/cb?a=1&token={REDACTED}&b=2"),
    ("/x?client_secret=a;password=b", f"/x?client_secret={REDACTED};password={REDACTED}"),
    ("GET /connect/tqcs_abcdefghijklmnopqrstuv HTTP/1.1", f"GET /connect/{REDACTED} HTTP/1.1"),
    ("/connect/callback?code=c&state=s", f"/connect/callback?code={REDACTED}&state=s"),
    ("POST /connect/tqcs_abcdefghijklmnopqrstuv/cancel HTTP/1.1",
     f"POST /connect/{REDACTED}/cancel HTTP/1.1"),
    ("/oauth?code=abc&state=xyz", f"/oauth?code={REDACTED}&state=xyz"),
    ("/x?webhook_secret=a&session_token=b&x-api-key=c",
     f"/x?webhook_secret={REDACTED}&session_token={REDACTED}&x-api-key={REDACTED}"),
    ("/x?api%5Fkey=a", f"/x?api%5Fkey={REDACTED}"),  # a percent-encoded name
    ("/export.csv?X-Amz-Credential=a&X-Amz-Signature=b&sig=c",
     f"/export.csv?X-Amz-Credential={REDACTED}&X-Amz-Signature={REDACTED}&sig={REDACTED}"),
    ('GET "/x?hapikey=a HTTP/1.1" 200', f'GET "/x?hapikey={REDACTED} HTTP/1.1" 200'),
    ("/x?token=", "/x?token="),  # nothing to hide
    ("/v1/jobs?limit=10&after=NTI1Cg%3D%3D", "/v1/jobs?limit=10&after=NTI1Cg%3D%3D"),
    ("no query: key=value in a sentence", "no query: key=value in a sentence"),
])  # fmt: skip
def test_redact_hides_credential_values_and_keeps_everything_else(text, want):
    assert redact(text) == want


def test_the_filter_rewrites_arguments_of_any_shape_before_formatting():
    f = RedactCredentials()
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, '%s "%s %s" %d',
                            ("1.2.3.4", "GET", f"/a?token={SECRET}", 200), None)  # fmt: skip
    assert f.filter(rec) and SECRET not in rec.getMessage() and "/a?token=" in rec.getMessage()
    by_name = ({"url": f"/?sig={SECRET}"},)
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, "%(url)s", by_name, None)
    assert f.filter(rec) and rec.getMessage() == f"/?sig={REDACTED}"
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, f"fetched /?key={SECRET}", None, None)
    assert f.filter(rec) and SECRET not in rec.getMessage()


def test_the_vendor_session_redacts_urllib3s_request_lines(caplog):
    """At DEBUG urllib3 prints every request line: a signed download link is a credential."""
    from connectors import http

    http.session()
    logger = logging.getLogger("urllib3.connectionpool")
    with caplog.at_level(logging.DEBUG, logger="urllib3.connectionpool"):
        logger.debug('%s://%s:%s "%s %s %s" %s %s', "https", "s3.example", 443, "GET",
                     f"/f.csv?X-Amz-Signature={SECRET}", "HTTP/1.1", 200, 0)  # fmt: skip
    assert SECRET not in caplog.text and "/f.csv?X-Amz-Signature=" in caplog.text
