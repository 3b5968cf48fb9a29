"""`GET /v1/tools?format=openai|anthropic`: every tool's definition is checked against a JSON
Schema of that API's documented tool shape, and its parameters against JSON Schema itself.

OpenAI (Chat Completions `tools[]`): `{"type": "function", "function": {"name", "description"?,
"parameters"?, "strict"?}}`, the name `^[a-zA-Z0-9_-]{1,64}$` ("a-z, A-Z, 0-9, underscores
and dashes, at most 64"), `parameters` a JSON Schema object. Anthropic (Messages `tools[]`, a
client tool): `{"name", "description"?, "input_schema", "cache_control"?}`, the same name
pattern, `input_schema` a JSON Schema whose `type` is `"object"`.
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from app.kernel.registry import registry

NAME = {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"}
OBJECT_SCHEMA = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"const": "object"}, "properties": {"type": "object"}},
}
OPENAI_TOOL = {
    "type": "object",
    "required": ["type", "function"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": NAME,
                "description": {"type": "string"},
                "parameters": OBJECT_SCHEMA,
                "strict": {"type": ["boolean", "null"]},
            },
        },
    },
}
ANTHROPIC_TOOL = {
    "type": "object",
    "required": ["name", "input_schema"],
    "additionalProperties": False,
    "properties": {
        "name": NAME,
        "description": {"type": "string"},
        "input_schema": OBJECT_SCHEMA,
        "cache_control": {"type": ["object", "null"]},
    },
}
SHAPES = {"openai": OPENAI_TOOL, "anthropic": ANTHROPIC_TOOL}


def unwrap(fmt: str, tool: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    if fmt == "openai":
        fn = tool["function"]
        return fn["name"], fn["description"], fn["parameters"]
    return tool["name"], tool["description"], tool["input_schema"]


def test_every_tool_is_listed_with_its_hints(api: Any) -> None:
    """Every read says so; every write says it is one, and whether it may delete or
    overwrite and whether a repeat is harmless: all four MCP hints sent for each."""
    tools = {t["name"]: t["annotations"] for t in api.get("/v1/tools").json()["tools"]}
    read = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True,
            "openWorldHint": True}  # fmt: skip
    writes = {name for name, t in registry().tools.items() if not t.read_only}
    assert {n for n, hints in tools.items() if hints == read} == set(tools) - writes
    assert writes >= {"hubspot.contacts.upsert", "slack.chat.post_message", "crm.contacts.upsert"}
    assert tools["hubspot.contacts.upsert"] == {**read, "readOnlyHint": False,
                                                "destructiveHint": True}  # fmt: skip
    assert tools["hubspot.contacts.archive"] == {**read, "readOnlyHint": False,
                                                 "destructiveHint": True}  # fmt: skip
    for name in ("slack.chat.post_message", "jira.issues.comment", "zendesk.tickets.comment"):
        assert tools[name]["idempotentHint"] is False and not tools[name]["readOnlyHint"], name


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_definitions_match_the_documented_shape(api: Any, fmt: str) -> None:
    from app.kernel.registry import registry

    resp = api.get("/v1/tools", params={"format": fmt})
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["format"] == fmt
    tools, names = doc["tools"], doc["tool_names"]
    assert len(tools) == len(registry().tools)
    Draft202012Validator.check_schema(SHAPES[fmt])
    shape = Draft202012Validator(SHAPES[fmt])
    seen = set()
    for tool in tools:
        errors = [e.message for e in shape.iter_errors(tool)]
        assert not errors, (tool, errors)
        name, description, schema = unwrap(fmt, tool)
        Draft202012Validator.check_schema(schema)  # a valid JSON Schema
        assert "$ref" not in str(schema)  # self-contained: clients need not resolve refs
        original = registry().tools[names[name]]
        assert original.description in description
        assert schema["required"][0] == "account_id"
        assert schema["properties"]["args"]["properties"].keys() == (
            original.args.model_json_schema()["properties"].keys()
        )
        seen.add(names[name])
    assert seen == set(registry().tools)


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_parameters_accept_a_job_body(api: Any, fmt: str) -> None:
    """A model's arguments are a POST /v1/jobs body without `tool`: the schema says so."""
    doc = api.get("/v1/tools", params={"format": fmt}).json()
    by_tool = {doc["tool_names"][unwrap(fmt, t)[0]]: unwrap(fmt, t)[2] for t in doc["tools"]}
    contacts = Draft202012Validator(by_tool["hubspot.contacts.list"])
    good = {"account_id": "acc_1", "args": {"limit": 50}, "fields": ["id"], "max_pages": 3}
    assert contacts.is_valid(good) and contacts.is_valid({"account_id": "acc_1"})
    for bad in (
        {"args": {"limit": 50}},  # no account
        {"account_id": "acc_1", "args": {"limit": 0}},  # the tool's own bound
        {"account_id": "acc_1", "args": {"nope": 1}},  # unknown tool argument
        {"account_id": "acc_1", "max_bytes": 10},  # toolqueue's own bound
        {"account_id": "acc_1", "callback_url": "https://x.example"},  # not offered
    ):
        assert not contacts.is_valid(bad), bad
    search = Draft202012Validator(by_tool["hubspot.contacts.search"])  # nested models inlined
    assert search.is_valid({"account_id": "a", "args": {"filter_groups": [
        {"filters": [{"propertyName": "email", "operator": "EQ", "value": "x@y.z"}]}]}})
    assert not search.is_valid({"account_id": "a", "args": {"filter_groups": [{"filters": []}]}})
    soql = Draft202012Validator(by_tool["salesforce.query"])
    assert not soql.is_valid({"account_id": "a"})  # required tool args make `args` required


