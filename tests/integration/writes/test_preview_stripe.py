"""Dry runs of Stripe's customer writes (declared in the spec) on the real stack: no write
reaches Stripe, an update shows the customer's values as the sandbox holds them (metadata:
the keys given) beside the proposed ones, a missing customer is Stripe's `resource_missing`."""

from __future__ import annotations

from typing import Any

from ledger import connect
from previewing import dry_run, read, without, write


def held(sandbox: Any, customer_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    customer = read(sandbox, "stripe", f"/v1/customers/{customer_id}")
    out = {k: customer.get(k) for k in fields if k != "metadata"}
    if "metadata" in fields:
        out["metadata"] = {k: customer["metadata"].get(k) for k in fields["metadata"]}
    return out


def test_every_stripe_write_previews_without_writing(api: Any, fresh_sandbox: Any) -> None:
    account = connect(api, fresh_sandbox, "stripe")
    new = {"email": "ada@example.com", "name": "Ada", "metadata": {"tier": "gold"}}
    made = write(api, account, "stripe.customers.create", new)
    seeded = read(fresh_sandbox, "stripe", "/v1/customers", limit=1)["data"][0]["id"]

    def run(tool: str, args: dict[str, Any]) -> dict[str, Any]:
        return dry_run(api, fresh_sandbox, "stripe", account, f"stripe.customers.{tool}", args)

    assert run("create", new) == {"index": 0, "action": "create", "id": None, "proposed": new}
    cases = [  # (customer, fields given, action)
        (made, {"name": "Ada L.", "metadata": {"tier": "gold", "seats": "3"}}, "update"),
        (made, {"email": "ada@example.com", "metadata": {"tier": "gold"}}, "unchanged"),
        (seeded, {"email": "new@example.com", "name": "Renamed"}, "update"),
    ]
    for customer_id, fields, action in cases:
        args = {"id": customer_id, **fields}
        rec = run("update", args)
        assert rec["action"] == action and rec["id"] == customer_id, (fields, rec)
        assert rec["current"] == held(fresh_sandbox, customer_id, fields), rec
        assert rec["proposed"] == without(args, "id")
    rec = run("update", {"id": "cus_nope", "name": "x"})
    assert rec["action"] == "reject" and rec["id"] == "cus_nope", rec
    assert rec["error"]["code"] == "resource_missing"
    assert held(fresh_sandbox, made, {"name": 1}) == {"name": "Ada"}
