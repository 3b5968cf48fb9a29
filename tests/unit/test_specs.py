"""Declarative specs: valid ones become tools; bad ones are refused naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.specs import SpecError, load_file

VENDOR = {"name": "acme", "base_url": "https://api.acme.example", "token_url": "/oauth/token",
          "error_code": "error.code", "error_message": "error.message"}
RESOURCE = {
    "name": "acme.tickets.list",
    "description": "Acme tickets",
    "path": "/v2/teams/{{args.team_id}}/tickets",
    "query": {"limit": "{{args.limit}}", "truto_ignore_remote_data": True},
    "args": {"team_id": {"type": "string", "required": True},
             "limit": {"type": "integer", "default": 50, "minimum": 1, "maximum": 100}},
    "records": "data",
    "pagination": {"type": "body_cursor", "cursor": "meta.next_cursor", "param": "cursor",
                   "has_more": "meta.has_more"},
}


def write(tmp_path: Path, doc: object, name: str = "acme.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_valid_spec_becomes_a_tool(tmp_path):
    vendor, tools = load_file(write(tmp_path, {"vendor": VENDOR, "resources": [RESOURCE]}))
    assert vendor and vendor.name == "acme" and vendor.token_url == "/oauth/token"
    (tool,) = tools
    assert tool.name == "acme.tickets.list" and tool.accepts == ("acme",)
    schema = tool.args.model_json_schema()
    assert schema["required"] == ["team_id"]
    assert tool.args.model_validate({"team_id": "t1"}).limit == 50
    with pytest.raises(ValueError):
        tool.args.model_validate({"team_id": "t1", "limit": 101})
    with pytest.raises(ValueError):
        tool.args.model_validate({"team_id": "t1", "surprise": 1})


def test_article_shape_single_resource(tmp_path):
    doc = {
        "name": "fetch-all-tickets", "vendor": "acme", "resource": "ticketing/tickets",
        "method": "list", "path": "/tickets", "records": "data", "persist": False,
        "args": {"team_id": {"type": "string"}},
        "query": {"team_id": "{{args.team_id}}", "truto_ignore_remote_data": True},
        "recurse": {"if": "{{response.meta.has_more:bool}}",
                    "config": {"query": {"cursor": "{{response.meta.next_cursor}}"}}},
    }
    _, (tool,) = load_file(write(tmp_path, doc))
    assert tool.name == "acme.ticketing.tickets.list"


@pytest.mark.parametrize(("change", "expected"), [
    ({"records": "data[?"}, "field `records`: bad JMESPath"),
    ({"records": None}, "field `resources.0.records`"),
    ({"pagination": {"type": "pages"}}, "field `resources.0.pagination.type`"),
    ({"pagination": {"type": "body_cursor", "cursor": "c"}}, "`pagination.param` is required"),
    ({"path": "/t/{{args.nope}}"}, "`args.nope` is used but not declared"),
    ({"query": {"h": "{{env.HOME}}"}}, "must start with one of ['args']"),
    ({"query": {"x": "{{args.__class__}}"}}, "invalid path segment"),
    ({"name": "acme.Tickets!"}, "not of the form vendor.resource.action"),
    ({"name": "Tickets"}, "give `name` (vendor.resource.action) or vendor + resource"),
    ({"recurse": {"if": "{{response.x}}", "config": {"query": {}}}}, "not both"),
    ({"args": {"limit": {"type": "float"}}}, "field `resources.0.args.limit.type`"),
    ({"surprise": 1}, "field `resources.0.surprise`"),
])
def test_bad_specs_are_refused_precisely(tmp_path, change, expected):
    path = write(tmp_path, {"vendor": VENDOR, "resources": [{**RESOURCE, **change}]})
    with pytest.raises(SpecError) as exc:
        load_file(path)
    assert str(path) in str(exc.value)
    assert expected in str(exc.value)


def test_unparseable_and_bad_vendor(tmp_path):
    with pytest.raises(SpecError, match="not valid json"):
        load_file(write(tmp_path, "{nope", "broken.json"))
    with pytest.raises(SpecError, match="field `vendor.base_url`"):
        load_file(write(tmp_path, {"vendor": {**VENDOR, "base_url": "ftp://x"},
                                   "resources": []}))


def test_builtin_specs_all_load():
    from connectors import BUILTIN_SPECS, load

    registry = load()
    for path in BUILTIN_SPECS.glob("*.json"):
        _, tools = load_file(path)
        assert all(t.name in registry.tools for t in tools)
