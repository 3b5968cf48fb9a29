"""Every Redis key has a bounded life: what a job, a webhook, an event or a request leaves
behind expires; only the records of long-lived objects (tenants, API keys, accounts and their
tokens) and a few system-wide structures whose entries come and go with live work stay."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

from app.kernel import keys

# Keys that live as long as what they describe, and why.
PERMANENT = {
    keys.tenant(r"ten_\w+"): "the tenant",
    keys.api_key("[0-9a-f]+"): "an API key of a tenant",
    keys.tenant_keys(r"ten_\w+"): "the tenant's key ids",
    keys.policy("(tenant|account|key)", r"(ten|acc|key)_\w+"): "a tenant's, account's or "
    "key's policy",
    f"{keys.BULK_VTIME}|{keys.BULK_RUNNING}": "the bulk lane's fair share: per tenant, small",
    f"{keys.BULK_READY}|{keys.BULK_OWNER}|{keys.BULK_LEASES}":
        "bulk steps waiting or running (entries leave as the steps run and end)",
    keys.account(r"acc_\w+"): "the account",
    keys.oauth_app(r"ten_\w+", "[a-z]+"): "a tenant's OAuth app for a vendor (connect)",
    keys.token(r"acc_\w+"): "the account's sealed credentials",
    keys.vendor_ref("[a-z]+", ".+"): "accounts a vendor's name claims (left with the ref)",
    keys.METRICS: "the /metrics counters",
    keys.JOBS_BY_STATE: "the gauge of unfinished jobs",
    keys.TOKEN_EXPIRY: "index of refreshable tokens (one entry per account)",
    f"{keys.DUE}|{keys.PENDING}": "pending work (entries leave as the work ends)",
    keys.POKED: "news for running coordinators (entries leave as they run or end)",
    f"{keys.REAUTH_PARKED}|{keys.account_parked('acc_[0-9a-f]+')}":
        "jobs awaiting credentials (expire)",
}


def github_delivery(api: Any, account: str, secret: str, body: bytes) -> None:
    sig = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    resp = api.s.post(f"{api.url}/v1/vendor-webhooks/github/{account}", data=body, timeout=10,
                      headers={"X-Hub-Signature-256": sig, "X-GitHub-Event": "issues",
                               "X-GitHub-Delivery": f"d-{time.time_ns()}",
                               "Content-Type": "application/json"})  # fmt: skip
    assert resp.status_code == 200, resp.text


def test_what_jobs_webhooks_and_events_leave_behind_expires(api, fresh_sandbox, receiver, r):
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 10}, max_pages=2,
                   callback_url=receiver.url, idempotency_key=f"k-{time.time_ns()}")  # fmt: skip
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded" and done.get("continuation")
    follow = api.post("/v1/jobs", {"continuation": done["continuation"]}).json()["job_id"]
    assert api.wait(follow)["status"] == "succeeded"
    receiver.wait(1)
    github = api.account(fresh_sandbox, "github")
    secret = "s3cret-for-key-lives"
    api.s.put(f"{api.url}/v1/accounts/{github}/vendor-webhook", json={"secret": secret},
              timeout=10).raise_for_status()  # fmt: skip
    github_delivery(api, github, secret, json.dumps({"action": "opened"}).encode())
    assert api.get(f"/v1/accounts/{account}").status_code == 200
    time.sleep(1)  # the webhook's last writes

    unbounded = []
    for key in r.scan_iter(f"{keys.P}:*", count=1000):
        if r.ttl(key) == -1 and not any(re.fullmatch(p, key) for p in PERMANENT):
            unbounded.append((key, r.type(key)))
    assert not unbounded, "\n".join(map(str, unbounded))


def test_a_tenants_job_index_expires_and_drops_jobs_that_can_no_longer_exist(
    api, fresh_sandbox, r
):
    """The index lives as long as its newest job can, and each enqueue trims the entries of
    jobs created longer ago than any job lives (before, 2,000 entries outlived their jobs
    until someone listed them)."""
    from app.kernel.settings import get_settings
    from app.work.launch import index_ttl

    index = keys.tenant_jobs(api.tenant["tenant_id"])
    life = index_ttl(get_settings())
    r.zadd(index, {f"gone-{n}": time.time() - life - 60 - n for n in range(2000)})
    account = api.account(fresh_sandbox)
    job_id = api.call(account_id=account, args={"limit": 10}, max_pages=1)["job_id"]
    assert r.zrange(index, 0, -1) == [job_id]
    assert life - 5 <= r.ttl(index) <= life
