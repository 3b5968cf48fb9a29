"""Failures a person can act on: records a stage could not transform and records the sink's
vendor rejects land in the rejected list with the stage and the reason, the pipeline ends
`partly_done`, retry-rejected runs only those again from the stages that rejected them, and
a re-run from the sink writes the blocks already spooled without reading the source."""

from __future__ import annotations

from typing import Any

from pipelinekit import company_ids, rejected, sf_effects, stage, start, tricky, view, wait

N = 1000


def by(company: str) -> set[str]:
    return company_ids(company, N)


def test_rejected_records_are_listed_exactly_and_retried_from_their_stage(
    api: Any, fresh_sandbox: Any
) -> None:
    fresh_sandbox.config(salesforce_locked_fields=["Phone"])
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    pid = start(api, tricky(src, dst))
    done = wait(api, pid)
    assert done["status"] == "partly_done", done
    bad = rejected(api, pid)
    assert bad and "id" in bad[0]["record"], bad[:2]
    assert done["rejected"] == len(bad) == len(by("Umbrella") | by("Hooli") | by("Globex"))
    at_map = {e["record"]["id"] for e in bad if e["stage"] == 1}
    assert at_map == by("Umbrella")
    assert {e["error"]["code"] for e in bad if e["stage"] == 1} == {"map_failed"}
    sink = [e for e in bad if e["stage"] == 4]
    invalid = {e["record"]["id"] for e in sink if e["error"]["code"] == "invalid_record"}
    locked = {
        e["record"]["id"] for e in sink if e["error"]["code"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    }
    assert invalid == by("Hooli") and locked == by("Globex")
    assert all("Phone" in e["error"]["message"] for e in sink if e["record"]["id"] in locked)
    s = done["stages"]
    assert s[2]["dropped"] == len(by("Initech")) and s[1]["rejected"] == len(by("Umbrella"))
    written = N - len(by("Umbrella") | by("Initech") | by("Hooli") | by("Globex"))
    assert (s[4]["out"], s[4]["rejected"]) == (written, len(by("Hooli") | by("Globex")))
    assert len(sf_effects(fresh_sandbox)["per_object"]) == written

    fresh_sandbox.config(salesforce_locked_fields=[])  # an admin fixed the field's security
    resp = api.post(f"/v1/pipelines/{pid}/retry-rejected")
    assert resp.status_code == 202, resp.text
    again = wait(api, pid)
    assert again["status"] == "partly_done" and again["retries"] == 1, again
    still = rejected(api, pid)
    assert {e["record"]["id"] for e in still} == by("Umbrella") | by("Hooli")
    assert again["stages"][4]["out"] == written + len(by("Globex"))
    per_object = sf_effects(fresh_sandbox)["per_object"]
    assert len(per_object) == written + len(by("Globex"))
    assert all(c["create"] == 1 and c["update"] == 0 for c in per_object.values())


def test_a_rerun_from_the_sink_writes_the_spooled_blocks_without_reading_again(
    api: Any, fresh_sandbox: Any
) -> None:
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    pid = start(api, tricky(src, dst))
    first = wait(api, pid)
    reads = len(fresh_sandbox.requests("hubspot"))
    resp = api.post(f"/v1/pipelines/{pid}/rerun", {"from_stage": 4})
    assert resp.status_code == 202, resp.text
    rerun = wait(api, resp.json()["pipeline_id"])
    assert rerun["rerun_of"] == {"pipeline_id": pid, "from_stage": 4}
    assert len(fresh_sandbox.requests("hubspot")) == reads  # nothing read again
    assert stage(rerun, "source")["out"] == 0
    assert stage(rerun, "sink")["in"] == stage(first, "sink")["in"]
    per_object = sf_effects(fresh_sandbox)["per_object"]
    assert all(c["create"] == 1 for c in per_object.values())  # upserts find what exists
    bad = api.post(f"/v1/pipelines/{pid}/rerun", {"from_stage": 9})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_stage"
    assert view(api, pid)["status"] == first["status"]
