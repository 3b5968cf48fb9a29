"""Policy decides, per tenant, account and key, whether a write runs, waits for a person or
is refused; scoped keys see and call only what they hold."""

from __future__ import annotations

from typing import Any

import pytest
from consentkit import consent_tenant, hubspot_account, key, seeded_contacts

from app.store import policies
from app.store.policies import Policy

POST = "slack.chat.post_message"  # a write that only adds
ARCHIVE = "hubspot.contacts.archive"  # a destructive one


@pytest.mark.parametrize(
    ("policy", "destructive", "records", "rule"),
    [
        ({}, False, 1, "allow"),
        ({}, True, 1, "approve"),  # the default for destructive tools
        ({"destructive": "allow"}, True, 1, "allow"),
        ({"destructive": "deny"}, True, 1, "deny"),
        ({"writes": "approve"}, False, 1, "approve"),
        ({"writes": "deny"}, False, 1, "deny"),
        ({"writes": "deny", "destructive": "allow"}, True, 1, "allow"),
        ({"approve_above": 10}, False, 10, "allow"),
        ({"approve_above": 10}, False, 11, "approve"),
        ({"approve_above": 10, "destructive": "allow"}, True, 11, "approve"),
        ({"approve_above": 10, "writes": "deny"}, False, 11, "deny"),
    ],
)
def test_the_decision_table(policy: dict[str, Any], destructive: bool, records: int,
                            rule: str) -> None:  # fmt: skip
    merged = Policy.model_validate({**policies.DEFAULT.model_dump(), **policy})
    assert policies.decide(merged, destructive=destructive, records=records).rule == rule


@pytest.mark.parametrize(
    ("level", "rule", "outcome"),
    [
        ("tenant", "allow", "succeeded"),
        ("tenant", "approve", "awaiting_approval"),
        ("tenant", "deny", 403),
        ("account", "allow", "succeeded"),
        ("account", "deny", 403),
        ("key", "approve", "awaiting_approval"),
        ("key", "deny", 403),
    ],
)
def test_each_level_decides_over_http(api: Any, sandbox: Any, level: str, rule: str,
                                      outcome: Any) -> None:  # fmt: skip
    owner = consent_tenant(api, f"matrix-{level}-{rule}")
    account = owner.account(sandbox, "slack")
    agent = key(owner, scopes=["read", "write"])
    # the tenant level says the opposite where a lower level decides: the lower one wins
    if level != "tenant":
        opposite = "deny" if rule != "deny" else "allow"
        assert owner.s.put(f"{owner.url}/v1/policy", json={"writes": opposite}).ok
    path = {"tenant": "/v1/policy", "account": f"/v1/accounts/{account}/policy",
            "key": f"/v1/keys/{agent.tenant['key_id']}/policy"}[level]  # fmt: skip
    resp = owner.s.put(owner.url + path, json={"writes": rule}, timeout=5)
    assert resp.status_code == 200, resp.text
    made = agent.post("/v1/jobs", {"tool": POST, "account_id": account,
                                   "args": {"channel": "C01GENERAL", "text": "hi"}})  # fmt: skip
    if outcome == 403:
        assert made.status_code == 403 and made.json()["error"] == "policy_denied", made.text
        return
    assert made.status_code == 202, made.text
    states = ("awaiting_approval", "succeeded", "failed", "cancelled")
    assert agent.wait(made.json()["job_id"], states=states)["status"] == outcome


def test_a_threshold_holds_big_writes_only(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "threshold")
    account = hubspot_account(owner, sandbox)
    assert owner.s.put(f"{owner.url}/v1/policy",
                       json={"destructive": "allow", "approve_above": 2}).ok  # fmt: skip
    states = ("awaiting_approval", "succeeded", "failed", "cancelled")

    def upsert(n: int) -> str:
        records = [{"id": f"t{n}-{i}@example.com", "properties": {}} for i in range(n)]
        job = owner.call("hubspot.contacts.upsert", account_id=account, args={"records": records})
        return str(owner.wait(job["job_id"], states=states)["status"])

    assert upsert(2) == "succeeded"
    assert upsert(3) == "awaiting_approval"


def test_scoped_keys_see_and_call_only_their_tools(api: Any, sandbox: Any) -> None:
    owner = consent_tenant(api, "scoped")
    account = hubspot_account(owner, sandbox)
    (cid,) = seeded_contacts(owner, account, ["scoped@example.com"])
    reader = key(owner, scopes=["read"])
    names = {t["name"] for t in reader.get("/v1/tools").json()["tools"]}
    assert "hubspot.contacts.list" in names and ARCHIVE not in names and POST not in names
    for fmt in ("openai", "anthropic"):
        doc = reader.get("/v1/tools", params={"format": fmt}).json()
        assert all(not n.endswith(("upsert", "archive")) for n in doc["tool_names"].values())
        assert len(doc["tools"]) == len(names)
    refused = reader.post("/v1/jobs", {"tool": ARCHIVE, "account_id": account, "args": {"id": cid}})
    assert refused.status_code == 403 and refused.json()["error"] == "tool_not_allowed"

    narrow = key(owner, scopes=["read", "write"], tools=["hubspot.contacts.*"], accounts=[account])
    listed = {t["name"] for t in narrow.get("/v1/tools").json()["tools"]}
    assert listed and all(n.startswith("hubspot.contacts.") for n in listed)
    other = owner.account(sandbox, "hubspot")
    elsewhere = narrow.post("/v1/jobs", {"tool": "hubspot.contacts.list", "account_id": other})
    assert elsewhere.status_code == 403 and elsewhere.json()["error"] == "account_not_allowed"
    slack = narrow.post("/v1/jobs", {"tool": POST, "account_id": account, "args": {}})
    assert slack.status_code == 403 and slack.json()["error"] == "tool_not_allowed"
    assert narrow.post("/v1/jobs", {"tool": "hubspot.contacts.list",
                                    "account_id": account}).status_code == 202  # fmt: skip
    # a key without admin may not widen anything
    assert narrow.post("/v1/keys", {"scopes": ["admin"]}).status_code == 403
    assert narrow.s.put(f"{narrow.url}/v1/policy", json={"writes": "allow"}).status_code == 403


def test_bad_policy_input_is_a_clear_422(api: Any) -> None:
    owner = consent_tenant(api, "bad-policy")
    for body in ({"writes": "sometimes"}, {"approve_above": -1}, {"approve_above": "5"},
                 {"self_approve": "yes"}, {"nope": 1}, {"approval_timeout_s": 1e308}):  # fmt: skip
        resp = owner.s.put(f"{owner.url}/v1/policy", json=body, timeout=5)
        assert resp.status_code == 422, (body, resp.text)
    assert owner.get("/v1/policy").json()["policy"] == {}
