"""Bad pipeline definitions are refused before anything runs: 422 with a code and a message
naming the stage and the problem (unknown tools, a field the source does not project, a sink
that does not write, malformed expressions and templates), 404 for another tenant's account."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pipelinekit import definition, wait


@pytest.fixture
def base(api: Any, fresh_sandbox: Any) -> dict[str, Any]:
    return definition(
        api.account(fresh_sandbox, "hubspot"), api.account(fresh_sandbox, "salesforce")
    )


def refused(api: Any, body: dict[str, Any], status: int = 422) -> dict[str, Any]:
    resp = api.post("/v1/pipelines", body)
    assert resp.status_code == status, resp.text
    out: dict[str, Any] = resp.json()
    assert out["message"], out
    return out


def changed(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = body
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value
    return body


def test_unknown_tools_are_named(api: Any, base: dict[str, Any]) -> None:
    out = refused(api, changed(base, "source.tool", "hubspot.contacts.lsit"))
    assert out["error"] == "unknown_tool" and "source" in out["message"]
    assert "hubspot.contacts.lsit" in out["message"]
    out = refused(api, changed(base, "sink.tool", "nope.records.upsert"))
    assert out["error"] == "unknown_tool" and out["message"].startswith("sink")
    body = changed(base, "stages", [{"enrich": {"tool": "nope.find", "account_id": "x",
                                                "args": {}, "into": "c"}}])  # fmt: skip
    out = refused(api, body)
    assert out["error"] == "unknown_tool" and "stages[0] (enrich)" in out["message"]


def test_a_stage_reading_a_field_the_source_does_not_project_is_refused(
    api: Any, base: dict[str, Any]
) -> None:
    out = refused(api, changed(base, "stages.1.filter", "properties.phone != null"))
    assert out["error"] == "unknown_field" and out["field"] == "properties.phone"
    assert "stages[1] (filter)" in out["message"] and "source.fields" in out["message"]
    out = refused(api, changed(base, "stages.0.map.Email", "properties.emial"))
    assert out["error"] == "unknown_field" and out["field"] == "properties.emial"
    # a field a map set earlier may be read later; projecting a parent covers its children
    ok = changed(base, "stages.1.filter", "Email != null && properties.lastname != null")
    assert api.post("/v1/pipelines", ok).status_code == 202
    whole = changed(base, "source.fields", ["id", "properties"])
    assert api.post("/v1/pipelines", whole).status_code == 202


def test_sinks_must_be_batch_write_tools_and_sources_reads(api: Any, base: dict[str, Any]) -> None:
    out = refused(api, changed(base, "sink.tool", "salesforce.records.list"))
    assert out["error"] in ("sink_not_write", "unknown_tool"), out
    out = refused(api, changed(base, "sink.tool", "salesforce.records.delete"))
    assert out["error"] == "sink_not_batch", out
    src_account = base["source"]["account_id"]
    body = changed(base, "source", {"tool": "hubspot.contacts.upsert", "account_id": src_account})
    assert refused(api, body)["error"] == "source_not_read"
    out = refused(api, changed(base, "sink.args.records", [{"x": 1}]))
    assert out["error"] == "invalid_args" and "records" in out["message"]
    out = refused(api, changed(base, "sink.args.sobject", "not a name!"))
    assert out["error"] == "invalid_args" and "sobject" in out["message"]


def test_malformed_stages_expressions_and_templates_are_refused(
    api: Any, base: dict[str, Any]
) -> None:
    out = refused(api, changed(base, "stages.1.filter", "properties.email != "))
    assert out["error"] == "invalid_expression"
    out = refused(api, changed(base, "stages.1.filter", "(" * 5000 + "a" + ")" * 5000))
    assert out["error"] in ("invalid_expression", "invalid_request"), out
    two = {"map": {"A": "id"}, "filter": "id"}
    assert refused(api, changed(base, "stages", [two]))["error"] == "invalid_request"
    out = refused(api, changed(base, "stages.0.map", {"bad name": "id"}))
    assert out["error"] == "invalid_stage"
    body = changed(base, "stages", [{"transform": {"name": "rm_rf"}}])
    out = refused(api, body)
    assert out["error"] == "unknown_transform" and "normalize_email" in out["message"]
    account = base["source"]["account_id"]
    enrich = {"enrich": {"tool": "hubspot.contacts.list", "account_id": account,
                         "args": {"limit": "{{ nope.x }}"}, "into": "c"}}  # fmt: skip
    out = refused(api, changed(base, "stages", [enrich]))
    assert out["error"] == "invalid_template" and "record" in out["message"]


def test_accounts_are_the_tenants_own_and_of_the_tools_vendor(
    api: Any, base: dict[str, Any]
) -> None:
    out = refused(api, changed(base, "sink.account_id", base["source"]["account_id"]))
    assert out["error"] == "account_vendor_mismatch" and out["message"].startswith("sink")
    assert refused(api, changed(base, "sink.account_id", "acc_nope"), 404)["error"] == (
        "account_not_found"
    )
    hostile = changed(base, "name", "\ud800" * 10)
    assert api.post("/v1/pipelines", hostile).status_code in (202, 422)
    assert api.get("/v1/pipelines/nope").status_code == 404


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("stages.1.filter", "properties.email == '\ud800'"),
        ("stages.1.filter", "properties.email == `" + "9" * 5000 + "`"),
        ("stages.0.map.Email", "__class__.__init__"),
        ("stages.0.map", {f"F{i}": "id" for i in range(201)}),
        ("source.fields", ["x" * 201]),
        ("sink.args.sobject", {"$gt": ""}),
        ("callback_url", "http://169.254.169.254/latest/meta-data"),
        ("callback_url", "http://10.0.0.1/hook"),
        (
            "stages",
            [
                {
                    "enrich": {
                        "tool": "clearbit.companies.find",
                        "account_id": "a",
                        "args": {"domain": "{{ record.__class__ }}"},
                        "into": "c",
                    }
                }
            ],
        ),
    ],
)
def test_hostile_definitions_get_a_clear_4xx_never_a_500(
    api: Any, base: dict[str, Any], path: str, value: Any
) -> None:
    resp = api.post("/v1/pipelines", changed(base, path, value))
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text[:500])
    body = resp.json()
    assert isinstance(body["error"], str) and body["message"], body


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("stages.1.filter", "`1e999` > `0`"),  # an infinite literal compares as a number
        ("stages.0.map.Email", "to_string(`" + "[" * 40 + "]" * 40 + "`)"),
        ("stages.0.map.Email", "properties.email.nope.nope"),
    ],
)
def test_odd_but_valid_expressions_run_to_the_end(
    api: Any, base: dict[str, Any], path: str, value: Any
) -> None:
    resp = api.post("/v1/pipelines", changed(base, path, value))
    assert resp.status_code == 202, resp.text
    done = wait(api, resp.json()["pipeline_id"])
    assert done["status"] in ("succeeded", "partly_done"), done
