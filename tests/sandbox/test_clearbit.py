"""Clearbit sandbox speaks Clearbit's Company API: one company per find, 404 for an unknown
domain, 422 for a malformed one, `{"error": {"type", "message"}}`, X-RateLimit-* and 429."""

from __future__ import annotations

import base64
import time

import pytest

from sandbox import clearbit as cb
from sandbox.hubspot.data import COMPANIES

FIND = "/clearbit/v2/companies/find"
KEY = "sk_0123456789abcdef0123456789abcdef"
H = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(make_client):
    def make(**knobs):
        c = make_client(**knobs)
        resp = c.post("/_sandbox/static-token", json={"vendor": "clearbit", "token": KEY})
        assert resp.status_code == 200, resp.text
        return c

    return make


def find(c, domain, headers=H):
    return c.get(FIND, params={"domain": domain}, headers=headers)


def test_every_hubspot_contact_domain_but_two_is_a_known_company(client):
    c = client()
    hubspot_domains = [domain for _, domain in COMPANIES]
    found = {d: find(c, d) for d in hubspot_domains}
    assert {d for d, r in found.items() if r.status_code == 404} == {
        "cyberdyne.example",
        "soylent.example",
    }
    assert all(r.status_code == 200 for d, r in found.items() if d not in cb.UNKNOWN)
    names = {domain: name for name, domain in COMPANIES}
    for domain, resp in found.items():
        if domain in cb.UNKNOWN:
            continue
        company = resp.json()
        assert company["domain"] == domain and company["name"] == names[domain]
        assert company["metrics"]["employees"] > 0
        assert company["category"]["sector"] and company["geo"]["countryCode"]


def test_a_company_has_clearbits_shape_and_the_same_record_every_time(client):
    c = client()
    first = find(c, "acme.example")
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    acme = first.json()
    assert {
        "id", "name", "legalName", "domain", "domainAliases", "category", "tags", "description",
        "foundedYear", "location", "geo", "logo", "metrics", "type", "ticker", "tech",
        "indexedAt",
    } <= set(acme)  # fmt: skip
    assert set(acme["category"]) == {"sector", "industryGroup", "industry", "subIndustry"}
    assert acme["metrics"]["employees"] == 4200 and acme["metrics"]["employeesRange"] == "1K-5K"
    assert acme["geo"]["country"] == "United States" and acme["foundedYear"] == 1920
    assert acme["domainAliases"] == ["acmecorp.example"] and acme["type"] == "public"
    again = find(c, "acme.example").json()
    assert again == acme  # deterministic
    assert find(c, "globex.example").json()["id"] != acme["id"]


def test_a_find_is_case_insensitive_and_an_alias_finds_its_company(client):
    c = client()
    acme = find(c, "acme.example").json()
    assert find(c, "  ACME.Example ").json() == acme
    assert find(c, "acmecorp.example").json() == acme  # the canonical record, not the alias


@pytest.mark.parametrize("domain", ["cyberdyne.example", "soylent.example", "nobody.example"])
def test_an_unknown_domain_is_a_404_unknown_record(client, domain):
    resp = find(client(), domain)
    assert resp.status_code == 404
    assert resp.json() == {
        "error": {"type": "unknown_record", "message": f"Unknown domain: {domain}"}
    }


@pytest.mark.parametrize(
    "domain",
    ["acme", "acme.123", "acme.x", "-acme.example", "acme..example", "acme_corp.example",
     "https://acme.example", "acme.example/about", "jane@acme.example", "a" * 64 + ".example"],
)  # fmt: skip
def test_a_malformed_domain_is_a_422_params_invalid(client, domain):
    resp = find(client(), domain)
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert err == {"type": "params_invalid", "message": f"Invalid domain: {domain}"}


def test_a_missing_domain_is_a_422(client):
    c = client()
    for params in ({}, {"domain": ""}, {"domain": "  "}):
        resp = c.get(FIND, params=params, headers=H)
        assert resp.status_code == 422
        assert resp.json()["error"]["type"] == "params_invalid"
        assert "domain" in resp.json()["error"]["message"]


def test_the_key_is_required_bearer_or_basic(client):
    c = client()
    missing = find(c, "acme.example", headers={})
    assert missing.status_code == 401
    assert missing.json() == {"error": {"type": "unauthorized", "message": "API key required."}}
    wrong = find(c, "acme.example", headers={"Authorization": "Bearer sk_wrong"})
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "Invalid API key."
    basic = base64.b64encode(f"{KEY}:".encode()).decode()
    assert find(c, "acme.example", headers={"Authorization": f"Basic {basic}"}).status_code == 200


def test_every_answer_past_the_key_carries_the_rate_limit_headers(client):
    c = client(rate_budget=5, rate_window_ms=60_000)
    answers = [find(c, d) for d in ("acme.example", "cyberdyne.example", "acme.123")]
    assert [r.status_code for r in answers] == [200, 404, 422]
    assert [r.headers["X-RateLimit-Limit"] for r in answers] == ["5", "5", "5"]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["4", "3", "2"]
    assert all(1 <= int(r.headers["X-RateLimit-Reset"]) <= 60 for r in answers)  # seconds
    assert "X-RateLimit-Limit" not in find(c, "acme.example", headers={}).headers


def test_over_the_budget_is_a_429_rate_limit_until_the_window_frees_a_slot(client):
    c = client(rate_window_ms=1000)
    c.post("/_sandbox/config", json={"rate_budgets": {"clearbit": 2}})
    assert [find(c, "acme.example").status_code for _ in range(2)] == [200, 200]
    refused = find(c, "acme.example")
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Reset"] == "1"  # seconds, never an epoch
    assert find(c, "acme.example").status_code == 429  # refusals spend nothing, and free nothing
    time.sleep(1.05)
    assert find(c, "acme.example").status_code == 200
    assert c.get("/_sandbox/stats").json()["rate_limited"] == 2


def test_every_lookup_is_in_the_request_log(client):
    c = client()
    for domain in ("acme.example", "acme.example", "cyberdyne.example", "acme.123"):
        find(c, domain)
    log = c.get("/_sandbox/requests", params={"vendor": "clearbit"}).json()
    assert [(e["path"], e["query"], e["status"]) for e in log] == [
        (FIND, "domain=acme.example", 200),
        (FIND, "domain=acme.example", 200),
        (FIND, "domain=cyberdyne.example", 404),
        (FIND, "domain=acme.123", 422),
    ]
    assert {e["vendor"] for e in log} == {"clearbit"} and {e["kind"] for e in log} == {"api"}


def test_a_seeded_fault_answers_clearbits_503(client):
    c = client(error_rate=1.0)
    faults = [find(c, "acme.example") for _ in range(20)]
    assert {r.status_code for r in faults} == {502, 503}
    unavailable = next(r for r in faults if r.status_code == 503)
    assert unavailable.json() == {"error": {"type": "api_error", "message": "Internal API error."}}
    c.post("/_sandbox/config", json={"error_rate": 0.0})
    assert find(c, "acme.example").status_code == 200
