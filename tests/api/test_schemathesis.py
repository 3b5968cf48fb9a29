"""Property-based run of every route in /openapi.json against the real server: never a 5xx.

Schemathesis 4.x generates positive and negative cases from the app's OpenAPI document (the
same one the server serves at /openapi.json, checked below) and sends them to the real
uvicorn server with the tenant's bearer key; only `not_a_server_error` is checked, plus the
`{"error", "message"}` shape of every 4xx. To reach past
the first validation layer, every other `POST /v1/jobs` case is pointed at a real tool and
account of the tenant, and every other `{job_id}` / `{account_id}` at a real object.

Hostile values (`_harden`): every third JSON body carries, somewhere the hypothesis-made case
has a field, one value from `HOSTILE` (deep nesting, a lone surrogate, a number no double
holds) and must get that value's code; a `POST /v1/jobs` aimed at a real tool may instead carry
a bool or numeric string in an integer field, which must be a 422 (arguments are strict); an
inbound HubSpot delivery aimed at the real account carries an absurd timestamp, which must be a
401 `invalid_signature`.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET

EXAMPLES_PER_OPERATION = 60  # 8 operations: ~700 requests (with method probes), ~30 s


@pytest.fixture(scope="module")
def st_tenant(api_url: str) -> dict[str, str]:
    from app.store.tenants import create_tenant

    return create_tenant("schemathesis")


@pytest.fixture(scope="module")
def st_objects(api_url: str, st_tenant: dict[str, str], sandbox: Any) -> Iterator[dict[str, str]]:
    """A real account (small vendor data set) and a finished job of the fuzzing tenant."""
    sandbox.reset()
    sandbox.config(hubspot_contacts=30)
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {st_tenant['api_key']}"
    tokens = sandbox.mint()
    resp = s.post(f"{api_url}/v1/accounts", timeout=10, json={
        "vendor": "hubspot", "name": "fuzz", "base_url": sandbox.hubspot(),
        "credentials": {"type": "bearer", "token": tokens["access_token"]},
    })
    assert resp.status_code == 201, resp.text
    account = resp.json()["account_id"]
    resp = s.post(f"{api_url}/v1/jobs", timeout=10, json={
        "tool": "hubspot.contacts.list", "account_id": account, "args": {"limit": 10}})
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]
    # POST .../credentials replaces an account's credentials: fuzz it on a spare account, or
    # the fuzzed jobs above would run (and park) on whatever credentials it generated
    resp = s.post(f"{api_url}/v1/accounts", timeout=10, json={
        "vendor": "hubspot", "name": "fuzz-credentials", "base_url": sandbox.hubspot(),
        "credentials": {"type": "bearer", "token": tokens["access_token"]},
    })
    assert resp.status_code == 201, resp.text
    spare = resp.json()["account_id"]
    # a webhook secret, so a steered inbound delivery reaches the signature check
    resp = s.put(f"{api_url}/v1/accounts/{account}/vendor-webhook", timeout=10,
                 json={"secret": "fuzz-secret-0123456789"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 30
    while s.get(f"{api_url}/v1/jobs/{job_id}", timeout=10).json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "setup job did not finish"
        time.sleep(0.1)
    yield {"account_id": account, "job_id": job_id, "spare_account_id": spare}
    sandbox.reset()


def _app_schema() -> dict[str, Any]:
    from app.api.main import create_app  # env is set by tests/conftest.py before collection

    return create_app().openapi()


# Loaded at collection time (the server is not up yet) from the app's own schema; the test
# below checks that the server serves exactly this document at /openapi.json. (The lazy
# `schemathesis.pytest.from_fixture` loader does not work with pytest 9.2: it writes
# `request.node._nodeid`, which pytest 9.2 no longer has.)
schema = schemathesis.openapi.from_dict(_app_schema())
_flip = itertools.count()
_hostile = itertools.count()
FUZZED_JOBS: list[str] = []
SENTINEL = "<hostile>"
# raw JSON text -> the code it gets wherever it is in a JSON body (checked before anything else)
HOSTILE = {
    "[" * 300 + "]" * 300: "json_too_deep",
    '{"a": ' * 40 + "1" + "}" * 40: "json_too_deep",
    '"x\\udfff"': "invalid_string",
    '{"\\ud800": 1}': "invalid_string",
    "1" + "0" * 400: "invalid_number",
    "-1e400": "invalid_number",
}
LAX = ["true", '"10"', "10.0"]  # for an integer: never coerced
INT_FIELDS = [("args", "limit"), ("max_pages",), ("max_bytes",)]
STAMPS = ["9" * 401, "1" * 5000, "+1700000000000", "1_700_000_000_000", "-5", "0", "1e12"]


def _steer(case: Any, objects: dict[str, str]) -> None:
    """Half the time, aim the case at real objects so deeper code paths run."""
    if next(_flip) % 2:
        return
    params = case.path_parameters or {}
    if "job_id" in params:
        params["job_id"] = objects["job_id"]
    if "vendor" in params:  # past the vendor check, into signature verification
        params["vendor"] = "hubspot"
    if "account_id" in params:
        spare = case.path.endswith("/credentials")
        params["account_id"] = objects["spare_account_id" if spare else "account_id"]
    if case.method.upper() == "POST" and case.path == "/v1/jobs" and isinstance(case.body, dict):
        case.body["tool"] = "hubspot.contacts.list"
        case.body["account_id"] = objects["account_id"]
        case.body.pop("continuation", None)
        case.body.pop("callback_url", None)  # random hostnames would mean DNS lookups
        args = case.body.get("args")
        if not isinstance(args, dict) or set(args) - {"limit", "properties"}:
            case.body["args"] = {"limit": 10}
    if case.method.upper() == "POST" and case.path == "/v1/accounts" and isinstance(case.body,
                                                                                  dict):
        case.body["vendor"] = "hubspot"


def _splice(doc: dict[str, Any], path: tuple[str, ...], raw: str) -> bytes:
    """`doc` as JSON bytes with the raw JSON text `raw` at `path` (objects made as needed)."""
    node = doc
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = SENTINEL
    return json.dumps(doc).replace(json.dumps(SENTINEL), raw).encode()


def _somewhere(doc: Any, n: int) -> tuple[str, ...]:
    """A path into `doc` picked by `n`: into a nested object while there is one."""
    path: tuple[str, ...] = ()
    node = doc
    while isinstance(node, dict) and node:
        key = sorted(node)[n % len(node)]
        path += (key,)
        node = node[key]
        n //= 3
    return path or ("hostile",)


def _harden(case: Any) -> tuple[int, str | None] | None:
    """Put one hostile value into the case: (expected status, expected code or None)."""
    n = next(_hostile)
    params = case.path_parameters or {}
    if case.method.upper() != str(case.operation.method).upper():
        return None  # a method probe: its body and headers are not what is sent
    if case.path.startswith("/v1/vendor-webhooks/") and params.get("vendor") == "hubspot":
        case.headers = {**(case.headers or {}), "X-HubSpot-Signature-v3": "bm90IGl0",
                        "X-HubSpot-Request-Timestamp": STAMPS[n % len(STAMPS)]}  # fmt: skip
        return 401, "invalid_signature"
    sent_as = {k.lower(): v for k, v in (case.headers or {}).items()}.get("content-type")
    if n % 3 or case.body is NOT_SET or (sent_as or case.media_type) != "application/json":
        return None  # a body not sent as JSON is its route's to refuse
    if not isinstance(case.body, dict):
        raw = list(HOSTILE)[n // 3 % len(HOSTILE)]
        case.body = raw.encode()
        return 422, HOSTILE[raw]
    steered = case.path == "/v1/jobs" and case.body.get("tool") == "hubspot.contacts.list"
    if steered and n // 3 % 2:
        field = INT_FIELDS[n // 6 % len(INT_FIELDS)]
        case.body = _splice(case.body, field, LAX[n // 18 % len(LAX)])
        return 422, None
    raw = list(HOSTILE)[n // 6 % len(HOSTILE)]
    case.body = _splice(case.body, _somewhere(case.body, n // 3), raw)
    return 422, HOSTILE[raw]


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, st_tenant, st_objects, api_url):
    _steer(case, st_objects)
    expected = _harden(case)
    response = case.call(base_url=api_url, timeout=15,
                         headers={"Authorization": f"Bearer {st_tenant['api_key']}"})
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, (response.status_code, response.text[:500])
    if expected is not None:
        status, code = expected
        assert response.status_code == status, (expected, case.body, response.text[:500])
        assert code is None or response.json()["error"] == code, (code, response.text[:500])
    if case.path == "/v1/jobs" and response.status_code == 202:
        FUZZED_JOBS.append(response.json()["job_id"])
    # the proxy passes a vendor's own 4xx body through, marked by x-toolqueue-upstream
    ours = "x-toolqueue-upstream" not in response.headers
    if response.status_code >= 400 and case.path != "/healthz" and ours:
        body = response.json()
        assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body


def test_served_schema_is_the_fuzzed_one(api_url):
    resp = requests.get(f"{api_url}/openapi.json", timeout=10)
    assert resp.status_code == 200
    assert resp.json() == schema.raw_schema
    # 16 + the webhook routes (redeliver, dead letters and replay, secret rotation) + vendor
    # webhooks (two inbound, the account's setup and its event log) + a job's history pages
    # + pipelines (create, list, view, cancel, deliveries, rejected, retry-rejected, rerun,
    # preview, approve, reject)
    # + connect (OAuth app put/get/delete, session create and status; not the HTML pages)
    assert len(list(schema.get_all_operations())) == 55


def test_fuzzed_jobs_end_without_internal_errors(api_url, st_tenant, st_objects):
    """Jobs the fuzzer managed to enqueue run to an end, and no step crashed on their input."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {st_tenant['api_key']}"
    assert FUZZED_JOBS, "the fuzzer never got a job accepted: steering is broken"
    deadline = time.monotonic() + 60
    for job_id in FUZZED_JOBS:
        while True:
            job = s.get(f"{api_url}/v1/jobs/{job_id}", timeout=10).json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.1)
        assert (job.get("error") or {}).get("code") != "internal_error", job
        resp = s.get(f"{api_url}/v1/jobs/{job_id}/result", timeout=10)
        assert resp.status_code == 200, resp.text
