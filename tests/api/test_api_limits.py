"""toolqueue's own per-tenant API limit (`app.api.throttle`), against the real API and Redis.

Tenants that exercise the limit get a low override at creation; everyone else runs under the
default (1000 per second), which the rest of the suite, schemathesis included, stays under.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from support import Proc, free_port, wait_until

from app.api.throttle import Quota

TRIO = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


def _tenant(name: str, **limit: Any) -> requests.Session:
    from app.store.tenants import create_tenant

    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {create_tenant(name, **limit)['api_key']}"
    return s


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


# -- the pure arithmetic: headers from the tokens left --------------------------------------


def test_headers_count_down_and_round_up() -> None:
    first = Quota(True, 5, 2.0, 4.0)  # a fresh bucket of 5 per 2 s, one request spent
    assert first.headers() == {
        "ratelimit-limit": "5",
        "ratelimit-remaining": "4",
        "ratelimit-reset": "1",  # 0.4 s to refill one token, rounded up
    }
    empty = Quota(True, 5, 2.0, 0.0)
    assert (empty.remaining, empty.reset_s) == (0, 2)  # exactly the window, not 3


def test_refusal_says_when_to_retry() -> None:
    quota = Quota(False, 5, 2.0, 0.3)  # 0.7 tokens short: 0.28 s
    assert quota.headers() == {
        "ratelimit-limit": "5",
        "ratelimit-remaining": "0",
        "ratelimit-reset": "2",  # 4.7 tokens short: 1.88 s
        "retry-after": "1",
    }
    slow = Quota(False, 1, 60.0, 0.5)
    assert (slow.retry_after_s, slow.reset_s) == (30, 30)
    exc = slow.refusal()
    assert (exc.status, exc.headers["retry-after"]) == (429, "30")
    assert exc.body() == {
        "error": "rate_limit_exceeded",
        "message": "API rate limit of 1 requests per 60 s for this tenant exceeded; "
        "retry in 30 s",
    }


def test_retry_after_is_never_zero_and_float_noise_is_ignored() -> None:
    almost = Quota(False, 1000, 1.0, 0.9999)  # 0.1 ms to the next token
    assert almost.retry_after_s == 1
    assert Quota(True, 3, 1.0, 1.9999999999999).remaining == 2  # 2 - float error
    assert Quota(True, 0, 0.0, 0.0).headers() == {}  # unlimited: nothing to announce


# -- the script, in process, against the session's Redis ----------------------------------


def test_bucket_of_non_integral_interval_admits_exactly_the_burst(r: Any) -> None:
    """3 per second: a refill interval of 333,333.3 µs must not cost the burst its last
    token to float error; the bucket key expires once it would be full again."""
    from app.api.throttle import take
    from app.kernel import keys
    from app.store.tenants import create_tenant

    tid = create_tenant("lua", rate_limit=3, rate_window_s=1.0)["tenant_id"]
    quotas = [take(tid) for _ in range(4)]
    assert [q.allowed for q in quotas] == [True, True, True, False]
    assert [q.remaining for q in quotas] == [2, 1, 0, 0]
    assert 0 < r.pttl(keys.tenant_throttle(tid)) <= 1001


# -- over HTTP -------------------------------------------------------------------------------


def test_burst_then_429_then_recovers(api_url: str) -> None:
    s = _tenant("limited", rate_limit=5, rate_window_s=5)  # one token a second
    remaining = []
    for _ in range(5):
        resp = s.get(f"{api_url}/v1/tools", timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.headers["ratelimit-limit"] == "5"
        assert 1 <= int(resp.headers["ratelimit-reset"]) <= 5
        assert "retry-after" not in resp.headers
        remaining.append(int(resp.headers["ratelimit-remaining"]))
    assert remaining == [4, 3, 2, 1, 0]

    refused = s.get(f"{api_url}/v1/tools", timeout=10)
    assert refused.status_code == 429
    body = refused.json()
    assert body["error"] == "rate_limit_exceeded"
    assert "API rate limit of 5 requests per 5 s" in body["message"], body
    retry_after = int(refused.headers["retry-after"])
    assert retry_after == 1  # under a second short of a token, rounded up
    assert refused.headers["ratelimit-remaining"] == "0"
    assert refused.headers["ratelimit-limit"] == "5"
    reset = refused.headers["ratelimit-reset"]
    assert reset.isdigit() and 0 < int(reset) <= 5  # a delta, never an epoch

    # every route, before validation; refusals spend nothing
    assert s.post(f"{api_url}/v1/jobs", json={}, timeout=10).status_code == 429
    assert s.get(f"{api_url}/v1/jobs/nope", timeout=10).status_code == 429

    time.sleep(retry_after)
    again = s.get(f"{api_url}/v1/tools", timeout=10)
    assert again.status_code == 200, again.text
    assert again.headers["ratelimit-remaining"] == "0"


def test_other_tenants_are_unaffected(api_url: str, api: Any) -> None:
    limited = _tenant("one-a-minute", rate_limit=1, rate_window_s=60)
    assert limited.get(f"{api_url}/v1/tools", timeout=10).status_code == 200
    refused = limited.get(f"{api_url}/v1/tools", timeout=10)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) in (59, 60)

    from app.kernel.settings import get_settings

    default = get_settings().api_rate_limit
    resp = api.get("/v1/tools")
    assert resp.status_code == 200
    assert resp.headers["ratelimit-limit"] == str(default)
    assert int(resp.headers["ratelimit-remaining"]) == default - 1  # its first request


def test_headers_on_authenticated_answers_only(api: Any, anon: requests.Session,
                                               api_url: str) -> None:
    for path in ("/v1/jobs/nope", "/v1/jobs/nope/result"):  # errors after auth count too
        resp = api.get(path)
        assert resp.status_code == 404
        assert all(h in resp.headers for h in TRIO), resp.headers
    unauthorized = anon.get(f"{api_url}/v1/tools", timeout=10)
    assert unauthorized.status_code == 401
    assert not any(h in unauthorized.headers for h in TRIO)
    health = requests.get(f"{api_url}/healthz", timeout=10)
    assert not any(h in health.headers for h in TRIO)


def test_zero_means_unlimited(api_url: str) -> None:
    s = _tenant("unlimited", rate_limit=0)
    for _ in range(3):
        resp = s.get(f"{api_url}/v1/tools", timeout=10)
        assert resp.status_code == 200
        assert not any(h in resp.headers for h in TRIO)


def test_cli_sets_the_override(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    with pytest.raises(SystemExit) as done:
        main(["tenants", "create", "cli", "--rate-limit", "2", "--rate-window", "30"])
    assert done.value.code == 0
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {json.loads(capsys.readouterr().out)['api_key']}"
    statuses = [s.get(f"{api_url}/v1/tools", timeout=10).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]

    with pytest.raises(SystemExit) as refused:
        main(["tenants", "create", "cli", "--rate-window", "0"])
    assert "rate_window_s must be" in str(refused.value.code)


# -- shared by every API process -------------------------------------------------------------


@pytest.fixture(scope="module")
def second_api(api_url: str) -> Iterator[str]:
    """Another uvicorn on the same Redis (the environment tests/conftest.py set)."""
    port = str(free_port())
    proc = Proc("api-second", [sys.executable, "-m", "uvicorn", "app.api.main:app",
                               "--host", "127.0.0.1", "--port", port, "--log-level", "warning"])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ok(f"{url}/healthz"), 60, 0.2)
    except AssertionError:
        proc.stop()
        raise AssertionError(proc.log()) from None
    yield url
    proc.stop()


def test_limit_is_shared_across_api_processes(api_url: str, second_api: str) -> None:
    s = _tenant("two-processes", rate_limit=4, rate_window_s=60)
    urls = [api_url, second_api] * 3
    answers = [s.get(f"{url}/v1/tools", timeout=10) for url in urls]
    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429, 429]
    assert [a.headers["ratelimit-remaining"] for a in answers[:4]] == ["3", "2", "1", "0"]
