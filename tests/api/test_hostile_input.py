"""Hostile input over the real API (uvicorn, Redis, workers): every row answers below 500 with
its machine-readable code. Bodies are sent as raw bytes, so the JSON is exactly what an
attacker would write (deep nesting, lone surrogates, numbers no double holds, odd URLs, vendor
headers), on the REST routes, the MCP endpoint and the inbound vendor webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
import requests

DEPTH = 32  # Settings.max_json_depth default
SECRET = "hostile-" + "s" * 24
GRAPHQL = ("query($after: String) { customers(first: 50, after: $after) { nodes { id } "
           "pageInfo { hasNextPage endCursor } } }")  # fmt: skip
MCP_HEADERS = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json"}  # fmt: skip


def nested(levels: int) -> str:
    """`levels` arrays, one inside the other, as JSON text."""
    return "[" * levels + "]" * levels


def splice(doc: Any, **raw: str) -> bytes:
    """`doc` as JSON, each string `"<NAME>"` in it replaced by the raw JSON text `raw[NAME]`."""
    text = json.dumps(doc)
    for name, value in raw.items():
        text = text.replace(json.dumps(f"<{name}>"), value)
    return text.encode()


def variables(depth: int) -> str:
    """GraphQL `variables` that make a POST /v1/jobs body `depth` levels deep (the root, `args`
    and `variables` itself are three)."""
    return splice({"v": "<V>"}, V=nested(depth - 3)).decode()


def graphql_job(variables: str) -> bytes:
    """A shopify.graphql.query job whose `variables` is the raw JSON text given."""
    args = {"query": GRAPHQL, "connection": "customers", "variables": "<V>"}
    return splice({"tool": "shopify.graphql.query", "account_id": "acc_missing", "args": args},
                  V=variables)  # fmt: skip


def contacts_job(args: str = '{"limit": 10}', **options: str) -> bytes:
    """A hubspot.contacts.list job: raw JSON text for its args and any job option."""
    doc = {"tool": "hubspot.contacts.list", "account_id": "acc_missing", "args": "<args>",
           **{k: f"<{k}>" for k in options}}  # fmt: skip
    return splice(doc, args=args, **options)


def write_job(tool: str, args: str) -> bytes:
    """A write tool's job on a missing account: raw JSON text for its args."""
    return splice({"tool": tool, "account_id": "acc_missing", "args": "<args>"}, args=args)


UPSERT = "hubspot.contacts.upsert"


def account_body(name: str = '"x"', token: str = '"t"', credentials: str | None = None) -> bytes:
    creds = credentials or splice({"type": "bearer", "token": "<T>"}, T=token).decode()
    doc = {"vendor": "hubspot", "name": "<N>", "credentials": "<C>"}
    return splice(doc, N=name, C=creds)


def post_raw(api: Any, path: str, body: bytes, **headers: str) -> requests.Response:
    return api.s.post(api.url + path, data=body, timeout=30,
                      headers={"Content-Type": "application/json", **headers})  # fmt: skip


