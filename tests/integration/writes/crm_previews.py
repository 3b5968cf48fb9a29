"""A dry run on the real stack, with the checks every preview test makes: the job succeeded
as a dry run, the vendor's effects ledger did not move (reads never count), the records are
one preview per record in order, and the view's preview summary counts their actions (a plain
module: `conftest` is a name every test folder has)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from ledger import effects

ACTIONS = ("create", "update", "unchanged", "delete", "reject")


def dry_run(
    api: Any, sandbox: Any, vendor: str, tool: str, account: str, args: dict[str, Any]
) -> list[dict[str, Any]]:
    """Run `tool` with `dry_run` and return its preview records, after the common checks."""
    before = effects(sandbox, vendor)
    job = api.call(tool, account_id=account, args=args, dry_run=True)
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", (done.get("error"), done["history"])
    assert done["dry_run"] is True and "writes" not in done, done
    assert effects(sandbox, vendor) == before, f"a dry run of {tool} wrote to {vendor}"
    rows = api.records(job["job_id"])
    assert [r["index"] for r in rows] == list(range(len(rows)))
    counts = Counter(r["action"] for r in rows)
    assert {a: done["preview"][a] for a in ACTIONS} == {a: counts[a] for a in ACTIONS}
    return rows


def write(api: Any, tool: str, account: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    """A real write job (seeding what a preview then reads); its result records."""
    job = api.call(tool, account_id=account, args=args)
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", (done.get("error"), done["history"])
    return list(api.records(job["job_id"]))
