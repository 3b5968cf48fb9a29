"""The article's example end to end offline: HubSpot contacts → map → filter → enrich by
Clearbit's company lookup → Salesforce upsert. Lookups are cached per pipeline (one per
domain, however many records share it) and paced by Clearbit's own budget; unknown domains
(a 404) enrich with null, or drop or reject the record as the stage says."""

from __future__ import annotations

from typing import Any

from pipelinekit import clearbit_account, example, rejected, sf_effects, stage, start, wait

from sandbox.hubspot.data import COMPANIES, contact

UNKNOWN = {"cyberdyne.example", "soylent.example"}  # the Clearbit sandbox answers 404


def domain(i: int) -> str:
    return str(contact(i)["properties"]["email"]).rsplit("@", 1)[1]


def lookups(sandbox: Any) -> list[str]:
    return [e["path"] for e in sandbox.requests("clearbit") if "/companies/find" in e["path"]]


def test_the_issue_example_runs_end_to_end_with_one_lookup_per_domain(
    api: Any, fresh_sandbox: Any
) -> None:
    accounts = (api.account(fresh_sandbox, "hubspot"), clearbit_account(api, fresh_sandbox),
                api.account(fresh_sandbox, "salesforce"))  # fmt: skip
    pid = start(api, example(*accounts))
    done = wait(api, pid)
    assert done["status"] == "succeeded", done
    assert [s["kind"] for s in done["stages"]] == ["source", "map", "filter", "enrich", "sink"]
    enrich = stage(done, "enrich")
    assert (enrich["in"], enrich["out"], enrich["rejected"]) == (1000, 1000, 0)
    assert len(lookups(fresh_sandbox)) == len(COMPANIES)  # cached: one per distinct domain
    assert stage(done, "sink")["out"] == 1000
    per_object = sf_effects(fresh_sandbox)["per_object"]
    assert len(per_object) == 1000 and all(c["create"] == 1 for c in per_object.values())


def test_enriched_fields_reach_the_sink_through_a_map_and_unknown_domains_are_null(
    api: Any, fresh_sandbox: Any
) -> None:
    accounts = (api.account(fresh_sandbox, "hubspot"), clearbit_account(api, fresh_sandbox),
                api.account(fresh_sandbox, "salesforce"))  # fmt: skip
    after = {"map": {"Company_Name__c": "company.name", "Company_Domain__c": "company.domain"}}
    pid = start(api, example(*accounts, after))
    assert wait(api, pid)["status"] == "succeeded"
    written = {e["fields"]["External_Id__c"]: e["fields"]
               for e in sf_effects(fresh_sandbox)["effects"]}  # fmt: skip
    assert len(written) == 1000
    names = dict(COMPANIES)
    for i in (1, 2, 3, 500, 1000):
        fields = written[str(i)]
        if domain(i) in UNKNOWN:
            assert fields["Company_Name__c"] is None
        else:
            assert fields["Company_Domain__c"] == domain(i)
            assert fields["Company_Name__c"], fields
    known = [f for f in written.values() if f["Company_Domain__c"]]
    assert {f["Company_Domain__c"] for f in known} == {d for _, d in COMPANIES} - UNKNOWN
    assert set(names)  # the sandbox's companies are the HubSpot sandbox's


def test_unknown_domains_can_reject_the_record_at_the_enrich_stage(
    api: Any, fresh_sandbox: Any
) -> None:
    accounts = (api.account(fresh_sandbox, "hubspot"), clearbit_account(api, fresh_sandbox),
                api.account(fresh_sandbox, "salesforce"))  # fmt: skip
    body = example(*accounts)
    body["stages"][2]["enrich"]["on_missing"] = "reject"
    pid = start(api, body)
    done = wait(api, pid)
    assert done["status"] == "partly_done", done
    bad = rejected(api, pid)
    expected = {str(i) for i in range(1, 1001) if domain(i) in UNKNOWN}
    assert {e["record"]["id"] for e in bad} == expected
    assert {(e["stage"], e["kind"], e["error"]["code"]) for e in bad} == {
        (3, "enrich", "not_found")
    }
    assert stage(done, "sink")["out"] == 1000 - len(expected)
