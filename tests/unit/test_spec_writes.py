"""Declarative write tools: a spec's `writes` become write tools, bad entries are refused
naming file and field, and the declared request carries the operation's key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from connectors.errors import ConnectorError, Transient, VendorError
from connectors.specs import SpecError, load_file
from connectors.specwrites import form_pairs, prune
from connectors.writes import Mechanism, Operation

VENDOR = {"name": "acme", "base_url": "https://api.acme.example", "error_code": "error.code",
          "error_message": "error.message"}
CREATE: dict[str, Any] = {
    "name": "acme.things.create",
    "description": "Create a thing",
    "args": {"title": {"type": "string", "required": True}, "meta": {"type": "object"}},
    "method": "POST",
    "path": "/v1/things",
    "body": {"title": "{{args.title}}", "meta": "{{args.meta}}", "ref": "{{op.key}}"},
    "encoding": "form",
    "mechanism": "idempotency_key",
    "key_header": "Idempotency-Key",
    "key_error": "idempotency_error",
    "result": {"id": "thing.id", "status": "created"},
    "find": {"path": "/v1/things", "query": {"ref": "{{op.key}}"}, "records": "things"},
}


def load(tmp_path: Path, *writes: dict[str, Any]) -> list[Any]:
    path = tmp_path / "acme.json"
    path.write_text(json.dumps({"vendor": VENDOR, "writes": list(writes)}))
    return load_file(path)[1]


class Resp:
    def __init__(self, doc: Any) -> None:
        self.content = json.dumps(doc).encode()


class FakeHttp:
    """Records each request; answers from `answers` in order (an exception is raised)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Resp:
        self.calls.append((method, path, kwargs))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return Resp(answer)


def op(args: Any) -> Operation:
    return Operation(0, ((0, args),), key="job1.0")


def test_a_write_entry_becomes_a_write_tool(tmp_path: Path) -> None:
    (tool,) = load(tmp_path, CREATE)
    assert tool.name == "acme.things.create" and not tool.read_only
    assert tool.write.mechanism is Mechanism.KEY and tool.write.find is not None
    assert tool.hints["idempotentHint"] is False
    args = tool.args.model_validate({"title": "T", "meta": {"a": "1"}})
    http = FakeHttp({"thing": {"id": 7}})
    (result,) = tool.write.send(http, op(args))
    assert result.record() == {"index": 0, "status": "created", "id": "7"}
    ((method, path, kwargs),) = http.calls
    assert (method, path) == ("POST", "/v1/things")
    assert kwargs["headers"] == {"Idempotency-Key": "job1.0"}
    assert kwargs["data"] == [("title", "T"), ("meta[a]", "1"), ("ref", "job1.0")]


def test_find_reports_the_effect_or_none(tmp_path: Path) -> None:
    (tool,) = load(tmp_path, CREATE)
    args = tool.args.model_validate({"title": "T"})
    http = FakeHttp({"things": []}, {"things": [{"id": 9}]})
    assert tool.write.find(http, op(args)) is None
    (found,) = tool.write.find(http, op(args))
    assert (found.status, found.id) == ("created", "9")
    assert http.calls[0][:2] == ("GET", "/v1/things")
    assert http.calls[0][2]["params"] == {"ref": "job1.0"}


def test_a_key_still_executing_is_transient_a_spent_key_ends_the_job(tmp_path: Path) -> None:
    (tool,) = load(tmp_path, CREATE)
    args = tool.args.model_validate({"title": "T"})
    busy = VendorError("idempotency_error", "in progress", status=409)
    with pytest.raises(Transient):
        tool.write.send(FakeHttp(busy), op(args))
    spent = VendorError("idempotency_error", "other parameters", status=400)
    with pytest.raises(ConnectorError) as info:
        tool.write.send(FakeHttp(spent), op(args))
    assert not isinstance(info.value, VendorError)  # not a record's rejection
    assert info.value.code == "idempotency_error" and "job1.0" in info.value.message
    other = VendorError("email_invalid", "bad email", status=400)
    with pytest.raises(VendorError):  # an ordinary refusal: the runner rejects the record
        tool.write.send(FakeHttp(other), op(args))