def assert_code(resp: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code < 500, (resp.status_code, resp.text[:500])
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("error") == code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return body


# ---- REST bodies -------------------------------------------------------------------------

REST = [
    # consent: approvals, policy, keys, audit
    ("approve_binding_over_64", "/v1/jobs/missing/approve", b'{"binding": "' + b"a" * 65 + b'"}',
     422, "invalid_request"),
    ("approve_lone_surrogate_reason", "/v1/jobs/missing/approve", b'{"reason": "\\udfff"}', 422,
     "invalid_string"),
    ("approve_an_unknown_job", "/v1/jobs/missing/approve", b"{}", 404, "job_not_found"),
    ("reject_reason_as_a_number", "/v1/jobs/missing/reject", b'{"reason": 1e400}', 422,
     "invalid_number"),
    ("key_with_an_unknown_scope", "/v1/keys", b'{"scopes": ["root"]}', 422, "invalid_request"),
    ("key_with_an_empty_tool_pattern", "/v1/keys", b'{"tools": [""]}', 422, "invalid_key"),
    ("key_with_deep_tools", "/v1/keys", b'{"tools": ' + nested(100).encode() + b"}", 422,
     "json_too_deep"),
    ("dry_run_on_a_read_tool", "/v1/jobs", contacts_job(dry_run="true"), 422,
     "invalid_option"),
    ("dry_run_as_a_string", "/v1/jobs", contacts_job(dry_run='"yes"'), 422, "invalid_request"),
    # nesting: the limit counts every object and array of the body
    ("variables_300_deep", "/v1/jobs", graphql_job(variables(300)), 422, "json_too_deep"),
    ("variables_one_past_the_limit", "/v1/jobs", graphql_job(variables(DEPTH + 1)), 422,
     "json_too_deep"),
    ("variables_at_the_limit", "/v1/jobs", graphql_job(variables(DEPTH)), 404,
     "account_not_found"),
    ("credentials_5000_deep", "/v1/accounts", account_body(credentials=nested(5000)), 422,
     "json_too_deep"),
    ("deep_body_where_none_is_read", "/v1/jobs/whatever/cancel", nested(2000).encode(), 422,
     "json_too_deep"),
    ("deep_and_unterminated", "/v1/jobs", b"[" * 990 + b'"', 422, "json_too_deep"),
    # strings: a lone surrogate escape decodes to a str that cannot be encoded or sent
    ("lone_surrogate_account_id", "/v1/jobs",
     b'{"tool": "hubspot.contacts.list", "account_id": "\\udfff"}', 422, "invalid_string"),
    ("lone_surrogate_in_args", "/v1/jobs", contacts_job('{"properties": ["a\\ud800"]}'), 422,
     "invalid_string"),
    ("lone_surrogate_in_a_key", "/v1/jobs", graphql_job('{"\\udc00": 1}'), 422,
     "invalid_string"),
    ("lone_surrogate_account_name", "/v1/accounts", account_body(name='"\\udfff"'), 422,
     "invalid_string"),
    ("lone_surrogate_bearer_token", "/v1/accounts", account_body(token='"tok\\udfff"'), 422,
     "invalid_string"),
    ("surrogate_pair_is_fine", "/v1/jobs", contacts_job('{"properties": ["\\ud83d\\ude00"]}'),
     404, "account_not_found"),
    ("surrogate_as_raw_bytes", "/v1/jobs", b'{"tool": "\xed\xbf\xbf"}', 400, "malformed_json"),
    # numbers no double holds
    ("max_pages_1e400", "/v1/jobs", contacts_job(max_pages="1e400"), 422,
     "invalid_number"),
    ("limit_10_pow_400", "/v1/jobs", contacts_job(f'{{"limit": 1{"0" * 400}}}'), 422,
     "invalid_number"),
    ("variables_10_pow_400", "/v1/jobs", graphql_job(f'{{"n": 1{"0" * 400}}}'), 422,
     "invalid_number"),
    ("variables_minus_1e400", "/v1/jobs", graphql_job('{"n": -1e400}'), 422, "invalid_number"),
    ("a_5000_digit_integer", "/v1/jobs", contacts_job(f'{{"limit": 1{"0" * 5000}}}'), 422,
     "invalid_number"),
    ("nan_literal", "/v1/jobs", contacts_job('{"limit": NaN}'), 400, "malformed_json"),
    # strict arguments: no bool or numeric string for an int
    ("limit_as_a_numeric_string", "/v1/jobs", contacts_job('{"limit": "10"}'), 422,
     "invalid_args"),
    ("limit_as_a_bool", "/v1/jobs", contacts_job('{"limit": true}'), 422, "invalid_args"),
    ("limit_as_a_float", "/v1/jobs", contacts_job('{"limit": 10.0}'), 422, "invalid_args"),
    ("max_pages_as_a_bool", "/v1/jobs", contacts_job(max_pages="true"), 422,
     "invalid_request"),
    ("max_bytes_as_a_numeric_string", "/v1/jobs", contacts_job(max_bytes='"8192"'), 422,
     "invalid_request"),
    ("strict_but_right_is_accepted", "/v1/jobs",
     contacts_job('{"limit": 10, "properties": ["email"]}', max_pages="2"), 404,
     "account_not_found"),
    ("iso_dates_still_parse", "/v1/jobs",
     b'{"tool": "shopify.orders.list", "account_id": "acc_missing", '
     b'"args": {"created_at_min": "2026-01-01T00:00:00Z", "limit": 5}}', 404,
     "account_not_found"),
    # write tools: what reaches a vendor's path or body is checked before any job exists
    ("write_lone_surrogate_id", "/v1/jobs", write_job(UPSERT, '{"records": [{"id": "\\udfff"}]}'),
     422, "invalid_string"),
    ("write_property_10_pow_400", "/v1/jobs",
     write_job(UPSERT, f'{{"records": [{{"id": "a@b.co", "properties": {{"n": 1{"0" * 400}}}}}]}}'),
     422, "invalid_number"),
    ("write_nested_property", "/v1/jobs",
     write_job(UPSERT, '{"records": [{"id": "a@b.co", "properties": {"n": {"x": [1]}}}]}'), 422,
     "invalid_args"),
    ("write_no_records", "/v1/jobs", write_job(UPSERT, '{"records": []}'), 422, "invalid_args"),
    ("write_id_with_a_path", "/v1/jobs",
     write_job("hubspot.contacts.update", '{"id": "1/../../2", "properties": {"a": "b"}}'), 422,
     "invalid_args"),
    ("write_github_owner_dotdot", "/v1/jobs",
     write_job("github.issues.create", '{"owner": "..", "repo": "x", "title": "t"}'), 422,
     "invalid_args"),
    ("write_github_repo_dotdot", "/v1/jobs",
     write_job("github.issues.create", '{"owner": "acme", "repo": "..", "title": "t"}'), 422,
     "invalid_args"),
    ("write_jira_key_with_a_path", "/v1/jobs",
     write_job("jira.issues.comment", '{"issue_key": "ENG-1/../../x", "body": "b"}'), 422,
     "invalid_args"),
    ("write_sobject_with_a_path", "/v1/jobs",
     write_job("salesforce.records.upsert",
               '{"sobject": "Contact/../x", "external_id_field": "E__c", '
               '"records": [{"E__c": 1}]}'),
     422, "invalid_args"),
    ("write_zendesk_id_as_a_string", "/v1/jobs",
     write_job("zendesk.tickets.comment", '{"id": "7/../8", "body": "b"}'), 422, "invalid_args"),
    ("write_right_is_accepted", "/v1/jobs",
     write_job(UPSERT, '{"records": [{"id": "a@b.co", "properties": {"firstname": "A"}}]}'), 404,
     "account_not_found"),
    ("routed_write_right_is_accepted", "/v1/jobs",
     write_job("crm.contacts.upsert", '{"records": [{"email": "a@b.co"}]}'), 404,
     "account_not_found"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "status", "code"), [r[1:] for r in REST],
                         ids=[r[0] for r in REST])  # fmt: skip
def test_hostile_bodies_get_a_4xx_with_a_code(api, path, body, status, code):
    assert_code(post_raw(api, path, body), status, code)


def test_the_depth_refusal_says_what_to_fix(api):
    resp = post_raw(api, "/v1/jobs", graphql_job(variables(300)))
    body = assert_code(resp, 422, "json_too_deep")
    assert "at most 32" in body["message"] and "flatten" in body["message"]


def test_the_string_refusal_names_where_the_string_is(api):
    resp = post_raw(api, "/v1/jobs", contacts_job('{"properties": ["ok", "a\\ud800"]}'))
    body = assert_code(resp, 422, "invalid_string")
    assert body["message"].startswith("args.properties[1]: "), body


def test_a_chunked_deep_body_is_refused_too(api):
    body = graphql_job(variables(100))
    chunks = iter([body[:50], body[50:]])
    resp = api.s.post(api.url + "/v1/jobs", data=chunks, timeout=30,
                      headers={"Content-Type": "application/json"})  # fmt: skip
    assert_code(resp, 422, "json_too_deep")


def test_a_deep_body_under_another_content_type_is_left_to_its_route(api):
    resp = api.s.post(api.url + "/v1/jobs", data=nested(5000).encode(), timeout=30,
                      headers={"Content-Type": "text/plain"})  # fmt: skip
    assert 400 <= resp.status_code < 500, resp.text[:300]
    assert isinstance(resp.json()["error"], str)


# ---- URLs --------------------------------------------------------------------------------

URLS = [
    ("/v1/jobs/%ED%BF%BF", 404, "job_not_found"),
    ("/v1/jobs/%FF%FE", 404, "job_not_found"),
    ("/v1/jobs/%00", 404, "job_not_found"),
    ("/v1/jobs/" + "x" * 5000, 404, "job_not_found"),
    ("/v1/jobs/x?wait=nan", 422, "invalid_request"),
    ("/v1/jobs/x?wait=inf", 422, "invalid_request"),
    ("/v1/jobs/x?wait=1e400", 422, "invalid_request"),
    ("/v1/jobs/x/result?block=1e400", 422, "invalid_request"),
    ("/v1/jobs?limit=" + "9" * 400, 422, "invalid_request"),
    ("/v1/jobs?limit=%ED%BF%BF", 422, "invalid_request"),
    ("/v1/jobs?state=%00", 422, "invalid_request"),
    ("/v1/tools?format=%FF", 422, "invalid_request"),
    ("/v1/accounts/%ED%A0%80/vendor-events", 404, "account_not_found"),
    ("/v1/%2e%2e/%2e%2e/etc/passwd", 404, "not_found"),
]


@pytest.mark.parametrize(("path", "status", "code"), URLS, ids=[u[0][:40] for u in URLS])
def test_odd_urls_get_a_4xx_with_a_code(api, path, status, code):
    assert_code(api.s.get(api.url + path, timeout=30), status, code)


# ---- MCP ---------------------------------------------------------------------------------


def mcp_call(arguments: str, name: str = "shopify_graphql_query") -> bytes:
    """A JSON-RPC `tools/call` (id 7) with the raw JSON text of its arguments."""
    doc = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
           "params": {"name": name, "arguments": "<A>"}}  # fmt: skip
    return splice(doc, A=arguments)


