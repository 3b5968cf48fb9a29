"""Shared helpers of the write tests: a vendor's effect ledger and the exactly-once check
(a plain module: `conftest` is a name every test folder has)."""

from __future__ import annotations

from typing import Any

import requests


def effects(sandbox: Any, vendor: str) -> dict[str, Any]:
    """The sandbox's ledger of applied writes for `vendor`, with counts per object."""
    return requests.get(f"{sandbox.url}/{vendor}/_sandbox/effects", timeout=5).json()


def assert_created_once(
    sandbox: Any, vendor: str, results: list[dict[str, Any]], *, resent_upsert: bool = False
) -> None:
    """Every record's result names its own object, and the vendor holds exactly one create
    of each (and no other change): no duplicate, nothing missing. An upsert resent after an
    uncertain attempt reads `updated` for what that attempt created (the vendor cannot tell)."""
    allowed = {"created", "updated"} if resent_upsert else {"created"}
    assert {r["status"] for r in results} <= allowed, results
    ids = [r["id"] for r in results]
    assert len(set(ids)) == len(ids)
    per_object = effects(sandbox, vendor)["per_object"]
    assert sorted(per_object) == sorted(ids)
    for oid, counts in per_object.items():
        assert counts["create"] == 1 and counts.get("update", 0) == 0, (oid, counts)
