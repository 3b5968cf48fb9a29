"""Unified tools: the same call on different vendors' accounts returns one schema."""

from __future__ import annotations

import pytest

CONTACT_KEYS = {"id", "first_name", "last_name", "email", "phone", "company", "created_at",
                "updated_at"}
TICKET_KEYS = {"id", "title", "status", "priority", "assignee", "created_at", "updated_at",
               "url"}


def _records(api, job_id):
    done = api.wait(job_id, timeout=90)
    assert done["status"] == "succeeded", done
    return api.records(job_id)


def test_crm_contacts_same_schema_on_hubspot_and_salesforce(api, fresh_sandbox):
    fresh_sandbox.config(hubspot_contacts=250, volumes={"salesforce.contacts": 250})
    out = {}
    for vendor in ("hubspot", "salesforce"):
        account = api.account(fresh_sandbox, vendor)
        job = api.call("crm.contacts.list", account_id=account, args={})
        out[vendor] = _records(api, job["job_id"])
    for vendor, records in out.items():
        assert len(records) == 250, vendor
        assert len({r["id"] for r in records}) == 250, vendor
        for r in records:
            assert set(r) == CONTACT_KEYS, (vendor, r)
            assert r["email"] and r["last_name"] and r["created_at"], (vendor, r)


def test_remote_data_only_on_request(api, fresh_sandbox):
    fresh_sandbox.config(hubspot_contacts=5)
    account = api.account(fresh_sandbox, "hubspot")
    plain = _records(api, api.call("crm.contacts.list", account_id=account)["job_id"])
    assert all("remote_data" not in r for r in plain)
    job = api.call("crm.contacts.list", account_id=account, args={"include_remote_data": True})
    rich = _records(api, job["job_id"])
    assert all(r["remote_data"]["id"] == r["id"] for r in rich)


@pytest.mark.parametrize(("vendor", "project"), [
    ("jira", "ENG"), ("zendesk", None), ("github", "acme/widgets"),
])
def test_ticketing_same_schema(api, fresh_sandbox, oauth_account, vendor, project):
    account = oauth_account(vendor)
    args = {"project": project} if project else {}
    job = api.call("ticketing.tickets.list", account_id=account, args=args,
                   delivery="blocks")
    records = _records(api, job["job_id"])
    assert records, vendor
    for r in records:
        assert set(r) == TICKET_KEYS, (vendor, r)
        assert r["id"] and r["title"] and r["status"] == r["status"].lower()


def test_unified_tool_refuses_an_unsupported_vendor(api, fresh_sandbox):
    account = api.account(fresh_sandbox, "hubspot")
    resp = api.post("/v1/jobs", {"tool": "ticketing.tickets.list", "account_id": account})
    assert resp.status_code == 422
    assert resp.json()["error"] == "account_vendor_mismatch"
