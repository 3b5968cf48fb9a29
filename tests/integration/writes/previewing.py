"""Shared helpers of the preview tests: seed with a real write job, dry-run a tool through the
real stack (asserting it wrote nothing), and read an object back from the sandbox (a plain
module: `conftest` is a name every test folder has)."""

from __future__ import annotations

from typing import Any

import requests
from ledger import effects


def write(api: Any, account: str, tool: str, args: dict[str, Any]) -> str:
    """A real write job (the seed a preview then reads); the id it created or changed."""
    job = api.call(tool, account_id=account, args=args)
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", (tool, done["error"], done["history"])
    (rec,) = api.records(job["job_id"])
    return str(rec["id"])


def dry_run(
    api: Any, sandbox: Any, vendor: str, account: str, tool: str, args: dict[str, Any]
) -> dict[str, Any]:
    """`tool` run with `dry_run: true`: the job succeeds, reports itself a dry run without
    `writes`, and the vendor's effect ledger is exactly as before; its one preview record."""
    before = effects(sandbox, vendor)
    job = api.call(tool, account_id=account, args=args, dry_run=True)
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", (tool, args, done["error"], done["history"])
    assert done["dry_run"] is True, done
    assert "writes" not in api.result(job["job_id"]), api.result(job["job_id"])
    assert effects(sandbox, vendor) == before, f"{tool} {args}: a dry run wrote"
    (rec,) = api.records(job["job_id"])
    assert rec["index"] == 0
    return dict(rec)


def read(sandbox: Any, vendor: str, path: str, **params: Any) -> dict[str, Any]:
    """An object as the sandbox holds it, read directly with a token of its own."""
    token = sandbox.mint(vendor)["access_token"]
    resp = requests.get(f"{sandbox.url}/{vendor}{path}", params=params or None,
                        headers={"Authorization": f"Bearer {token}"}, timeout=5)  # fmt: skip
    assert resp.status_code == 200, resp.text
    doc: dict[str, Any] = resp.json()
    return doc


def without(args: dict[str, Any], *keys: str) -> dict[str, Any]:
    """The arguments a write sets: `args` without those naming the object."""
    return {k: v for k, v in args.items() if k not in keys}
