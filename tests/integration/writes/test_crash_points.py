"""A worker SIGKILLed at each point of a write operation — before it is sent, after the
vendor committed it but before its outcome is recorded, after it is recorded — for an upsert
vendor (HubSpot), an idempotency-key vendor (Stripe) and marker vendors (GitHub's body
marker, Jira's entity property): the job still ends with exactly one effect per operation
(tests/integration/killpoint_worker.py).

Recovery: the killed worker's step is sent again by the sweep once its lease lapses (3 s in
the test env) or by the broker after the visibility timeout (10 s)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from ledger import assert_created_once, connect
from support import wait_until

Check = Callable[[Any, str, dict[str, Any], str], None]  # (sandbox, job id, result, point)


def no_check(sandbox: Any, job_id: str, rec: dict[str, Any], point: str) -> None:
    """The ledger check says it all (the upsert: resent by its natural key)."""


def stripe_replays_it(sandbox: Any, job_id: str, rec: dict[str, Any], point: str) -> None:
    """The id recorded is the one Stripe replays for the operation's key."""
    token = sandbox.mint("stripe")["access_token"]
    again = requests.post(f"{sandbox.url}/stripe/v1/customers",
                          data={"email": f"key-{point}@example.com", "name": "K"},
                          headers={"Authorization": f"Bearer {token}",
                                   "Idempotency-Key": f"{job_id}.0"}, timeout=5)  # fmt: skip
    assert again.headers.get("idempotent-replayed") == "true", again.text
    assert again.json()["id"] == rec["id"]


def creates(sandbox: Any, vendor: str, tail: str) -> int:
    return sum(e["method"] == "POST" and e["path"].endswith(tail)
               for e in sandbox.requests(vendor))  # fmt: skip


def vendor_get(sandbox: Any, vendor: str, path: str) -> dict[str, Any]:
    token = sandbox.mint(vendor)["access_token"]
    resp = requests.get(f"{sandbox.url}/{vendor}{path}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=5)  # fmt: skip
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def github_marked(sandbox: Any, job_id: str, rec: dict[str, Any], point: str) -> None:
    """Posted once (found by its marker, never resent), and the issue carries the marker."""
    assert creates(sandbox, "github", "/repos/acme/widgets/issues") == 1
    issue = vendor_get(sandbox, "github", f"/repos/acme/widgets/issues/{rec['id']}")
    assert issue["body"].endswith(f"<!-- toolqueue:op={job_id}.0 -->")


def jira_marked(sandbox: Any, job_id: str, rec: dict[str, Any], point: str) -> None:
    assert creates(sandbox, "jira", "/rest/api/3/issue") == 1
    issue = vendor_get(sandbox, "jira", f"/rest/api/3/issue/{rec['id']}?properties=*all")
    assert issue["properties"]["toolqueue"] == {"op": f"{job_id}.0"}


@dataclass(frozen=True)
class Case:
    tool: str
    vendor: str
    args: Callable[[str], dict[str, Any]]
    op: int  # the operation the worker dies at
    records: int
    upsert: bool = False  # resent as is: the resend reads `updated`
    prefix: str = ""  # result id -> the ledger's object id
    check: Check = no_check


CASES = {
    "upsert": Case("hubspot.contacts.upsert", "hubspot", lambda tag: {"records": [
        {"id": f"{tag}-{i}@example.com", "properties": {"firstname": "K"}}
        for i in range(150)]}, op=1, records=150, upsert=True),  # fmt: skip
    "key": Case("stripe.customers.create", "stripe",
                lambda tag: {"email": f"{tag}@example.com", "name": "K"}, op=0, records=1,
                check=stripe_replays_it),  # fmt: skip
    "marker-github": Case("github.issues.create", "github", lambda tag: {
        "owner": "acme", "repo": "widgets", "title": tag, "body": "It smokes."},
        op=0, records=1, prefix="acme/widgets#", check=github_marked),  # fmt: skip
    "marker-jira": Case("jira.issues.create", "jira", lambda tag: {
        "project_key": "ENG", "summary": tag, "issue_type": "Task"},
        op=0, records=1, check=jira_marked),  # fmt: skip
}
POINTS = ("before_send", "after_commit", "after_record")


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_write_survives_a_kill_at_every_point(
    api: Any, fresh_sandbox: Any, workers: Any, kind: str, point: str
) -> None:
    case = CASES[kind]
    account = connect(api, fresh_sandbox, case.vendor)
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
        assert_created_once(fresh_sandbox, case.vendor, results, resent_upsert=resent,
                            prefix=case.prefix)  # fmt: skip
        case.check(fresh_sandbox, job["job_id"], results[case.op], point)
        summary = api.result(job["job_id"])["writes"]
        # only a kill between the mark and the record leaves an operation uncertain
        assert summary["reconciled"] == (0 if point == "after_record" else 1), summary
    finally:
        workers.stop_all()
        workers.start()
