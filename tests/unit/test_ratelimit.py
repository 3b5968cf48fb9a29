"""`connectors.ratelimit.parse` over every vendor dialect, on literal headers and bodies."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.ratelimit import RateLimit, parse

NOW = 1795802655.0  # 2026-11-27T18:04:15Z
IN_20_MIN = "1795803855"  # GitHub's epoch reset, NOW + 1200 s
N = None

HUBSPOT = {
    "X-HubSpot-RateLimit-Max": "190",
    "X-HubSpot-RateLimit-Remaining": "189",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Daily": "250000",
    "X-HubSpot-RateLimit-Daily-Remaining": "249000",
}
GITHUB = {
    "x-ratelimit-limit": "5000",
    "x-ratelimit-remaining": "4999",
    "x-ratelimit-used": "1",
    "x-ratelimit-reset": IN_20_MIN,
    "x-ratelimit-resource": "core",
}
GITHUB_SPENT = {**GITHUB, "x-ratelimit-remaining": "0", "x-ratelimit-used": "5000"}
SHOPIFY_THROTTLED = (
    b'{"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}],'
    b'"extensions":{"cost":{"requestedQueryCost":102,"actualQueryCost":null,'
    b'"throttleStatus":{"maximumAvailable":1000.0,"currentlyAvailable":2,"restoreRate":50.0}}}}'
)
SHOPIFY_OK = (
    b'{"data":{},"extensions":{"cost":{"requestedQueryCost":10,"actualQueryCost":10,'
    b'"throttleStatus":{"maximumAvailable":1000.0,"currentlyAvailable":990,"restoreRate":50.0}}}}'
)
JIRA_429 = {
    "Retry-After": "45",
    "X-RateLimit-Reset": "2026-11-27T18:05Z",  # ISO minute: NOW + 45 s
    "X-RateLimit-Limit": "100",
    "X-RateLimit-Remaining": "0",
    "X-RateLimit-NearLimit": "true",
    "RateLimit-Reason": "jira-burst-based",
}
ZENDESK = {
    "x-rate-limit": "700",
    "x-rate-limit-remaining": "699",
    "ratelimit-limit": "700",
    "ratelimit-remaining": "699",
    "ratelimit-reset": "41",
    "zendesk-ratelimit-tickets-index": "total=100; remaining=99; resets=41",
}
POLICY_08 = '"burst";q=100;w=60,"daily";q=1000;w=86400'

# fmt: off
# name, headers, status, body, (limit, remaining, reset_after, retry_after, limited), to_headers
CASES = [
    # HubSpot: interval in ms; the burst window binds while the daily one has plenty left.
    ("hubspot-200", HUBSPOT, 200, N, (190, 189, 10.0, N, False),
     {"ratelimit-limit": "190", "ratelimit-remaining": "189", "ratelimit-reset": "10"}),
    ("hubspot-429-ten-secondly",
     {**HUBSPOT, "X-HubSpot-RateLimit-Remaining": "0"}, 429,
     b'{"status":"error","message":"You have reached your secondly limit.",'
     b'"errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING","correlationId":"c"}',
     (190, 0, 10.0, N, True),
     {"ratelimit-limit": "190", "ratelimit-remaining": "0", "ratelimit-reset": "10"}),
    ("hubspot-429-ten-secondly-no-headers", {}, 429,
     b'{"status":"error","errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING"}',
     (N, N, 10.0, N, True), {"ratelimit-reset": "10"}),
    ("hubspot-429-daily",  # the spent daily window binds; it resets at (UTC) midnight
     {**HUBSPOT, "X-HubSpot-RateLimit-Daily-Remaining": "0"}, 429,
     b'{"status":"error","errorType":"RATE_LIMIT","policyName":"DAILY"}',
     (250000, 0, 21345.0, N, True),
     {"ratelimit-limit": "250000", "ratelimit-remaining": "0", "ratelimit-reset": "21345"}),
    ("hubspot-429-search-secondly", {}, 429,
     b'{"status":"error","errorType":"RATE_LIMIT","policyName":"SECONDLY"}',
     (N, N, 1.0, N, True), {"ratelimit-reset": "1"}),
    ("hubspot-older-secondly",
     {"X-HubSpot-RateLimit-Secondly": "10", "X-HubSpot-RateLimit-Secondly-Remaining": "9"},
     200, N, (10, 9, 1.0, N, False),
     {"ratelimit-limit": "10", "ratelimit-remaining": "9", "ratelimit-reset": "1"}),
    # Salesforce: daily usage, no reset, no 429; 403 REQUEST_LIMIT_EXCEEDED is the refusal.
    ("salesforce-usage", {"Sforce-Limit-Info": "api-usage=18/5000"}, 200, N,
     (5000, 4982, N, N, False), {"ratelimit-limit": "5000", "ratelimit-remaining": "4982"}),
    ("salesforce-usage-and-bursts",
     {"Sforce-Limit-Info": "api-usage=10018/100000; api-bursts=1/750"},
     200, N, (100000, 89982, N, N, False),
     {"ratelimit-limit": "100000", "ratelimit-remaining": "89982"}),
    ("salesforce-per-app-binds",
     {"sforce-limit-info": "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-app)"},
     200, N, (250, 233, N, N, False), {"ratelimit-limit": "250", "ratelimit-remaining": "233"}),
    ("salesforce-per-app-only", {"Sforce-Limit-Info": "per-app-api-usage=17/250(appName=x)"},
     200, N, (250, 233, N, N, False), {"ratelimit-limit": "250", "ratelimit-remaining": "233"}),
    ("salesforce-403-limit", {"Sforce-Limit-Info": "api-usage=100001/100000"}, 403,
     b'[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]',
     (100000, 0, N, N, True), {"ratelimit-limit": "100000", "ratelimit-remaining": "0"}),
    ("salesforce-403-other", {"Sforce-Limit-Info": "api-usage=18/5000"}, 403,
     b'[{"message":"no access","errorCode":"INSUFFICIENT_ACCESS"}]',
     (5000, 4982, N, N, False), {"ratelimit-limit": "5000", "ratelimit-remaining": "4982"}),
    # GitHub: epoch reset becomes a delta; 403/429 with remaining 0 is the primary limit.
    ("github-200", GITHUB, 200, b"[]", (5000, 4999, 1200.0, N, False),
     {"ratelimit-limit": "5000", "ratelimit-remaining": "4999", "ratelimit-reset": "1200"}),
    ("github-200-remaining-0-not-limited", GITHUB_SPENT, 200, b"[]", (5000, 0, 1200.0, N, False),
     {"ratelimit-limit": "5000", "ratelimit-remaining": "0", "ratelimit-reset": "1200"}),
    ("github-403-primary", GITHUB_SPENT, 403,
     b'{"message":"API rate limit exceeded for user ID 1."}', (5000, 0, 1200.0, N, True),
     {"ratelimit-limit": "5000", "ratelimit-remaining": "0", "ratelimit-reset": "1200"}),
    ("github-429-primary", GITHUB_SPENT, 429,
     b'{"message":"API rate limit exceeded for user ID 1."}', (5000, 0, 1200.0, N, True),
     {"ratelimit-limit": "5000", "ratelimit-remaining": "0", "ratelimit-reset": "1200"}),
    ("github-ms-epoch-reset", {**GITHUB, "x-ratelimit-reset": IN_20_MIN + "000"}, 200, N,
     (5000, 4999, 1200.0, N, False),
     {"ratelimit-limit": "5000", "ratelimit-remaining": "4999", "ratelimit-reset": "1200"}),
    ("github-past-epoch-reset", {**GITHUB, "x-ratelimit-reset": "1795802000"}, 200, N,
     (5000, 4999, 0.0, N, False),
     {"ratelimit-limit": "5000", "ratelimit-remaining": "4999", "ratelimit-reset": "0"}),
    ("github-secondary-retry-after", {**GITHUB, "retry-after": "30"}, 403,
     b'{"message":"You have exceeded a secondary rate limit. Please wait a few minutes."}',
     (5000, 4999, 1200.0, 30.0, True),
     {"ratelimit-limit": "5000", "ratelimit-remaining": "4999", "ratelimit-reset": "1200",
      "retry-after": "30"}),
    ("github-secondary-no-timing", {**GITHUB, "x-ratelimit-reset": "1"}, 429,
     b'{"message":"You have exceeded a secondary rate limit."}', (5000, 4999, 1.0, 60.0, True),
     {"ratelimit-limit": "5000", "ratelimit-remaining": "4999", "ratelimit-reset": "1",
      "retry-after": "60"}),
    ("github-secondary-no-headers", {}, 403,
     b'{"message":"You have triggered an abuse detection mechanism."}', (N, N, N, 60.0, True),
     {"retry-after": "60"}),
    ("github-403-permission", GITHUB, 403,
     b'{"message":"Resource not accessible by integration"}', (5000, 4999, 1200.0, N, False),
     {"ratelimit-limit": "5000", "ratelimit-remaining": "4999", "ratelimit-reset": "1200"}),
    # Shopify REST leaky bucket (used/size) and GraphQL cost (THROTTLED in a 200 or a 429).
    ("shopify-rest-200", {"X-Shopify-Shop-Api-Call-Limit": "32/40"}, 200, N,
     (40, 8, N, N, False), {"ratelimit-limit": "40", "ratelimit-remaining": "8"}),
    ("shopify-rest-429", {"X-Shopify-Shop-Api-Call-Limit": "40/40", "Retry-After": "2.0"}, 429,
     b'{"errors":"Exceeded 2 calls per second for api client."}', (40, 0, N, 2.0, True),
     {"ratelimit-limit": "40", "ratelimit-remaining": "0", "retry-after": "2"}),
    ("shopify-graphql-throttled-200", {}, 200, SHOPIFY_THROTTLED, (1000, 2, N, 2.0, True),
     {"ratelimit-limit": "1000", "ratelimit-remaining": "2", "retry-after": "2"}),
    ("shopify-graphql-throttled-429", {}, 429, SHOPIFY_THROTTLED, (1000, 2, N, 2.0, True),
     {"ratelimit-limit": "1000", "ratelimit-remaining": "2", "retry-after": "2"}),
    ("shopify-graphql-ok", {}, 200, SHOPIFY_OK, (1000, 990, N, N, False),
     {"ratelimit-limit": "1000", "ratelimit-remaining": "990"}),
    # Jira: Retry-After seconds plus an ISO-8601 reset; sometimes 503 instead of 429.
    ("jira-429", JIRA_429, 429, b"", (100, 0, 45.0, 45.0, True),
     {"ratelimit-limit": "100", "ratelimit-remaining": "0", "ratelimit-reset": "45",
      "retry-after": "45"}),
    ("jira-503-retry-after", {"Retry-After": "10"}, 503, N, (N, N, N, 10.0, True),
     {"retry-after": "10"}),
    ("plain-503-no-retry-after", {}, 503, N, (N, N, N, N, False), {}),
    ("jira-200-near-limit",
     {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "15", "X-RateLimit-NearLimit": "true"},
     200, N, (100, 15, N, N, False), {"ratelimit-limit": "100", "ratelimit-remaining": "15"}),
    # Zendesk: account-wide pair, IETF trio, per-endpoint field; the endpoint's window binds.
    ("zendesk-all", ZENDESK, 200, N, (100, 99, 41.0, N, False),
     {"ratelimit-limit": "100", "ratelimit-remaining": "99", "ratelimit-reset": "41"}),
    ("zendesk-x-rate-limit-only", {"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "699"},
     200, N, (700, 699, N, N, False), {"ratelimit-limit": "700", "ratelimit-remaining": "699"}),
    ("zendesk-429",
     {"ratelimit-limit": "700", "ratelimit-remaining": "0", "ratelimit-reset": "41",
      "Retry-After": "41"}, 429, b'{"error":"APIRateLimitExceeded"}', (700, 0, 41.0, 41.0, True),
     {"ratelimit-limit": "700", "ratelimit-remaining": "0", "ratelimit-reset": "41",
      "retry-after": "41"}),
    # Slack and Stripe: refusals named in the body.
    ("slack-429", {"Retry-After": "30"}, 429, b'{"ok":false,"error":"ratelimited"}',
     (N, N, N, 30.0, True), {"retry-after": "30"}),
    ("slack-200-ratelimited", {}, 200, b'{"ok":false,"error":"ratelimited"}',
     (N, N, N, N, True), {}),
    ("slack-200-other-error", {}, 200, b'{"ok":false,"error":"channel_not_found"}',
     (N, N, N, N, False), {}),
    ("stripe-429", {"Stripe-Should-Retry": "true"}, 429,
     b'{"error":{"code":"rate_limit","message":"Too many requests",'
     b'"type":"invalid_request_error"}}',
     (N, N, N, N, True), {}),
    # IETF drafts: early trio (+ policy), draft-07 dictionary, -08..-10 named lists.
    ("ietf-early", {"RateLimit-Limit": "10, 10;w=1, 50;w=60", "RateLimit-Remaining": "1",
                    "RateLimit-Reset": "7"}, 200, N, (10, 1, 7.0, N, False),
     {"ratelimit-limit": "10", "ratelimit-remaining": "1", "ratelimit-reset": "7"}),
    ("ietf-05-policy", {"RateLimit-Limit": "10", "RateLimit-Remaining": "1",
                        "RateLimit-Reset": "7", "RateLimit-Policy": "10;w=1, 50;w=60"},
     200, N, (10, 1, 7.0, N, False),
     {"ratelimit-limit": "10", "ratelimit-remaining": "1", "ratelimit-reset": "7"}),
    ("ietf-early-limit-from-policy", {"RateLimit-Remaining": "1", "RateLimit-Reset": "7",
                                      "RateLimit-Policy": "10;w=1, 50;w=60"},
     200, N, (10, 1, 7.0, N, False),
     {"ratelimit-limit": "10", "ratelimit-remaining": "1", "ratelimit-reset": "7"}),
    ("ietf-07", {"RateLimit": "limit=100, remaining=50, reset=5", "RateLimit-Policy": "100;w=10"},
     200, N, (100, 50, 5.0, N, False),
     {"ratelimit-limit": "100", "ratelimit-remaining": "50", "ratelimit-reset": "5"}),
    ("ietf-07-limit-from-policy", {"RateLimit": "remaining=0, reset=5",
                                   "RateLimit-Policy": "100;w=10"}, 429, N,
     (100, 0, 5.0, N, True),
     {"ratelimit-limit": "100", "ratelimit-remaining": "0", "ratelimit-reset": "5"}),
    ("ietf-08-unnamed-policy-unknown", {"RateLimit": '"default";r=50;t=30',
                                        "RateLimit-Policy": POLICY_08}, 200, N,
     (N, 50, 30.0, N, False), {"ratelimit-remaining": "50", "ratelimit-reset": "30"}),
    ("ietf-08-no-policy", {"RateLimit": '"default";r=50;t=30'}, 200, N, (N, 50, 30.0, N, False),
     {"ratelimit-remaining": "50", "ratelimit-reset": "30"}),
    ("ietf-08-single-policy", {"RateLimit": '"default";r=50;t=30',
                               "RateLimit-Policy": '"default";q=100;w=60'}, 200, N,
     (100, 50, 30.0, N, False),
     {"ratelimit-limit": "100", "ratelimit-remaining": "50", "ratelimit-reset": "30"}),
    ("ietf-08-named-binding", {"RateLimit": '"burst";r=0;t=30, "daily";r=600;t=80000',
                               "RateLimit-Policy": POLICY_08}, 200, N,
     (100, 0, 30.0, N, False),
     {"ratelimit-limit": "100", "ratelimit-remaining": "0", "ratelimit-reset": "30"}),
    ("ietf-08-daily-binds", {"RateLimit": '"burst";r=90;t=30, "daily";r=0;t=80000',
                             "RateLimit-Policy": POLICY_08}, 429, N,
     (1000, 0, 80000.0, N, True),
     {"ratelimit-limit": "1000", "ratelimit-remaining": "0", "ratelimit-reset": "80000"}),
    # The article's own 429: an epoch in `ratelimit-reset` is a delta of 45 s, never 56 years.
    ("article-epoch-in-ratelimit-reset",
     {"ratelimit-limit": "100", "ratelimit-remaining": "0", "ratelimit-reset": "1795802700",
      "Retry-After": "45", "Content-Type": "application/json"}, 429,
     b'{"error":"rate_limit_exceeded","message":"Upstream API rate limit exceeded"}',
     (100, 0, 45.0, 45.0, True),
     {"ratelimit-limit": "100", "ratelimit-remaining": "0", "ratelimit-reset": "45",
      "retry-after": "45"}),
    # Retry-After: HTTP-date, fractional, past date, case variations.
    ("retry-after-http-date", {"Retry-After": "Fri, 27 Nov 2026 18:04:45 GMT"}, 429, N,
     (N, N, N, 30.0, True), {"retry-after": "30"}),
    ("retry-after-http-date-past", {"Retry-After": "Fri, 27 Nov 2026 18:00:00 GMT"}, 429, N,
     (N, N, N, 0.0, True), {"retry-after": "0"}),
    ("retry-after-fractional", {"Retry-After": "2.5"}, 429, N, (N, N, N, 2.5, True),
     {"retry-after": "3"}),
    ("case-variations", {"X-RATELIMIT-LIMIT": "60", "x-RateLimit-Remaining": "0",
                         "X-RateLimit-Reset": IN_20_MIN, "rEtRy-AfTeR": " 7 "}, 429, N,
     (60, 0, 1200.0, 7.0, True),
     {"ratelimit-limit": "60", "ratelimit-remaining": "0", "ratelimit-reset": "1200",
      "retry-after": "7"}),
    # Missing fields are None; garbage is ignored, never a crash.
    ("nothing", {}, 200, N, (N, N, N, N, False), {}),
    ("bare-429", {}, 429, b"Too Many Requests", (N, N, N, N, True), {}),
    ("garbage",
     {"x-ratelimit-limit": "lots", "x-ratelimit-remaining": "-3", "x-ratelimit-reset": "soon",
      "Retry-After": "nan", "RateLimit-Limit": "inf", "RateLimit-Reset": "1e999",
      "RateLimit": "limit=abc, remaining=, reset=later", "RateLimit-Policy": ';q=;"x"',
      "Sforce-Limit-Info": "api-usage=x/y", "X-Shopify-Shop-Api-Call-Limit": "40",
      "zendesk-ratelimit-x": "total=; remaining=?; resets=never",
      "X-HubSpot-RateLimit-Max": "", "X-HubSpot-RateLimit-Interval-Milliseconds": "NaN"},
     429, b'{"extensions":{"cost":{"throttleStatus":{"maximumAvailable":"x"}}}',
     (N, N, N, N, True), {}),
    ("garbage-json-bodies", {}, 403, b'[{"errorCode": 1}, "x", null]', (N, N, N, N, False), {}),
    ("garbage-non-utf8-body", {"Retry-After": ""}, 429, b"{\xff\xfe", (N, N, N, N, True), {}),
    ("garbage-graphql-shapes", {}, 200,
     b'{"errors":"THROTTLED","extensions":{"cost":{"throttleStatus":[1]}}}',
     (N, N, N, N, False), {}),
]
# fmt: on


@pytest.mark.parametrize(("headers", "status", "body", "want", "want_headers"),
                         [pytest.param(*c[1:], id=c[0]) for c in CASES])  # fmt: skip
def test_dialect_table(headers, status, body, want, want_headers):
    rl = parse(headers, status, body, now=NOW)
    assert (rl.limit, rl.remaining, rl.reset_after, rl.retry_after, rl.limited) == want
    assert rl.to_headers() == want_headers
    for key in ("ratelimit-reset", "retry-after"):  # integer delta seconds, never an epoch
        assert int(rl.to_headers().get(key, "0")) < 1e9


def test_policy_and_wait():
    spent = {**HUBSPOT, "X-HubSpot-RateLimit-Remaining": "0"}
    rl = parse(spent, 429, b'{"policyName":"TEN_SECONDLY_ROLLING"}', now=NOW)
    assert (rl.policy, rl.wait) == ("TEN_SECONDLY_ROLLING", 10.0)
    sf = b'[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]'
    assert parse({}, 403, sf, now=NOW).policy == "REQUEST_LIMIT_EXCEEDED"
    assert parse(JIRA_429, 429, now=NOW).wait == 45.0  # Retry-After first
    assert parse(GITHUB_SPENT, 403, b"{}", now=NOW).wait == 1200.0  # else the reset
    assert parse({}, 429, now=NOW).wait is None  # no timing: the caller backs off
    assert parse({"x-ratelimit-remaining": "0"}, 200, now=NOW) == RateLimit(remaining=0)


def test_stated_rolling_window_is_reported_whichever_window_binds():
    """A shared budget paces by HubSpot's burst window even while the daily one binds."""
    assert (parse(HUBSPOT, now=NOW).window, parse(HUBSPOT, now=NOW).window_limit) == (10.0, 190)
    daily = parse({**HUBSPOT, "X-HubSpot-RateLimit-Daily-Remaining": "3"}, now=NOW)
    assert (daily.limit, daily.remaining) == (250000, 3)
    assert (daily.window, daily.window_limit) == (10.0, 190)
    for other in (GITHUB_SPENT, ZENDESK, JIRA_429, {}):
        assert parse(other, now=NOW).window is None


