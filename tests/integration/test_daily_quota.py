"""HubSpot's DAILY quota on the real stack: a refusal closes the account's budget until the
portal's midnight (in the account's `time_zone`, else UTC), for its jobs and its proxy calls.

The sandbox answers every HubSpot list call with the documented `policyName: DAILY` 429 once
its `daily_budget` is spent; `daily_budget=0` spends it from the first call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support import wait_until

CONTACTS = "crm/v3/objects/contacts"
DEFAULT_DAILY_BUDGET = 500_000  # sandbox/state.py LiveConfig's


@pytest.fixture
def daily_spent(fresh_sandbox: Any) -> Iterator[Any]:
    fresh_sandbox.config(daily_budget=0)
    try:
        yield fresh_sandbox
    finally:  # Sandbox.reset does not restore this knob
        fresh_sandbox.config(daily_budget=DEFAULT_DAILY_BUDGET)


def account(api: Any, sandbox: Any, time_zone: str | None) -> str:
    body: dict[str, Any] = {
        "vendor": "hubspot",
        "name": "daily",
        "base_url": sandbox.hubspot(),
        "credentials": {"type": "bearer", "token": sandbox.mint()["access_token"]},
    }
    if time_zone:
        body["time_zone"] = time_zone
    resp = api.post("/v1/accounts", body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["time_zone"] == time_zone
    return resp.json()["account_id"]


def page_calls(sandbox: Any) -> list[dict[str, Any]]:
    return [e for e in sandbox.requests() if e["kind"] == "api" and e["path"].endswith(CONTACTS)]


def next_midnight(t: float, zone: str) -> float:
    """The first instant of the day after `t`'s, on the wall clock of `zone`."""
    tz = ZoneInfo(zone)
    day = datetime.fromtimestamp(t, tz).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def waiting(api: Any, job_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        job = api.get(f"/v1/jobs/{job_id}").json()
        return job if job["status"] == "waiting_rate_limit" and job["retry_at"] else None

    return wait_until(check, 30, 0.05)


def skip_near_midnight(zone: str) -> None:
    """A refusal within a minute after midnight retries a minute later (a vendor clock
    lagging ours), not at the next midnight: not what these tests look at."""
    now = time.time()
    if next_midnight(now, zone) - now > 86400 - 90 or next_midnight(now, zone) - now < 30:
        pytest.skip("too close to midnight in " + zone)


@pytest.mark.parametrize(
    ("time_zone", "named"),
    [
        (None, "DAILY, resets 00:00 UTC — assumed, the account states no time_zone"),
        ("America/New_York", "DAILY, resets 00:00 America/New_York"),
    ],
)
def test_a_daily_refusal_holds_the_accounts_jobs_until_its_midnight(
    api, daily_spent, time_zone, named
):
    zone = time_zone or "UTC"
    skip_near_midnight(zone)
    acc = account(api, daily_spent, time_zone)
    first = api.call(account_id=acc, args={"limit": 10})["job_id"]
    held = waiting(api, first)
    (refused,) = page_calls(daily_spent)
    assert refused["status"] == 429

    midnight = next_midnight(refused["t"], zone)
    assert midnight <= epoch(held["retry_at"]) <= midnight + 2  # plus at most 1 s of jitter
    reason = held["history"][-1]["reason"]
    assert reason.startswith(f"vendor rate limit ({named}): retry in "), reason

    # the refusal closed the account's budget for every worker: the next job sends nothing
    second = api.call(account_id=acc, args={"limit": 10})["job_id"]
    also = waiting(api, second)
    assert midnight <= epoch(also["retry_at"]) <= midnight + 2
    assert "account budget spent" in also["history"][-1]["reason"]
    time.sleep(0.5)
    assert len(page_calls(daily_spent)) == 1
    for job_id in (first, second):
        assert api.post(f"/v1/jobs/{job_id}/cancel").status_code == 200


def test_a_daily_refusal_through_the_proxy_says_retry_after_the_accounts_midnight(api, daily_spent):
    zone = "America/New_York"
    skip_near_midnight(zone)
    acc = account(api, daily_spent, zone)
    resp = api.get(f"/v1/proxy/{acc}/{CONTACTS}", params={"limit": 1})
    assert resp.status_code == 429, resp.text
    (refused,) = page_calls(daily_spent)
    want = next_midnight(refused["t"], zone) - refused["t"]
    assert abs(int(resp.headers["retry-after"]) - want) <= 2

    again = api.get(f"/v1/proxy/{acc}/{CONTACTS}", params={"limit": 1})
    assert again.status_code == 429  # the budget is closed: refused before sending
    assert abs(int(again.headers["retry-after"]) - want) <= 3
    assert len(page_calls(daily_spent)) == 1


def test_an_unknown_time_zone_is_refused_with_what_to_give(api, fresh_sandbox):
    for bad in ("Mars/Olympus_Mons", "America", "../../etc/passwd", "localtime", "EST5EDT "):
        resp = api.post(
            "/v1/accounts",
            {
                "vendor": "hubspot",
                "name": "tz",
                "credentials": {"type": "bearer", "token": "t"},
                "time_zone": bad,
            },
        )
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["error"] == "invalid_request" and "IANA name" in resp.json()["message"]
