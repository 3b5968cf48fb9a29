"""Shopify customerUpdate on the real stack: an update, userErrors surfaced as the record's
rejection, and an update whose answer is lost after Shopify committed it (resent: absolute)."""

from __future__ import annotations

from typing import Any

import requests

from sandbox.shopify import CUSTOMER_BASE

TOOL = "shopify.customers.update"


def gid(i: int) -> str:
    return f"gid://shopify/Customer/{CUSTOMER_BASE + i}"


def per_object(sandbox: Any) -> dict[str, Any]:
    resp = requests.get(f"{sandbox.url}/shopify/_sandbox/effects", timeout=5)
    return dict(resp.json()["per_object"])


def shop(api: Any, sandbox: Any) -> str:
    sandbox.config(volumes={"shopify.customers": 20})
    return str(api.account(sandbox, "shopify"))


def test_update_sets_the_given_fields(api: Any, fresh_sandbox: Any) -> None:
    account = shop(api, fresh_sandbox)
    args = {
        "id": str(CUSTOMER_BASE + 3),
        "email": "ada@example.com",
        "first_name": "Ada",
        "tags": ["vip"],
    }
    job = api.call(TOOL, account_id=account, args=args)
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert api.records(job["job_id"]) == [{"index": 0, "status": "updated", "id": gid(3)}]
    (effect,) = requests.get(f"{fresh_sandbox.url}/shopify/_sandbox/effects", timeout=5).json()[
        "effects"
    ]
    assert effect["fields"] == {"email": "ada@example.com", "firstName": "Ada", "tags": ["vip"]}


def test_user_errors_reject_the_record_with_field_and_message(api: Any, fresh_sandbox: Any) -> None:
    account = shop(api, fresh_sandbox)
    job = api.call(TOOL, account_id=account, args={"id": gid(4), "email": "not an email"})
    done = api.wait(job["job_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected", done
    (rec,) = api.records(job["job_id"])
    assert rec["status"] == "rejected"
    assert rec["error"] == {
        "code": "USER_ERROR", "message": "email: Email is invalid", "field": ["email"],
    }  # fmt: skip
    missing = api.call(TOOL, account_id=account, args={"id": gid(999), "note": "x"})
    assert api.wait(missing["job_id"])["status"] == "failed"
    assert api.records(missing["job_id"])[0]["error"]["field"] == ["id"]
    assert per_object(fresh_sandbox) == {}


def test_update_answer_lost_after_commit_is_resent_once(api: Any, fresh_sandbox: Any) -> None:
    account = shop(api, fresh_sandbox)
    fresh_sandbox.config(drop_after_commit_next=1)
    job = api.call(TOOL, account_id=account, args={"id": gid(5), "last_name": "Lovelace"})
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert api.records(job["job_id"]) == [{"index": 0, "status": "updated", "id": gid(5)}]
    assert per_object(fresh_sandbox) == {gid(5): {"create": 0, "update": 1, "noop": 1}}
    assert api.result(job["job_id"])["writes"]["reconciled"] == 1