def test_the_function_call_is_a_job(api: Any, fresh_sandbox: Any) -> None:
    """What a model sends back runs as is: POST /v1/jobs {"tool": tool_names[name], **args}."""
    account = api.account(fresh_sandbox)
    doc = api.get("/v1/tools", params={"format": "anthropic"}).json()
    name = next(t["name"] for t in doc["tools"] if t["name"] == "hubspot_contacts_list")
    arguments = {"account_id": account, "args": {"limit": 10}, "fields": ["id"], "max_pages": 1}
    job = api.call(doc["tool_names"][name], **arguments)
    assert api.wait(job["job_id"])["status"] == "succeeded"
    assert [r["id"] for r in api.result(job["job_id"])["records"]] == [str(i) for i in range(1, 11)]


def test_unknown_format_is_422(api: Any) -> None:
    resp = api.get("/v1/tools", params={"format": "bogus"})
    assert resp.status_code == 422
    err = resp.json()
    assert err["error"] == "invalid_request"
    assert "format" in err["message"] and "openai" in err["message"]
    assert "anthropic" in err["message"]
    plain = api.get("/v1/tools").json()  # without `format`: toolqueue's own listing
    assert set(plain) == {"tools"} and "input_schema" in plain["tools"][0]


def test_function_names_are_safe_unique_and_stable() -> None:
    from app.services.toolschemas import NAME_PATTERN, RESERVED_NAMES, function_names

    names = [
        "hubspot.contacts.list",
        "hubspot.contacts_list",  # collides with the one above once dots become `_`
        "job.status",  # would take an MCP job tool's name
        "v" * 40 + "." + "w" * 40,  # too long
        "crm.contacts.list",
    ]
    out = function_names(names)
    assert out == function_names(list(reversed(names)))  # deterministic
    assert len(set(out.values())) == len(names)
    assert all(NAME_PATTERN.match(n) for n in out.values())
    assert not RESERVED_NAMES & set(out.values())
    assert out["crm.contacts.list"] == "crm_contacts_list"
    assert out["hubspot.contacts.list"].startswith("hubspot_contacts_list_")
    assert function_names(["hubspot.contacts.list"]) == {
        "hubspot.contacts.list": "hubspot_contacts_list"
    }
