"""Property-based run of every route in /openapi.json against the real server: never a 5xx.

Schemathesis 4.x generates positive and negative cases from the app's OpenAPI document (the
same one the server serves at /openapi.json, checked below) and sends them to the real
uvicorn server with the tenant's bearer key; only `not_a_server_error` is checked, plus the
`{"error", "message"}` shape of every 4xx. To reach past
the first validation layer, every other `POST /v1/jobs` case is pointed at a real tool and
account of the tenant, and every other `{job_id}` / `{account_id}` at a real object.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

EXAMPLES_PER_OPERATION = 60  # 8 operations: ~700 requests (with method probes), ~30 s


@pytest.fixture(scope="module")
def st_tenant(api_url: str) -> dict[str, str]:
    from app.tenants import create_tenant

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
FUZZED_JOBS: list[str] = []


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


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case, st_tenant, st_objects, api_url):
    _steer(case, st_objects)
    response = case.call(base_url=api_url, timeout=15,
                         headers={"Authorization": f"Bearer {st_tenant['api_key']}"})
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, (response.status_code, response.text[:500])
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
    # webhooks (two inbound, the account's setup and its event log)
    assert len(list(schema.get_all_operations())) == 24


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
