"""A worker SIGKILLed at each point of a write operation — before it is sent, after the
vendor committed it but before its outcome is recorded, after it is recorded — and the job
still ends with exactly one effect per record (tests/integration/killpoint_worker.py).

Recovery: the killed worker's step is sent again by the sweep once its lease lapses (3 s in
the test env) or by the broker after the visibility timeout (10 s)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from ledger import assert_created_once
from support import wait_until


@dataclass(frozen=True)
class Case:
    tool: str
    vendor: str
    args: Callable[[str], dict[str, Any]]
    op: int  # the operation the worker dies at
    records: int
    upsert: bool = False  # resent as is: the resend reads `updated`


def hubspot_args(tag: str) -> dict[str, Any]:
    return {"records": [{"id": f"{tag}-{i}@example.com", "properties": {"firstname": "K"}}
                        for i in range(150)]}  # fmt: skip


CASES = {
    "upsert": Case("hubspot.contacts.upsert", "hubspot", hubspot_args, op=1, records=150,
                   upsert=True),
}
POINTS = ("before_send", "after_commit", "after_record")


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_write_survives_a_kill_at_every_point(
    api: Any, fresh_sandbox: Any, workers: Any, kind: str, point: str
) -> None:
    case = CASES[kind]
    account = api.account(fresh_sandbox, case.vendor)
    workers.stop_all()
    try:
        victim = workers.start(kill_at=(point, case.op))
        job = api.call(case.tool, account_id=account, args=case.args(f"{kind}-{point}"))
        wait_until(lambda: victim.proc.poll() is not None, 30)
        assert f"killpoint: dying {point} operation {case.op}" in victim.log()
        workers.start(concurrency=1)
        done = api.wait(job["job_id"], 90)
        assert done["status"] == "succeeded", (done.get("error"), done["history"])
        results = api.records(job["job_id"])
        assert [r["index"] for r in results] == list(range(case.records))
        resent = case.upsert and point == "after_commit"
        assert_created_once(fresh_sandbox, case.vendor, results, resent_upsert=resent)
        summary = api.result(job["job_id"])["writes"]
        # only a kill between the mark and the record leaves an operation uncertain
        assert summary["reconciled"] == (0 if point == "after_record" else 1), summary
    finally:
        workers.stop_all()
        workers.start()
