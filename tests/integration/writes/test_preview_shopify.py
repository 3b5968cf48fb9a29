"""Dry runs of `shopify.customers.update` on the real stack: no effect at Shopify, the
customer's current values (seeded, and as an earlier update left them) next to the call's, by
the call's own field names; an unknown customer is the mutation's refusal."""

from __future__ import annotations

from typing import Any

from crm_previews import dry_run, write

from sandbox.shopify import CUSTOMER_BASE, customer_node

TOOL = "shopify.customers.update"


def gid(i: int) -> str:
    return f"gid://shopify/Customer/{CUSTOMER_BASE + i}"


def test_update_previews_current_values_or_the_refusal(api: Any, fresh_sandbox: Any) -> None:
    fresh_sandbox.config(volumes={"shopify.customers": 20})
    account = str(api.account(fresh_sandbox, "shopify"))
    write(api, TOOL, account, {"id": str(CUSTOMER_BASE + 4), "note": "met at the fair"})
    seeded = customer_node(4)

    args = {"id": gid(4), "first_name": "Ada", "note": "met at the fair", "tags": ["b2b"]}
    (row,) = dry_run(api, fresh_sandbox, "shopify", TOOL, account, args)
    assert row == {
        "index": 0, "action": "update", "id": gid(4),
        "current": {"first_name": seeded["firstName"], "note": "met at the fair",
                    "tags": seeded["tags"]},
        "proposed": {"first_name": "Ada", "note": "met at the fair", "tags": ["b2b"]},
        "changed": ["first_name", "tags"],
    }  # fmt: skip

    same = {"id": str(CUSTOMER_BASE + 6), "email": customer_node(6)["email"]}
    (unchanged,) = dry_run(api, fresh_sandbox, "shopify", TOOL, account, same)
    assert unchanged["action"] == "unchanged" and unchanged["id"] == gid(6)
    assert unchanged["current"] == unchanged["proposed"] == {"email": customer_node(6)["email"]}

    (refused,) = dry_run(api, fresh_sandbox, "shopify", TOOL, account, {"id": "1", "note": "x"})
    assert refused["action"] == "reject" and refused["id"] == "gid://shopify/Customer/1"
    assert refused["error"]["code"] == "USER_ERROR"
    assert "Customer does not exist" in refused["error"]["message"]
