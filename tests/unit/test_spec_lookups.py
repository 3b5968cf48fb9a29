"""Spec options for lookups (an enrichment's "find"): `not_found: empty` (a 404 is no records),
`pending` (a 202 means "queued, ask again later") and the `hostname` argument format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeHttp, canned

from connectors.errors import VendorError
from connectors.specs import SpecError, load_file

VENDOR = {"name": "acme", "base_url": "https://api.acme.example", "token_url": "",
          "error_code": "error.type", "error_message": "error.message"}  # fmt: skip
FIND: dict[str, Any] = {
    "name": "acme.companies.find",
    "description": "One company by domain",
    "path": "/v2/companies/find",
    "query": {"domain": "{{args.domain}}"},
    "args": {"domain": {"type": "string", "required": True, "format": "hostname"}},
    "records": "[@]",
    "not_found": "empty",
    "pending": {"status": 202, "wait_s": 30},
}


def tool(tmp_path: Path, **changes: Any) -> Any:
    path = tmp_path / "acme.json"
    path.write_text(json.dumps({"vendor": VENDOR, "resources": [{**FIND, **changes}]}))
    _, (made,) = load_file(path)
    return made


def fetch(made: Any, *answers: Any, domain: str = "acme.example", cursor: Any = None) -> Any:
    http = FakeHttp(*answers)
    page = made.fetch(http, made.args(domain=domain), cursor)
    return page, http.sent


def test_a_found_object_is_one_record_and_the_lookup_is_done(tmp_path):
    page, sent = fetch(tool(tmp_path), {"id": "c1", "name": "Acme"}, domain="ACME.example")
    assert page.records == [{"id": "c1", "name": "Acme"}] and page.next_cursor is None
    assert page.wait_s is None
    assert [(s.method, s.path, s.kwargs["params"]) for s in sent] == [
        ("GET", "/v2/companies/find", {"domain": "acme.example"})  # lowercased by the format
    ]


def test_a_404_is_a_page_with_no_records_when_the_resource_says_so(tmp_path):
    missing = VendorError("unknown_record", "Unknown domain", status=404)
    page, _ = fetch(tool(tmp_path), missing)
    assert page.records == [] and page.next_cursor is None and page.wait_s is None
    with pytest.raises(VendorError) as raised:  # by default a 404 still fails
        fetch(tool(tmp_path, not_found="error"), missing)
    assert raised.value.status == 404


def test_other_refusals_still_fail(tmp_path):
    invalid = VendorError("params_invalid", "Invalid domain", status=422)
    with pytest.raises(VendorError) as raised:
        fetch(tool(tmp_path), invalid)
    assert (raised.value.status, raised.value.code) == (422, "params_invalid")


def test_a_pending_answer_waits_and_asks_the_same_again(tmp_path):
    queued = canned(202, {"error": {"type": "queued", "message": "Lookup queued"}})
    page, _ = fetch(tool(tmp_path), queued, cursor={"k": 1})
    assert page.records == [] and page.wait_s == 30
    assert page.next_cursor == {"k": 1}  # the same request next time
    assert "202" in page.note
    page, _ = fetch(tool(tmp_path, pending=None), canned(202, {"id": "c1"}))
    assert page.wait_s is None and page.records == [{"id": "c1"}]  # without: a 202 is a 200


@pytest.mark.parametrize(
    "given,expected",
    [(" Acme.Example ", "acme.example"), ("acme.example.", "acme.example"),
     ("www.acme.co.uk", "www.acme.co.uk"), ("société.fr", "société.fr")],
)  # fmt: skip
def test_a_hostname_argument_is_trimmed_and_lowercased(tmp_path, given, expected):
    assert tool(tmp_path).args(domain=given).domain == expected


@pytest.mark.parametrize(
    "given,reason",
    [("", "empty"), ("   ", "empty"), ("http://acme.example", "not a URL"),
     ("jane@acme.example", "not an email"), ("acme.example/about", "without a path"),
     ("acme.example?x=1", "without a path"), ("localhost", "not a domain name"),
     ("acme..example", "not a domain name"), ("-acme.example", "not a domain name"),
     ("acme example.com", "not a domain name"), ("a" * 64 + ".example", "not a domain name")],
)  # fmt: skip
def test_a_hostname_argument_that_is_no_domain_is_refused_saying_why(tmp_path, given, reason):
    with pytest.raises(ValueError, match=reason):
        tool(tmp_path).args(domain=given)


def test_the_schema_carries_the_format(tmp_path):
    prop = tool(tmp_path).args.model_json_schema()["properties"]["domain"]
    assert prop["format"] == "hostname" and prop["type"] == "string"


@pytest.mark.parametrize(
    "change,expected",
    [({"not_found": "ignore"}, "not_found"),
     ({"pending": {"status": 200}}, "pending.status"),
     ({"pending": {"wait_s": 0}}, "pending.wait_s"),
     ({"args": {"domain": {"type": "integer", "format": "hostname"}}}, "is for a string")],
)  # fmt: skip
def test_bad_lookup_options_are_refused_naming_the_field(tmp_path, change, expected):
    with pytest.raises(SpecError, match=expected):
        tool(tmp_path, **change)
