"""Unified writes on the real stack: one schema, run as the account's vendor's own write tool
(its mechanism included: a lost answer is reconciled exactly as the vendor tool does)."""

from __future__ import annotations

from typing import Any

from ledger import assert_created_once, effects

TOOL = "crm.contacts.upsert"


def people(tag: str, n: int) -> list[dict[str, Any]]:
    return [{"email": f"{tag}{i}@example.com", "first_name": f"F{i}", "last_name": f"L{i}"}
            for i in range(n)]  # fmt: skip


def test_crm_upsert_runs_as_the_vendor_tool_on_each_crm(api: Any, fresh_sandbox: Any) -> None:
    hub = api.account(fresh_sandbox, "hubspot")
    sf = api.account(fresh_sandbox, "salesforce")
    on_hub = api.call(TOOL, account_id=hub, args={"records": people("u", 3)})
    on_sf = api.call(TOOL, account_id=sf, args={"records": people("u", 3),
                                                "external_id_field": "Email__c"})  # fmt: skip
    assert on_hub["tool"] == "hubspot.contacts.upsert"
    assert on_sf["tool"] == "salesforce.records.upsert"
    for job, vendor in ((on_hub, "hubspot"), (on_sf, "salesforce")):
        done = api.wait(job["job_id"])
        assert done["status"] == "succeeded", (done.get("error"), done["history"])
        results = api.records(job["job_id"])
        assert [r["index"] for r in results] == [0, 1, 2]
        assert_created_once(fresh_sandbox, vendor, results)
    sf_fields = [e["fields"] for e in effects(fresh_sandbox, "salesforce")["effects"]]
    assert {"Email__c": "u0@example.com", "Email": "u0@example.com", "FirstName": "F0",
            "LastName": "L0"}.items() <= sf_fields[0].items()  # fmt: skip
    hub_fields = [e["fields"] for e in effects(fresh_sandbox, "hubspot")["effects"]]
    assert hub_fields[0] == {"firstname": "F0", "lastname": "L0", "email": "u0@example.com"}


def test_crm_upsert_lost_answer_is_one_effect(api: Any, fresh_sandbox: Any) -> None:
    hub = api.account(fresh_sandbox, "hubspot")
    fresh_sandbox.config(drop_after_commit_next=1)
    job = api.call(TOOL, account_id=hub, args={"records": people("lost", 2)})
    assert api.wait(job["job_id"])["status"] == "succeeded"
    assert_created_once(fresh_sandbox, "hubspot", api.records(job["job_id"]), resent_upsert=True)


def test_crm_upsert_refusals_say_what_to_fix(api: Any, fresh_sandbox: Any) -> None:
    sf = api.account(fresh_sandbox, "salesforce")
    slack = api.account(fresh_sandbox, "slack")
    no_field = api.post("/v1/jobs", {"tool": TOOL, "account_id": sf,
                                     "args": {"records": people("x", 1)}})  # fmt: skip
    assert no_field.status_code == 422, no_field.text
    assert no_field.json()["error"] == "external_id_field_required"
    wrong = api.post("/v1/jobs", {"tool": TOOL, "account_id": slack,
                                  "args": {"records": people("x", 1)}})  # fmt: skip
    assert wrong.status_code == 422 and wrong.json()["error"] == "account_vendor_mismatch"
    other = api.post("/v1/jobs", {"tool": TOOL, "account_id": "acc_nope",
                                  "args": {"records": people("x", 1)}})  # fmt: skip
    assert other.status_code == 404 and other.json()["error"] == "account_not_found"


TICKET = "ticketing.tickets.create"


def test_ticket_create_runs_as_each_vendor_and_survives_a_lost_answer(
    api: Any, fresh_sandbox: Any
) -> None:
    """One schema on Jira (a marker property), Zendesk (a key and an external id) and GitHub
    (a body marker); every answer is lost after the vendor committed: one ticket each."""
    accounts = {
        "jira": api.account(
            fresh_sandbox, "jira", token_url=f"{fresh_sandbox.url}/jira/oauth/token"
        ),
        "zendesk": api.account(fresh_sandbox, "zendesk"),
        "github": api.account(fresh_sandbox, "github"),
    }
    projects = {"jira": "ENG", "zendesk": None, "github": "acme/widgets"}
    for vendor, account in accounts.items():
        fresh_sandbox.config(drop_after_commit_next=1)
        args = {"title": f"Printer on fire ({vendor})", "description": "It smokes.",
                "priority": "high", **({"project": projects[vendor]} if projects[vendor] else {})}
        job = api.call(TICKET, account_id=account, args=args)
        done = api.wait(job["job_id"])
        assert done["status"] == "succeeded", (vendor, done.get("error"), done["history"])
        (result,) = api.records(job["job_id"])
        assert result["status"] == "created" and result["id"], result
        assert done["writes"]["reconciled"] == 1, (vendor, done["writes"])
        creates = [e for e in effects(fresh_sandbox, vendor)["effects"] if e["kind"] == "create"]
        assert len(creates) == 1, (vendor, creates)


def test_ticket_create_without_a_project_says_so(api: Any, fresh_sandbox: Any) -> None:
    github = api.account(fresh_sandbox, "github")
    resp = api.post("/v1/jobs", {"tool": TICKET, "account_id": github,
                                 "args": {"title": "t"}})  # fmt: skip
    assert resp.status_code == 422 and resp.json()["error"] == "project_required", resp.text
