"""Shared helpers of the write tests: accounts on the sandbox's write vendors, a vendor's
effect ledger and the exactly-once check (a plain module: `conftest` is a name every test
folder has)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests


def connect(api: Any, sandbox: Any, vendor: str) -> str:
    """An account on the sandbox's `vendor`, with the credentials that vendor takes
    (Stripe a bearer key, Jira a token endpoint on its own host, the rest OAuth)."""
    if vendor == "stripe":
        token = sandbox.mint("stripe")["access_token"]
        resp = api.post("/v1/accounts", {"vendor": "stripe", "name": "s",
                                         "base_url": f"{sandbox.url}/stripe",
                                         "credentials": {"type": "bearer", "token": token}})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["account_id"])
    if vendor == "jira":
        return str(api.account(sandbox, "jira", token_url=f"{sandbox.url}/jira/oauth/token"))
    return str(api.account(sandbox, vendor))


def effects(sandbox: Any, vendor: str) -> dict[str, Any]:
    """The sandbox's ledger of applied writes for `vendor`, with counts per object."""
    return dict(requests.get(f"{sandbox.url}/{vendor}/_sandbox/effects", timeout=5).json())


def assert_created_once(
    sandbox: Any, vendor: str, results: list[dict[str, Any]], *, resent_upsert: bool = False,
    prefix: str = "",
) -> None:
    """Every record's result names its own object, and the vendor holds exactly one create
    of each (and no other change): no duplicate, nothing missing. An upsert resent after an
    uncertain attempt reads `updated` for what that attempt created (the vendor cannot tell).
    `prefix` turns a result id into the ledger's object id (GitHub's `owner/repo#`)."""
    allowed = {"created", "updated"} if resent_upsert else {"created"}
    assert {r["status"] for r in results} <= allowed, results
    ids = [r["id"] for r in results]
    assert len(set(ids)) == len(ids)
    assert_ledger_holds(sandbox, vendor, [prefix + i for i in ids])


def assert_ledger_holds(sandbox: Any, vendor: str, object_ids: Iterable[str]) -> None:
    """The vendor's ledger is exactly these objects, each created once and never changed
    after (a resent upsert that changes nothing is a `noop`, allowed)."""
    per_object = effects(sandbox, vendor)["per_object"]
    missing = sorted(set(object_ids) - set(per_object))
    extra = sorted(set(per_object) - set(object_ids))
    assert not missing and not extra, f"{vendor}: missing {missing[:5]}, unexpected {extra[:5]}"
    twice = {oid: c for oid, c in per_object.items()
             if c["create"] != 1 or c.get("update", 0) != 0}  # fmt: skip
    assert not twice, f"{vendor}: objects written more than once: {list(twice.items())[:5]}"
