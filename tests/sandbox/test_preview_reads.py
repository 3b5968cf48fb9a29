"""The reads previews make, as the sandbox serves them: seeded and written objects alike,
Jira's GET issue of a seeded issue, GitHub's repository, Slack's conversations.info, Stripe's
retrieve; none counts as an effect."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

STRIPE_KEY = "sk_test_51Hsandbox0000000000001234"


@pytest.fixture
def client(make_client: Any) -> TestClient:
    c: TestClient = make_client()
    volumes = {"jira.issues": 40, "github.issues": 30, "github.pulls": 0, "stripe.customers": 5}
    assert c.post("/_sandbox/config", json={"volumes": volumes}).status_code == 200
    static = {"vendor": "stripe", "token": STRIPE_KEY}
    assert c.post("/_sandbox/static-token", json=static).status_code == 200
    return c


def auth(c: TestClient, mint: Any, vendor: str) -> dict[str, str]:
    if vendor == "stripe":
        return {"Authorization": f"Bearer {STRIPE_KEY}"}
    return {"Authorization": f"Bearer {mint(c, vendor)['access_token']}"}


def no_effects(c: TestClient, *vendors: str) -> None:
    for vendor in vendors:
        assert c.get(f"/{vendor}/_sandbox/effects").json()["count"] == 0, vendor


def test_jira_get_issue_serves_seeded_issues_and_picks_fields(client: TestClient, mint) -> None:
    h = auth(client, mint, "jira")
    resp = client.get("/jira/rest/api/3/issue/ENG-3", params={"fields": "status"}, headers=h)
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["key"] == "ENG-3" and set(doc["fields"]) == {"status"}
    by_id = client.get(f"/jira/rest/api/3/issue/{doc['id']}", headers=h).json()
    assert by_id["key"] == "ENG-3" and {"summary", "status"} <= set(by_id["fields"])
    missing = client.get("/jira/rest/api/3/issue/ENG-999", headers=h)
    assert missing.status_code == 404
    # a seeded issue still takes no transition (the sandbox keeps them read-only)
    assert client.get("/jira/rest/api/3/issue/ENG-3/transitions", headers=h).status_code == 404
    no_effects(client, "jira")


def test_github_repository_and_slack_channel_reads(client: TestClient, mint) -> None:
    h = auth(client, mint, "github")
    repo = client.get("/github/repos/acme/widgets", headers=h)
    assert repo.status_code == 200 and repo.json()["full_name"] == "acme/widgets"
    assert repo.json()["has_issues"] is True
    assert client.get("/github/repos/missing/widgets", headers=h).status_code == 404
    h = auth(client, mint, "slack")
    info = client.get("/slack/api/conversations.info", params={"channel": "C01GENERAL"}, headers=h)
    assert info.json()["ok"] is True and info.json()["channel"]["name"] == "general"
    gone = client.get("/slack/api/conversations.info", params={"channel": "C99NOPE00"}, headers=h)
    assert gone.status_code == 200 and gone.json() == {"ok": False, "error": "channel_not_found"}
    no_effects(client, "github", "slack")


def test_stripe_retrieve_shows_seeded_and_written_customers(client: TestClient, mint) -> None:
    h = auth(client, mint, "stripe")
    seeded = client.get("/stripe/v1/customers", params={"limit": 1}, headers=h).json()["data"][0]
    assert client.get(f"/stripe/v1/customers/{seeded['id']}", headers=h).json() == seeded
    made = client.post("/stripe/v1/customers", data={"email": "a@x.io"}, headers=h).json()
    client.post(f"/stripe/v1/customers/{made['id']}", data={"name": "Ann"}, headers=h)
    shown = client.get(f"/stripe/v1/customers/{made['id']}", headers=h).json()
    assert shown["email"] == "a@x.io" and shown["name"] == "Ann"
    missing = client.get("/stripe/v1/customers/cus_nope", headers=h)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"
    kinds = [e["kind"] for e in client.get("/stripe/_sandbox/effects").json()["effects"]]
    assert kinds == ["create", "update"]  # the reads added none
