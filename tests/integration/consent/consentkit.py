"""Shared helpers of the consent tests: tenants under the default policy, their second
(approver) key, and the steps of an approval (a plain module, not a conftest)."""

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