def test_path_values_are_percent_encoded_and_json_bodies_pruned(tmp_path: Path) -> None:
    update = {**CREATE, "name": "acme.things.update", "path": "/v1/things/{{args.id}}",
              "args": {"id": {"type": "string", "required": True},
                       "title": {"type": "string"}, "tags": {"type": "array"}},
              "body": {"thing": {"title": "{{args.title}}", "tags": "{{args.tags}}"}},
              "encoding": "json", "mechanism": "absolute", "key_header": "", "key_error": "",
              "find": None, "method": "PUT", "result": {"id": "thing.id", "status": "updated"}}
    (tool,) = load(tmp_path, update)
    assert tool.hints["idempotentHint"] is True
    http = FakeHttp({"thing": {"id": "a/b"}})
    tool.write.send(http, op(tool.args.model_validate({"id": "../x", "tags": []})))
    ((_, path, kwargs),) = http.calls
    assert path == "/v1/things/..%2Fx"
    assert kwargs["json"] == {"thing": {"tags": []}} and kwargs["headers"] == {}


@pytest.mark.parametrize(("change", "expected"), [
    ({"mechanism": "hope"}, "field `writes.0.mechanism`: Input should be"),
    ({"method": None}, "field `writes.0.method`"),
    ({"result": None}, "field `writes.0.result`"),
    ({"result": {"id": "id", "status": "made"}}, "field `writes.0.result.status`"),
    ({"description": ""}, "field `writes.0.description`"),
    ({"surprise": 1}, "field `writes.0.surprise`"),
    ({"key_header": ""}, "field `key_header` is required for idempotency_key"),
    ({"mechanism": "none"}, "field `mechanism`: none takes no `key_header` or `find`"),
    ({"mechanism": "marker", "find": None}, "field `find` is required for marker"),
    ({"key_header": "", "mechanism": "absolute", "find": None}, "field `key_error` needs"),
    ({"body": {"x": "{{args.nope}}"}}, "`args.nope` is used but not declared"),
    ({"path": "/v1/{{response.id}}"}, "field `path/body`"),
    ({"find": {"path": "/v1/{{args.zzz}}", "records": "x"}}, "field `find`"),
    ({"result": {"id": "[", "status": "created"}}, "field `result.id`: bad JMESPath"),
    ({"name": "Things"}, "field `name`"),
])  # fmt: skip
def test_bad_write_entries_are_refused_naming_the_field(
    tmp_path: Path, change: dict[str, Any], expected: str
) -> None:
    entry = {k: v for k, v in {**CREATE, **change}.items() if v is not None}
    with pytest.raises(SpecError) as info:
        load(tmp_path, entry)
    assert str(info.value).startswith(str(tmp_path / "acme.json"))
    assert expected in str(info.value)


def test_form_pairs_and_prune() -> None:
    body = prune({"a": None, "m": {"k": None}, "l": [], "s": "", "n": {"x": 1}})
    assert body == {"l": [], "s": "", "n": {"x": 1}}
    assert form_pairs({"b": True, "items": [{"p": "x"}], "e": ""}) == [
        ("b", "true"), ("items[0][p]", "x"), ("e", "")
    ]


def test_the_builtin_write_tools_declare_their_mechanisms() -> None:
    import connectors

    tools = connectors.load().tools
    assert {n: tools[n].write.mechanism for n in (
        "stripe.customers.create", "stripe.customers.update", "zendesk.tickets.create",
        "zendesk.tickets.update", "zendesk.tickets.comment")} == {
        "stripe.customers.create": Mechanism.KEY, "stripe.customers.update": Mechanism.ABSOLUTE,
        "zendesk.tickets.create": Mechanism.KEY, "zendesk.tickets.update": Mechanism.ABSOLUTE,
        "zendesk.tickets.comment": Mechanism.NONE}  # fmt: skip
    assert tools["zendesk.tickets.create"].write.find is not None