def rpc(api: Any, body: bytes) -> tuple[requests.Response, dict[str, Any]]:
    """POST one JSON-RPC message to /mcp; the reply (a JSON body, or the SSE stream's)."""
    resp = api.s.post(api.url + "/mcp", data=body, headers=MCP_HEADERS, timeout=30)
    assert resp.status_code < 500, (resp.status_code, resp.text[:500])
    if resp.headers["content-type"].startswith("text/event-stream"):
        data = [line[5:] for line in resp.text.splitlines() if line.startswith("data:")]
        replies = [json.loads(d) for d in data if d.strip()]
        return resp, next(r for r in replies if "result" in r or "error" in r)
    return resp, resp.json()


def graphql_arguments(variables: str) -> str:
    args = {"query": GRAPHQL, "connection": "customers", "variables": "<V>"}
    return splice({"account_id": "acc_missing", "args": args}, V=variables).decode()


MCP_REFUSED = [
    # the message, params, arguments, args and variables are five levels
    ("variables_300_deep", mcp_call(graphql_arguments(f'{{"v": {nested(295)}}}')), 422,
     "json_too_deep"),
    ("lone_surrogate", mcp_call('{"account_id": "\\udfff"}'), 422, "invalid_string"),
    ("number_1e400", mcp_call('{"account_id": "a", "max_pages": 1e400}'), 422,
     "invalid_number"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "code"), [r[1:] for r in MCP_REFUSED],
                         ids=[r[0] for r in MCP_REFUSED])  # fmt: skip