def test_secondary_limit_with_spent_primary_waits_for_the_later():
    rl = parse(
        GITHUB_SPENT, 403, b'{"message":"You have exceeded a secondary rate limit."}', now=NOW
    )
    assert rl.limited and rl.retry_after == 1200.0
    soon = {**GITHUB_SPENT, "x-ratelimit-reset": str(int(NOW) + 5)}
    assert parse(soon, 403, b'{"message":"secondary rate limit"}', now=NOW).retry_after == 60.0


def test_default_now_is_the_clock():
    rl = parse({"x-ratelimit-reset": str(int(time.time()) + 100)})
    assert rl.reset_after is not None and 95 < rl.reset_after <= 100


def test_dates_without_a_zone_are_utc_whatever_the_local_zone(monkeypatch):
    if not hasattr(time, "tzset"):
        pytest.skip("no tzset")
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert datetime.fromtimestamp(NOW).hour != datetime.fromtimestamp(NOW, UTC).hour
        rl = parse({"Retry-After": "Fri, 27 Nov 2026 18:04:45 -0000",
                    "X-RateLimit-Reset": "2026-11-27T18:05"}, 429, now=NOW)  # fmt: skip
        assert (rl.retry_after, rl.reset_after) == (30.0, 45.0)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


DAILY = (
    b'{"status":"error","message":"You have reached your daily limit.",'
    b'"errorType":"RATE_LIMIT","policyName":"DAILY","correlationId":"c"}'
)


