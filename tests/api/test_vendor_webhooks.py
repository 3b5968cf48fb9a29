"""Inbound vendor webhooks over the real API: each vendor's signature scheme on the raw body,
refusals that change nothing, de-duplication, normalised events, and the completion signal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import pytest
import requests

SECRET = "shpss_" + "k" * 32


def new_shop() -> str:
    return f"acme-{uuid.uuid4().hex[:8]}.myshopify.com"  # refs are global: one per test


def b64_hmac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def shopify(body: bytes, secret: str = SECRET, shop: str = "", **headers: str) -> dict[str, str]:
    return {
        "X-Shopify-Topic": "bulk_operations/finish",
        "X-Shopify-Hmac-Sha256": b64_hmac(secret, body),
        "X-Shopify-Shop-Domain": shop or "unregistered.myshopify.com",
        "X-Shopify-Event-Id": str(uuid.uuid4()),
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "Content-Type": "application/json",
        **headers,
    }


def github(body: bytes, secret: str = SECRET, event: str = "issues") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }


def hubspot(url: str, body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    stamp = str(int((time.time() if at is None else at) * 1000))
    return {
        "X-HubSpot-Signature-v3": b64_hmac(secret, b"POST" + url.encode() + body + stamp.encode()),
        "X-HubSpot-Request-Timestamp": stamp,
        "Content-Type": "application/json",
    }


BULK_DONE = json.dumps(
    {
        "admin_graphql_api_id": "gid://shopify/BulkOperation/77",
        "completed_at": "2026-11-28T04:00:00-05:00",
        "created_at": "2026-11-28T03:59:00-05:00",
        "error_code": None,
        "status": "completed",
        "type": "query",
    }
).encode()


@pytest.fixture
def hooked(api: Any, fresh_sandbox: Any) -> Any:
    """`hooked(vendor, ref=None)`: an account of `vendor` with SECRET registered; its id."""

    def make(vendor: str, ref: str | None = None, **cfg: Any) -> str:
        account = api.account(fresh_sandbox, vendor)
        resp = api.s.put(
            f"{api.url}/v1/accounts/{account}/vendor-webhook",
            json={"secret": SECRET, **({"ref": ref} if ref else {}), **cfg},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        view = resp.json()
        assert view["vendor_webhook"]["url"] == f"/v1/vendor-webhooks/{vendor}/{account}"
        assert SECRET not in resp.text  # secrets go in, never come out
        return account

    return make


def events(api: Any, account: str) -> list[dict[str, Any]]:
    resp = api.get(f"/v1/accounts/{account}/vendor-events")
    assert resp.status_code == 200, resp.text
    return resp.json()["events"]


def post(api: Any, path: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(api.url + path, data=body, headers=headers, timeout=10)


def test_shopify_delivery_by_shop_domain_is_verified_and_normalised(api, hooked):
    shop = new_shop()
    account = hooked("shopify", ref=shop)
    resp = post(api, "/v1/vendor-webhooks/shopify", BULK_DONE, shopify(BULK_DONE, shop=shop))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 1, "duplicates": 0, "resumed": 0}
    [event] = events(api, account)
    assert event["type"] == "export.completed"
    assert event["ref"] == "gid://shopify/BulkOperation/77"
    assert event["data"]["status"] == "completed"


def test_failed_bulk_operation_normalises_to_export_failed(api, hooked):
    account = hooked("shopify")
    failed = {"admin_graphql_api_id": "gid://shopify/BulkOperation/9", "status": "failed",
              "error_code": "internal_server_error"}  # fmt: skip
    body = json.dumps(failed).encode()
    resp = post(api, f"/v1/vendor-webhooks/shopify/{account}", body, shopify(body))
    assert resp.status_code == 200, resp.text
    [event] = events(api, account)
    assert event["type"] == "export.failed"
    assert event["data"]["error_code"] == "internal_server_error"


@pytest.mark.parametrize(
    "tamper",
    ["forged", "altered_body", "wrong_secret", "missing", "not_base64"],
)
def test_shopify_refusals_change_nothing(api, hooked, tamper):
    account = hooked("shopify")
    headers = shopify(BULK_DONE)
    body = BULK_DONE
    if tamper == "forged":
        headers["X-Shopify-Hmac-Sha256"] = base64.b64encode(b"\0" * 32).decode()
    elif tamper == "altered_body":
        body = BULK_DONE.replace(b'"completed"', b'"failed"', 1)
    elif tamper == "wrong_secret":
        headers = shopify(BULK_DONE, secret="shpss_" + "x" * 32)
    elif tamper == "missing":
        del headers["X-Shopify-Hmac-Sha256"]
    else:
        headers["X-Shopify-Hmac-Sha256"] = "%%%not-base64%%%"
    resp = post(api, f"/v1/vendor-webhooks/shopify/{account}", body, headers)
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_signature"
    assert "X-Shopify-Hmac-Sha256" in resp.json()["message"]
    assert events(api, account) == []
    # the refused delivery's event id was not burnt: the genuine one is still accepted
    genuine = {**shopify(BULK_DONE), "X-Shopify-Event-Id": headers.get("X-Shopify-Event-Id", "")}
    assert post(api, f"/v1/vendor-webhooks/shopify/{account}", BULK_DONE, genuine).json()[
        "accepted"
    ] == 1


def test_duplicate_delivery_is_acknowledged_but_processed_once(api, hooked):
    account = hooked("shopify")
    headers = shopify(BULK_DONE)
    first = post(api, f"/v1/vendor-webhooks/shopify/{account}", BULK_DONE, headers)
    again = post(api, f"/v1/vendor-webhooks/shopify/{account}", BULK_DONE,
                 {**headers, "X-Shopify-Webhook-Id": str(uuid.uuid4())})  # fmt: skip
    assert first.json()["accepted"] == 1
    assert again.status_code == 200  # a 2xx, or the vendor keeps retrying
    assert again.json() == {"accepted": 0, "duplicates": 1, "resumed": 0}
    assert len(events(api, account)) == 1


def test_github_signature_and_issue_events(api, hooked):
    repo = f"acme/widgets-{uuid.uuid4().hex[:6]}"
    account = hooked("github", ref=repo)
    body = json.dumps({"action": "opened", "issue": {"id": 11, "number": 3},
                       "repository": {"full_name": repo}}).encode()  # fmt: skip
    headers = github(body)
    assert post(api, "/v1/vendor-webhooks/github", body, headers).json()["accepted"] == 1
    altered = body.replace(b"opened", b"deleted")
    refused = post(api, "/v1/vendor-webhooks/github", altered, github(body) | {
        "X-GitHub-Delivery": str(uuid.uuid4())})  # fmt: skip
    assert refused.status_code == 401 and "X-Hub-Signature-256" in refused.json()["message"]
    wrong = post(api, "/v1/vendor-webhooks/github", body, github(body, secret="nope-nope-nope"))
    assert wrong.status_code == 401
    [event] = events(api, account)
    assert event["type"] == "record.created"
    assert event["data"] == {"object": "issue", "id": 11, "number": 3, "action": "opened"}


def test_hubspot_v3_signature_covers_method_url_body_and_timestamp(api, hooked):
    portal = int(uuid.uuid4().int % 10**9)
    account = hooked("hubspot", ref=str(portal))
    path = "/v1/vendor-webhooks/hubspot"
    url = api.url + path
    body = json.dumps([
        {"eventId": 1001, "portalId": portal, "subscriptionType": "contact.creation",
         "objectId": 51, "occurredAt": 1764300000000, "attemptNumber": 0},
        {"eventId": 1002, "portalId": portal, "subscriptionType": "contact.propertyChange",
         "objectId": 51, "propertyName": "email", "propertyValue": "a@b.c"},
    ]).encode()  # fmt: skip
    assert post(api, path, body, hubspot(url, body)).json() == {
        "accepted": 2, "duplicates": 0, "resumed": 0}  # fmt: skip
    log = events(api, account)
    assert [e["type"] for e in log] == ["record.updated", "record.created"]  # newest first
    assert log[0]["data"]["property"] == "email"

    stale = hubspot(url, body, at=time.time() - 301)  # a correctly signed replay, too old
    resp = post(api, path, body, stale)
    assert resp.status_code == 401 and "stale" in resp.json()["message"]
    signed_elsewhere = hubspot(api.url + "/v1/other", body)  # the URI is part of the signature
    assert post(api, path, body, signed_elsewhere).status_code == 401
    assert post(api, path, body, hubspot(url, body, secret="nope-nope-nope")).status_code == 401
    retried = post(api, path, body, hubspot(url, body))  # HubSpot's retry: same eventIds
    assert retried.json() == {"accepted": 0, "duplicates": 2, "resumed": 0}
    assert len(events(api, account)) == 2


def test_unknown_account_or_vendor_is_refused_without_telling_which(api, hooked, anon):
    hooked("shopify", ref=new_shop())
    other_shop = shopify(BULK_DONE, shop=new_shop())
    resp = anon.post(f"{api.url}/v1/vendor-webhooks/shopify", data=BULK_DONE, headers=other_shop)
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_signature"
    resp = anon.post(f"{api.url}/v1/vendor-webhooks/shopify/acc_missing", data=BULK_DONE,
                     headers=shopify(BULK_DONE))  # fmt: skip
    assert resp.status_code == 401
    resp = anon.post(f"{api.url}/v1/vendor-webhooks/jira", data=b"{}", timeout=10)
    assert resp.status_code == 404 and resp.json()["error"] == "vendor_webhooks_unsupported"


def test_signed_but_malformed_payload_is_a_clear_4xx(api, hooked):
    account = hooked("hubspot")
    path = f"/v1/vendor-webhooks/hubspot/{account}"
    body = b'{"not": "a list"}'
    resp = post(api, path, body, hubspot(api.url + path, body))
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_payload"
    assert "JSON array" in resp.json()["message"]


def claim(api: Any, account: str, ref: str | None, secret: str) -> requests.Response:
    body = {"secret": secret, **({"ref": ref} if ref else {})}
    return api.s.put(f"{api.url}/v1/accounts/{account}/vendor-webhook", json=body, timeout=10)


def test_a_ref_another_tenant_claimed_first_is_still_claimable_and_routes_by_secret(
    api, other_api, fresh_sandbox, anon
):
    shop, theirs, mine = new_shop(), "theirs-" + "b" * 24, "mine-" + "a" * 24
    b_account = other_api.account(fresh_sandbox, "shopify")
    assert claim(other_api, b_account, shop, theirs).status_code == 200  # B squats first
    a_account = api.account(fresh_sandbox, "shopify")
    resp = claim(api, a_account, shop, mine)
    assert resp.status_code == 200, resp.text
    assert resp.json()["vendor_webhook"]["ref"] == shop

    by_ref = f"{api.url}/v1/vendor-webhooks/shopify"
    to_a = anon.post(by_ref, data=BULK_DONE, headers=shopify(BULK_DONE, mine, shop), timeout=10)
    assert to_a.status_code == 200 and to_a.json()["accepted"] == 1, to_a.text
    assert len(events(api, a_account)) == 1 and events(other_api, b_account) == []
    to_b = anon.post(by_ref, data=BULK_DONE, headers=shopify(BULK_DONE, theirs, shop), timeout=10)
    assert to_b.status_code == 200 and to_b.json()["accepted"] == 1, to_b.text
    assert len(events(api, a_account)) == 1 and len(events(other_api, b_account)) == 1

    # signed by neither: the usual 401, worded as for a ref nobody claimed
    forged = anon.post(by_ref, data=BULK_DONE, headers=shopify(BULK_DONE, "x" * 30, shop),
                       timeout=10)  # fmt: skip
    unclaimed = anon.post(by_ref, data=BULK_DONE, headers=shopify(BULK_DONE, mine, new_shop()),
                          timeout=10)  # fmt: skip
    assert forged.status_code == unclaimed.status_code == 401
    assert forged.json() == unclaimed.json()
    assert forged.json()["error"] == "invalid_signature"
    assert len(events(api, a_account)) == 1 and len(events(other_api, b_account)) == 1


def test_a_tenant_claims_a_ref_with_one_account(api, fresh_sandbox):
    shop = new_shop()
    first, second = (api.account(fresh_sandbox, "shopify") for _ in range(2))
    assert claim(api, first, shop, SECRET).status_code == 200
    assert claim(api, first, shop, SECRET).status_code == 200  # setting it again is fine
    resp = claim(api, second, shop, SECRET)
    assert resp.status_code == 409 and resp.json()["error"] == "webhook_ref_taken"
    assert first in resp.json()["message"]
    assert f"/v1/vendor-webhooks/shopify/{second}" in resp.json()["message"]


def test_changing_or_removing_a_ref_lets_go_of_the_old_one(api, fresh_sandbox, anon):
    old, new = new_shop(), new_shop()
    account, sibling = (api.account(fresh_sandbox, "shopify") for _ in range(2))
    by_ref = f"{api.url}/v1/vendor-webhooks/shopify"

    def deliver(shop: str) -> int:
        headers = shopify(BULK_DONE, SECRET, shop)
        return anon.post(by_ref, data=BULK_DONE, headers=headers, timeout=10).status_code

    assert claim(api, account, old, SECRET).status_code == 200
    assert deliver(old) == 200
    assert claim(api, account, new, SECRET).status_code == 200
    assert (deliver(old), deliver(new)) == (401, 200)
    assert claim(api, sibling, old, SECRET).status_code == 200  # the tenant's claim is free
    assert claim(api, account, None, SECRET).status_code == 200  # no ref any more
    assert deliver(new) == 401
    assert len(events(api, account)) == 2 and len(events(api, sibling)) == 0


def test_a_ref_routes_to_a_bounded_number_of_accounts(api, fresh_sandbox, r):
    from app.kernel import keys
    from app.services import vendorhooks

    shop = new_shop()
    claims = keys.vendor_ref("shopify", shop)
    r.hset(claims, mapping={f"ten_{i}": f"acc_{i}" for i in range(vendorhooks.MAX_REF_CLAIMS)})
    account = api.account(fresh_sandbox, "shopify")
    resp = claim(api, account, shop, SECRET)
    assert resp.status_code == 409 and resp.json()["error"] == "webhook_ref_full"
    assert f"/v1/vendor-webhooks/shopify/{account}" in resp.json()["message"]
    assert r.hget(claims, api.tenant["tenant_id"]) is None
    r.hdel(claims, "ten_0")
    assert claim(api, account, shop, SECRET).status_code == 200
    assert r.hget(claims, api.tenant["tenant_id"]) == account


def test_another_tenant_cannot_configure_or_read_the_account(api, hooked, other_api):
    account = hooked("shopify")
    resp = other_api.s.put(f"{api.url}/v1/accounts/{account}/vendor-webhook",
                           json={"secret": "attacker-secret"}, timeout=10)  # fmt: skip
    assert resp.status_code == 404
    assert other_api.get(f"/v1/accounts/{account}/vendor-events").status_code == 404
    # the owner's secret still verifies
    ok = post(api, f"/v1/vendor-webhooks/shopify/{account}", BULK_DONE, shopify(BULK_DONE))
    assert ok.status_code == 200


def test_signal_and_wait_meet_in_either_order(r):
    """The registration and the signal each write, then read: whichever comes second resumes,
    and only once."""
    from app.kernel import keys
    from app.work import signals

    acct = f"acc_sig{uuid.uuid4().hex[:6]}"
    # wait first, then the signal: the signal finds the job
    assert signals.await_signal(acct, "ref-1", "job_a", 60) is False
    assert signals.signal(acct, "ref-1", "test") == "job_a"
    assert signals.signal(acct, "ref-1", "test") is None  # a duplicate finds nobody waiting
    # signal first: the wait finds it (and consumes it)
    assert signals.signal(acct, "ref-2", "test") is None
    assert signals.await_signal(acct, "ref-2", "job_b", 60) is True
    assert signals.await_signal(acct, "ref-2", "job_b", 60) is False  # consumed: poll again
    assert r.exists(keys.signalled(acct, "ref-2")) == 0
