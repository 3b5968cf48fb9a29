"""`app.client.call_with_backoff`: waits what the response says, never an epoch; no network."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from fakes import canned

from app.client import JITTER_S, ClientError, RateLimitExhausted, call_with_backoff

NOW = 1712048355.0  # the article's example: `ratelimit-reset: 1712048400` is 45 s away


def response(status: int, headers: dict[str, str] | None = None, body: Any = None) -> Any:
    return canned(status, body, headers)


class Script:
    """`fn` returning prepared responses in order, counting calls."""

    def __init__(self, *responses: requests.Response) -> None:
        self.responses = list(responses)
        self.calls = 0

    def __call__(self) -> requests.Response:
        self.calls += 1
        return self.responses.pop(0)


def run(script: Script, **kw: Any) -> tuple[Any, list[float]]:
    waits: list[float] = []
    out = call_with_backoff(script, sleep=waits.append, now=lambda: NOW, **kw)
    return out, waits


def told(wait: float, expected: float) -> bool:
    return expected <= wait <= expected + JITTER_S


def test_success_passes_through_without_waiting():
    ok = response(200, {"ratelimit-remaining": "0", "ratelimit-reset": "30"}, {"ok": True})
    script = Script(ok)
    out, waits = run(script)
    assert out is ok and waits == [] and script.calls == 1
    for status in (404, 500, 503):  # not refusals: returned as they are, for the caller
        bad = response(status)
        assert run(Script(bad))[0] is bad


def test_epoch_in_ratelimit_reset_is_honoured_as_a_delta():
    limited = response(
        429,
        {"ratelimit-limit": "100", "ratelimit-remaining": "0", "ratelimit-reset": "1712048400"},
        {"error": "rate_limit_exceeded", "message": "Upstream API rate limit exceeded"},
    )
    ok = response(200)
    out, waits = run(Script(limited, ok))
    assert out is ok and len(waits) == 1 and told(waits[0], 45.0)  # not 1712048400 s


def test_retry_after_wins_and_comes_in_every_form():
    cases = [
        ({"Retry-After": "45", "ratelimit-reset": "1712048400"}, 45.0),
        ({"Retry-After": "Tue, 02 Apr 2024 09:00:00 GMT"}, 45.0),  # HTTP-date, NOW + 45 s
        ({"Retry-After": "2.0"}, 2.0),  # Shopify's fractional form
        ({"Retry-After": "0.25"}, 0.25),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1712048375"}, 20.0),  # GitHub
    ]
    for headers, expected in cases:
        out, waits = run(Script(response(429, headers), response(200)))
        assert out.status_code == 200 and len(waits) == 1 and told(waits[0], expected), headers


def test_503_with_retry_after_is_waited_out():
    out, waits = run(Script(response(503, {"Retry-After": "10"}), response(200)))
    assert out.status_code == 200 and told(waits[0], 10.0)


def test_exhausted_after_max_attempts_with_the_last_response():
    refusals = [response(429, {"Retry-After": "3", "X-Req": str(i)}) for i in range(3)]
    script = Script(*refusals, response(200))
    with pytest.raises(RateLimitExhausted) as exc:
        run(script, max_attempts=3)
    err = exc.value
    assert isinstance(err, ClientError) and script.calls == 3
    assert err.status == 429 and err.code == "rate_limit_exhausted" and err.attempts == 3
    assert err.headers["X-Req"] == "2" and err.response is refusals[-1]
    assert "after 3 attempts" in str(err)
    waits: list[float] = []
    with pytest.raises(RateLimitExhausted):
        call_with_backoff(Script(*refusals), max_attempts=3, sleep=waits.append, now=lambda: NOW)
    assert len(waits) == 2 and all(told(w, 3.0) for w in waits)  # no sleep after the last try


def test_a_wait_beyond_max_wait_s_raises_at_once():
    day = response(429, {"Retry-After": "86400"}, {"error": "daily"})
    script = Script(day, response(200))
    with pytest.raises(RateLimitExhausted) as exc:
        run(script, max_wait_s=300.0)
    assert script.calls == 1 and exc.value.next_wait == 86400.0 and exc.value.attempts == 1
    assert exc.value.body == {"error": "daily"} and "max_wait_s=300" in str(exc.value)
    epoch = response(429, {"ratelimit-reset": "1712052000"})  # an hour away, as an epoch
    with pytest.raises(RateLimitExhausted) as exc:
        run(Script(epoch), max_wait_s=300.0)
    assert exc.value.next_wait == pytest.approx(3645.0)


def test_no_timing_means_full_jitter_exponential_backoff(monkeypatch):
    highs: list[float] = []
    monkeypatch.setattr("app.client.random.uniform", lambda lo, hi: highs.append(hi) or hi)
    script = Script(*[response(429) for _ in range(4)], response(200))
    out, waits = run(script)
    assert out.status_code == 200 and waits == [1.0, 2.0, 4.0, 8.0] == highs
    capped = Script(*[response(429) for _ in range(4)], response(200))
    assert run(capped, max_wait_s=3.0)[1] == [1.0, 2.0, 3.0, 3.0]


def test_body_timing_counts_as_timing():
    hubspot = response(429, {}, {"errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"})
    out, waits = run(Script(hubspot, response(200)))
    assert told(waits[0], 10.0)


def test_max_attempts_must_be_positive():
    with pytest.raises(ValueError):
        call_with_backoff(Script(), max_attempts=0)