def at(local: str, zone: str) -> float:
    """Epoch seconds of a wall-clock time in `zone` (`fold` 0 where it is ambiguous)."""
    return datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone)).timestamp()


def daily(now: float, time_zone: str | None, headers: dict[str, str] | None = None):
    return parse(headers if headers is not None else HUBSPOT, 429, DAILY, now=now,
                 time_zone=time_zone)  # fmt: skip


@pytest.mark.parametrize(("now", "zone", "wait"), [
    # 18:04:15Z: 5 h 55 min 45 s to the UTC midnight, 5 h more to New York's, Tokyo's is
    # already the 28th (03:04 there), so its next midnight is 20 h 55 min 45 s away
    pytest.param(NOW, "UTC", 21345.0, id="utc"),
    pytest.param(NOW, "America/New_York", 21345.0 + 5 * 3600, id="new-york"),
    pytest.param(NOW, "Asia/Tokyo", 21345.0 + 15 * 3600, id="tokyo-ahead-of-utc"),
    pytest.param(NOW, "Asia/Kolkata", 1545.0, id="half-hour-offset"),  # 23:34:15 there
    # DST days: 23 and 25 hours long, between the same two wall-clock midnights
    pytest.param(at("2026-03-08T00:30", "America/New_York"), "America/New_York", 22.5 * 3600,
                 id="spring-forward-day-is-23h"),
    pytest.param(at("2026-11-01T00:30", "America/New_York"), "America/New_York", 24.5 * 3600,
                 id="fall-back-day-is-25h"),
    pytest.param(at("2026-03-07T23:59", "America/New_York"), "America/New_York", 60.0,
                 id="a-minute-before-a-dst-day"),
    # Santiago skips 00:00 on 2026-09-06 (00:00 -04 is 01:00 -03): the day starts at 04:00Z
    pytest.param(at("2026-09-05T23:30", "America/Santiago"), "America/Santiago", 1800.0,
                 id="skipped-midnight-is-when-the-day-starts"),
    # Santiago repeats 23:00-24:00 on 2026-04-04: from the first 23:30, midnight is 1.5 h away
    pytest.param(at("2026-04-04T23:30", "America/Santiago"), "America/Santiago", 5400.0,
                 id="repeated-hour-before-midnight"),
])  # fmt: skip
def test_a_daily_refusal_waits_until_the_next_midnight_of_the_accounts_zone(now, zone, wait):
    rl = daily(now, zone)
    assert rl.limited and rl.policy == "DAILY"
    assert rl.wait == pytest.approx(wait)
    assert rl.label == f"DAILY, resets 00:00 {zone}"
    reset = datetime.fromtimestamp(now + rl.wait, ZoneInfo(zone))
    assert (reset.hour, reset.minute, reset.second) == (0, 0, 0) or zone == "America/Santiago"


