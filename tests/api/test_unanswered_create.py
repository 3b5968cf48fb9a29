"""A create Redis ran but never answered (it stopped just after): the one enqueue whose 503
cannot promise that nothing was created. The API's Redis goes through a proxy that forwards
job_create.lua and then loses every answer, so this happens on every run, not at a SIGSTOP's
random instant (test_store_outage.py). The 503 names the job; once the store answers, the
job is found, the same request again replays to it, and it runs once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from redisproxy import LosingProxy
from support import free_port, start_api, wait_until

from app.kernel import keys
from app.kernel.lua import source
from app.kernel.redis import get_redis

CREATE_SHA = hashlib.sha1(source("job_create").encode()).hexdigest().encode()


@pytest.fixture(scope="module")
def proxied(redis_server: Any) -> Iterator[tuple[LosingProxy, str]]:
    """An API process of its own whose Redis is behind the proxy."""
    proxy = LosingProxy(redis_server.port)
    proc, url = start_api("api-proxied", str(free_port()), {"TOOLQUEUE_REDIS_URL": proxy.url})
    yield proxy, url
    proc.stop()


def test_an_unanswered_create_answers_503_naming_the_job_that_then_runs_once(
    api, proxied, live_workers, fresh_sandbox
):
    proxy, url = proxied
    account = api.account(fresh_sandbox)
    other = type(api)(url, api.tenant)
    body = {"tool": "hubspot.contacts.list", "account_id": account, "args": {"limit": 5},
            "max_pages": 1, "idempotency_key": "unanswered-1"}  # fmt: skip
    get_redis().script_load(source("job_create"))  # so the one EVALSHA runs it (no NOSCRIPT)
    proxy.arm(CREATE_SHA)
    try:
        lost = other.post("/v1/jobs", body)
    finally:
        proxy.release()
    assert proxy.passed == 1  # Redis received the create once, and ran it
    assert lost.status_code == 503, lost.text
    assert lost.headers["Retry-After"] == "2"
    answer = lost.json()
    assert answer["error"] == "store_unavailable"
    job_id = answer["job_id"]
    assert f"GET /v1/jobs/{job_id}" in answer["message"]
    assert get_redis().exists(keys.job(job_id))  # it was created, as the 503 warned

    wait_until(lambda: other.get("/healthz", timeout=5).ok, 30, 0.2)
    again = other.post("/v1/jobs", body)
    assert again.status_code == 202, again.text
    assert again.json()["job_id"] == job_id and again.json()["idempotent_replay"] is True
    # nobody sent its first step (the API never heard back): the sweep does, and it runs once
    assert api.wait(job_id, 60)["status"] == "succeeded"
    indexed = get_redis().zrange(keys.tenant_jobs(api.tenant["tenant_id"]), 0, -1)
    assert indexed.count(job_id) == 1
    assert api.get(f"/v1/jobs/{job_id}").json()["progress"]["pages"] == 1
