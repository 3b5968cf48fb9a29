"""Stripe writes from the declarative spec, on the real stack: create and update customers
(form-encoded, every attempt with the operation's Idempotency-Key), a refusal, and an answer
lost after Stripe committed (the resend replays the first answer: one effect)."""

from __future__ import annotations

from typing import Any

import requests
from ledger import effects

CREATE, UPDATE = "stripe.customers.create", "stripe.customers.update"


def account(api: Any, sandbox: Any) -> str:
    token = sandbox.mint("stripe")["access_token"]
    resp = api.post("/v1/accounts", {"vendor": "stripe", "name": "s",
                                     "base_url": f"{sandbox.url}/stripe",
                                     "credentials": {"type": "bearer", "token": token}})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["account_id"])




def posts(sandbox: Any, path: str) -> list[dict[str, Any]]:
    return [e for e in sandbox.requests("stripe") if e["method"] == "POST" and e["path"] == path]


def run(api: Any, acc: str, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any], list]:
    job = api.call(tool, account_id=acc, args=args)
    return api.wait(job["job_id"]), api.records(job["job_id"])


def test_create_sends_a_form_with_the_operation_key(api: Any, fresh_sandbox: Any) -> None:
    acc = account(api, fresh_sandbox)
    args = {"email": "ada@example.com", "name": "Ada", "metadata": {"crm_id": "42"}}
    done, records = run(api, acc, CREATE, args)
    assert done["status"] == "succeeded", (done["error"], done["history"])
    (rec,) = records
    assert rec["status"] == "created" and rec["id"].startswith("cus_")
    (effect,) = effects(fresh_sandbox, "stripe")["effects"]
    assert effect["object_id"] == rec["id"] and effect["idempotency_key"] == f"{done['job_id']}.0"
    assert effect["fields"] == {"email": "ada@example.com", "name": "Ada",
                                "metadata": {"crm_id": "42"}}


def test_a_refused_create_fails_the_job_with_stripes_reason(api: Any, fresh_sandbox: Any) -> None:
    acc = account(api, fresh_sandbox)
    done, (rec,) = run(api, acc, CREATE, {"email": "not-an-email"})
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected", done
    assert rec["status"] == "rejected" and rec["error"]["code"] == "email_invalid"
    assert "Invalid email address: not-an-email" in rec["error"]["message"]
    assert effects(fresh_sandbox, "stripe")["count"] == 0


def test_a_lost_create_answer_is_replayed_by_key(api: Any, fresh_sandbox: Any) -> None:
    acc = account(api, fresh_sandbox)
    fresh_sandbox.config(drop_after_commit_next=1)
    done, (rec,) = run(api, acc, CREATE, {"email": "lost@example.com", "name": "Lost"})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    ledger = effects(fresh_sandbox, "stripe")
    assert ledger["per_object"] == {rec["id"]: {"create": 1, "update": 0, "noop": 0}}
    assert api.result(done["job_id"])["writes"]["reconciled"] == 1
    assert [e["status"] for e in posts(fresh_sandbox, "/stripe/v1/customers")] == [200, 200]
    # the resend's answer was Stripe's replay of the first: the same key still replays it
    token = fresh_sandbox.mint("stripe")["access_token"]
    again = requests.post(f"{fresh_sandbox.url}/stripe/v1/customers",
                          data={"email": "lost@example.com", "name": "Lost"},
                          headers={"Authorization": f"Bearer {token}",
                                   "Idempotency-Key": f"{done['job_id']}.0"}, timeout=5)
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["id"] == rec["id"]


def test_update_sets_absolute_values(api: Any, fresh_sandbox: Any) -> None:
    acc = account(api, fresh_sandbox)
    _, (made,) = run(api, acc, CREATE, {"email": "u@example.com"})
    done, records = run(api, acc, UPDATE, {"id": made["id"], "name": "Renamed",
                                           "metadata": {"tier": "gold"}})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert records == [{"index": 0, "status": "updated", "id": made["id"]}]
    update = effects(fresh_sandbox, "stripe")["effects"][-1]
    assert update["kind"] == "update" and update["idempotency_key"] == f"{done['job_id']}.0"
    assert update["fields"] == {"name": "Renamed", "metadata": {"tier": "gold"}}


def test_updating_a_missing_customer_is_rejected(api: Any, fresh_sandbox: Any) -> None:
    acc = account(api, fresh_sandbox)
    done, (rec,) = run(api, acc, UPDATE, {"id": "cus_nosuchcustomer", "name": "X"})
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected", done
    assert rec["error"]["code"] == "resource_missing" and rec["error"]["status"] == 404
    assert "No such customer" in rec["error"]["message"]


def test_a_lost_update_answer_is_replayed_by_key(api: Any, fresh_sandbox: Any) -> None:
    acc = account(api, fresh_sandbox)
    _, (made,) = run(api, acc, CREATE, {"email": "v@example.com"})
    fresh_sandbox.config(drop_after_commit_next=1)
    done, records = run(api, acc, UPDATE, {"id": made["id"], "name": "Once"})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert records == [{"index": 0, "status": "updated", "id": made["id"]}]
    counts = effects(fresh_sandbox, "stripe")["per_object"][made["id"]]
    assert counts == {"create": 1, "update": 1, "noop": 0}
    assert len(posts(fresh_sandbox, f"/stripe/v1/customers/{made['id']}")) == 2
    assert api.result(done["job_id"])["writes"]["reconciled"] == 1
