"""A pipeline end to end on real workers and the sandbox: HubSpot contacts → map → filter →
Salesforce upsert, every record written once."""

from __future__ import annotations

from typing import Any

from pipelinekit import definition, sf_effects, stage, start, wait


def test_a_pipeline_reads_maps_and_upserts_every_record_once(api: Any, fresh_sandbox: Any) -> None:
    src = api.account(fresh_sandbox, "hubspot")
    dst = api.account(fresh_sandbox, "salesforce")
    pid = start(api, definition(src, dst))
    done = wait(api, pid)
    assert done["status"] == "succeeded", done
    source, sink = stage(done, "source"), stage(done, "sink")
    assert source["out"] == 1000
    assert sink["in"] == 1000 and sink["out"] == 1000 and sink["rejected"] == 0
    per_object = sf_effects(fresh_sandbox)["per_object"]
    assert len(per_object) == 1000
    assert all(c["create"] == 1 and c["update"] == 0 for c in per_object.values())