def test_a_daily_refusal_without_a_zone_assumes_utc_and_says_so():
    for zone in (None, ""):
        rl = daily(NOW, zone)
        assert rl.wait == 21345.0
        assert rl.label == "DAILY, resets 00:00 UTC — assumed, the account states no time_zone"


def test_a_daily_refusal_with_a_zone_unknown_here_assumes_utc_and_names_it():
    for zone in ("Mars/Olympus_Mons", "America", "../../etc/passwd", "\udfff"):
        rl = daily(NOW, zone)
        assert rl.wait == 21345.0
        assert "UTC — assumed" in rl.label and "is unknown here" in rl.label


def test_a_daily_refusal_waits_past_midnight_even_when_a_burst_window_has_room():
    """Without the daily headers the burst window binds (10 s): the body's policy decides."""
    rl = daily(NOW, "UTC", {**HUBSPOT, "X-HubSpot-RateLimit-Remaining": "150"} | {
        "X-HubSpot-RateLimit-Daily-Remaining": "7"})  # fmt: skip
    assert rl.wait == 21345.0
    bare = daily(NOW, None, {})  # no headers at all
    assert (bare.limited, bare.wait) == (True, 21345.0)
    assert bare.to_headers() == {"ratelimit-reset": "21345"}


def test_a_daily_refusal_just_after_our_midnight_retries_in_a_minute_not_a_day():
    """Our clock a few seconds ahead of the vendor's: its day turns over any moment now."""
    midnight = at("2026-11-28T00:00", "America/New_York")
    rl = daily(midnight + 10, "America/New_York")
    assert rl.wait == pytest.approx(50.0)
    assert "moments ago" in rl.label
    assert daily(midnight + 61, "America/New_York").wait == pytest.approx(86400 - 61)


def test_a_daily_refusal_honours_a_stated_retry_after():
    rl = daily(NOW, "UTC", {**HUBSPOT, "Retry-After": "120"})
    assert (rl.wait, rl.label) == (120.0, "DAILY")


def test_only_a_daily_refusal_waits_for_midnight():
    ok = parse({**HUBSPOT, "X-HubSpot-RateLimit-Daily-Remaining": "0"}, 200, DAILY, now=NOW,
               time_zone="UTC")  # fmt: skip
    assert not ok.limited and ok.reset_after is None and ok.label == "DAILY"
    burst = parse({}, 429, b'{"policyName":"TEN_SECONDLY_ROLLING"}', now=NOW, time_zone="UTC")
    assert (burst.wait, burst.label) == (10.0, "TEN_SECONDLY_ROLLING")


def test_the_default_now_is_the_clock_for_a_daily_refusal_too():
    wait = parse(HUBSPOT, 429, DAILY, time_zone="UTC").wait
    reset = datetime.now(UTC) + timedelta(seconds=wait or 0)
    assert 0 < (wait or 0) <= 86400 and (reset.hour, reset.minute) in ((0, 0), (0, 1))