def test_hostile_mcp_bodies_get_a_jsonrpc_error_with_a_code(api, body, status, code):
    resp, reply = rpc(api, body)
    assert resp.status_code == status, (resp.status_code, reply)
    assert reply["jsonrpc"] == "2.0" and reply["id"] == 7, reply
    assert reply["error"]["code"] == -32700, reply  # PARSE_ERROR, as the SDK's own refusals
    assert reply["error"]["data"]["error"] == code, reply
    assert reply["error"]["message"] == reply["error"]["data"]["message"], reply


def test_malformed_mcp_json_is_a_parse_error(api):
    resp, reply = rpc(api, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert resp.status_code == 400, reply
    assert reply["id"] is None and reply["error"]["code"] == -32700, reply
    assert reply["error"]["data"]["error"] == "malformed_json", reply


MCP_TOOL_ERRORS = [
    ("limit_as_a_numeric_string", '{"account_id": "acc_missing", "args": {"limit": "10"}}'),
    ("limit_as_a_bool", '{"account_id": "acc_missing", "args": {"limit": true}}'),
    ("max_pages_as_a_bool", '{"account_id": "acc_missing", "max_pages": true}'),
    ("max_bytes_as_a_numeric_string", '{"account_id": "acc_missing", "max_bytes": "8192"}'),
]


@pytest.mark.parametrize("arguments", [r[1] for r in MCP_TOOL_ERRORS],
                         ids=[r[0] for r in MCP_TOOL_ERRORS])  # fmt: skip
def test_lax_mcp_arguments_are_a_tool_error(api, arguments):
    _, reply = rpc(api, mcp_call(arguments, name="hubspot_contacts_list"))
    result = reply["result"]
    assert result["isError"] is True, result
    assert result["structuredContent"]["error"] == "invalid_arguments", result


def test_strict_but_right_mcp_arguments_reach_the_account_check(api):
    arguments = '{"account_id": "acc_missing", "args": {"limit": 10}, "max_pages": 2}'
    _, reply = rpc(api, mcp_call(arguments, name="hubspot_contacts_list"))
    assert reply["result"]["structuredContent"]["error"] == "account_not_found", reply


# ---- inbound vendor webhooks -------------------------------------------------------------


@pytest.fixture
def hubspot_hook(api, fresh_sandbox) -> str:
    """An account of the tenant with SECRET as its HubSpot webhook secret: its webhook path."""
    account = api.account(fresh_sandbox, "hubspot")
    resp = api.s.put(f"{api.url}/v1/accounts/{account}/vendor-webhook",
                     json={"secret": SECRET}, timeout=10)  # fmt: skip
    assert resp.status_code == 200, resp.text
    return f"/v1/vendor-webhooks/hubspot/{account}"


def hubspot_headers(url: str, body: bytes, stamp: str | None = None) -> dict[str, str]:
    stamp = stamp or str(int(time.time() * 1000))
    mac = hmac.new(SECRET.encode(), b"POST" + url.encode() + body + stamp.encode(), hashlib.sha256)
    return {"X-HubSpot-Signature-v3": base64.b64encode(mac.digest()).decode(),
            "X-HubSpot-Request-Timestamp": stamp, "Content-Type": "application/json"}  # fmt: skip


@pytest.mark.parametrize("stamp", ["9" * 401, "1" * 5000, "+1700000000000", "1_700_000_000_000",
                                   "\uff11\uff17\uff10\uff10", "17 00", "-1", "1e12"],
                         ids=["401_digits", "5000_digits", "plus_sign", "underscores",
                              "fullwidth_digits", "spaces", "negative", "exponent"])  # fmt: skip
def test_an_absurd_hubspot_timestamp_is_an_invalid_signature(api, hubspot_hook, stamp):
    body = b'[{"portalId": 1, "objectId": 5, "subscriptionType": "contact.creation", ' \
           b'"eventId": 1}]'  # fmt: skip
    headers = hubspot_headers(api.url + hubspot_hook, body, "1700000000000")
    headers["X-HubSpot-Request-Timestamp"] = stamp
    resp = requests.post(api.url + hubspot_hook, data=body, timeout=10,
                         headers={k: v.encode() for k, v in headers.items()})  # fmt: skip
    assert_code(resp, 401, "invalid_signature")


def _event(object_id: str) -> bytes:
    """One HubSpot event (a fresh eventId) whose objectId is the raw JSON text given."""
    event = {"portalId": 1, "objectId": "<ID>", "subscriptionType": "contact.creation",
             "eventId": time.time_ns()}  # fmt: skip
    return splice([event], ID=object_id)


@pytest.mark.parametrize(("object_id", "status", "code"), [
    (nested(300), 422, "json_too_deep"),  # at the door, before the signature is checked
    ('{"a": {"b": {"c": [1, 2]}}}', 422, "invalid_payload"),  # signed, but not an id
    ("[7]", 422, "invalid_payload"),
], ids=["300_deep", "an_object", "an_array"])  # fmt: skip
def test_a_signed_delivery_whose_id_is_a_structure_is_refused(
    api, hubspot_hook, object_id, status, code
):
    body = _event(object_id)
    resp = requests.post(api.url + hubspot_hook, data=body, timeout=10,
                         headers=hubspot_headers(api.url + hubspot_hook, body))  # fmt: skip
    assert_code(resp, status, code)


def test_a_signed_delivery_with_a_scalar_id_is_still_accepted(api, hubspot_hook):
    body = _event("5")
    resp = requests.post(api.url + hubspot_hook, data=body, timeout=10,
                         headers=hubspot_headers(api.url + hubspot_hook, body))  # fmt: skip
    assert resp.status_code == 200, resp.text
    assert resp.json()["accepted"] == 1
