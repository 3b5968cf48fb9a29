"""Shared helpers of the consent tests (tests/integration/consent, the MCP and CLI ones):
tenants under the default policy, their second (approver) key, and the steps of an approval
(a plain module, not a conftest; this folder is on every test's import path)."""

from __future__ import annotations

from typing import Any

import requests

AWAITING = ("awaiting_approval",)


def consent_tenant(api: Any, name: str = "consent") -> Any:
    """An Api for a fresh tenant under the default policy (destructive: approve)."""
    from app.store.tenants import create_tenant

    return type(api)(api.url, create_tenant(name))


def key(api: Any, **body: Any) -> Any:
    """An Api for a new key of `api`'s tenant (POST /v1/keys), e.g. scopes=["approve"]."""
    resp = api.post("/v1/keys", body)
    assert resp.status_code == 201, resp.text
    made = resp.json()
    return type(api)(api.url, {**api.tenant, "api_key": made["api_key"], "key_id": made["key_id"]})


def seeded_contacts(api: Any, account: str, emails: list[str]) -> list[str]:
    """HubSpot contacts created by a real write job (allowed: upserts need approval only
    when destructive, so this runs under an account policy that allows them)."""
    resp = api.s.put(f"{api.url}/v1/accounts/{account}/policy", json={"destructive": "allow"},
                     timeout=10)  # fmt: skip
    assert resp.status_code == 200, resp.text
    records = [{"id": e, "properties": {"email": e, "firstname": "Ada"}} for e in emails]
    job = api.call("hubspot.contacts.upsert", account_id=account, args={"records": records})
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", done
    api.s.put(f"{api.url}/v1/accounts/{account}/policy", json={}, timeout=10)
    return [r["id"] for r in api.records(job["job_id"])]


def awaiting(api: Any, job_id: str) -> dict[str, Any]:
    return dict(api.wait(job_id, states=AWAITING + ("succeeded", "failed", "cancelled")))


def effects(sandbox: Any, vendor: str) -> dict[str, Any]:
    """The sandbox's ledger of applied writes for `vendor` (reads never count)."""
    return dict(requests.get(f"{sandbox.url}/{vendor}/_sandbox/effects", timeout=5).json())


def hubspot_account(api: Any, sandbox: Any, events_url: str | None = None) -> str:
    """A sandbox HubSpot account of `api`'s tenant, its events going to `events_url`."""
    tokens = sandbox.mint("hubspot")
    creds = {"type": "oauth2", "access_token": tokens["access_token"],
             "refresh_token": tokens["refresh_token"], "expires_in": tokens["expires_in"],
             "client_id": "cid", "client_secret": "csecret"}  # fmt: skip
    body: dict[str, Any] = {"vendor": "hubspot", "name": "h", "credentials": creds,
                            "base_url": f"{sandbox.url}/hubspot"}  # fmt: skip
    if events_url:
        body["events_url"] = events_url
    resp = api.post("/v1/accounts", body)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["account_id"])


def held_update(api: Any, account: str, cid: str, name: str = "Grace", **body: Any) -> str:
    """A HubSpot update (destructive: held under the default policy), awaiting approval."""
    job = api.call("hubspot.contacts.update", account_id=account,
                   args={"id": cid, "properties": {"firstname": name}}, **body)  # fmt: skip
    rested = awaiting(api, job["job_id"])
    assert rested["status"] == "awaiting_approval", rested
    return str(job["job_id"])


def audit_entries(api: Any) -> list[dict[str, Any]]:
    """The tenant's whole audit log, page by page (small pages: the paging is exercised)."""
    out: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"after": after} if after else {})}
        resp = api.get("/v1/audit", params=params)
        assert resp.status_code == 200, resp.text
        page = resp.json()
        out += page["entries"]
        after = page.get("next")
        if not after:
            return out
