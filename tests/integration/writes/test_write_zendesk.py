"""Zendesk writes from the declarative spec, on the real stack: a create carries the
operation's key as Idempotency-Key and external_id, and a create whose answer was lost is
found by external_id (also past the key's lifetime) instead of being resent; updates are
absolute; a comment has no retry-safety mechanism, so a lost answer stops the job."""

from __future__ import annotations

from typing import Any

import pytest
from ledger import effects

CREATE = "zendesk.tickets.create"
UPDATE, COMMENT = "zendesk.tickets.update", "zendesk.tickets.comment"
TICKETS = "/zendesk/api/v2/tickets"




def sent(sandbox: Any, method: str, path: str) -> list[dict[str, Any]]:
    return [e for e in sandbox.requests("zendesk") if e["method"] == method and e["path"] == path]


def run(api: Any, acc: str, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any], list]:
    job = api.call(tool, account_id=acc, args=args)
    return api.wait(job["job_id"]), api.records(job["job_id"])


def test_create_carries_the_operation_key_twice(api: Any, fresh_sandbox: Any) -> None:
    acc = api.account(fresh_sandbox, "zendesk")
    args = {"subject": "Printer on fire", "body": "It smokes.", "priority": "high",
            "tags": ["hardware"], "requester_email": "ada@example.com"}
    done, (rec,) = run(api, acc, CREATE, args)
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert rec["status"] == "created" and rec["id"].isdigit()
    (effect,) = effects(fresh_sandbox, "zendesk")["effects"]
    key = f"{done['job_id']}.0"
    assert effect["object_id"] == rec["id"] and effect["idempotency_key"] == key
    assert effect["fields"] == {"subject": "Printer on fire", "comment": {"body": "It smokes."},
                                "priority": "high", "tags": ["hardware"],
                                "requester": {"email": "ada@example.com"}, "external_id": key}


def test_a_refused_create_fails_the_job_with_zendesks_reason(api: Any, fresh_sandbox: Any) -> None:
    acc = api.account(fresh_sandbox, "zendesk")
    done, (rec,) = run(api, acc, CREATE, {"subject": "Empty", "body": "  "})
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected", done
    assert rec["status"] == "rejected" and rec["error"]["code"] == "RecordInvalid"
    assert rec["error"]["status"] == 422 and rec["error"]["message"]
    assert effects(fresh_sandbox, "zendesk")["count"] == 0


@pytest.mark.parametrize("ttl", [7200, 0], ids=["within-key-lifetime", "past-key-lifetime"])
def test_a_lost_create_answer_is_found_by_external_id(
    api: Any, fresh_sandbox: Any, ttl: int
) -> None:
    acc = api.account(fresh_sandbox, "zendesk")
    fresh_sandbox.config(drop_after_commit_next=1, idempotency_ttl_s=ttl)
    done, (rec,) = run(api, acc, CREATE, {"subject": "Lost", "body": "The answer got lost."})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    ledger = effects(fresh_sandbox, "zendesk")
    assert ledger["per_object"] == {rec["id"]: {"create": 1, "update": 0, "noop": 0}}
    assert api.result(done["job_id"])["writes"]["reconciled"] == 1
    assert len(sent(fresh_sandbox, "POST", TICKETS)) == 1  # found, not resent
    (lookup,) = sent(fresh_sandbox, "GET", TICKETS)
    assert f"external_id={done['job_id']}.0" in lookup["query"]


def test_update_sets_absolute_values(api: Any, fresh_sandbox: Any) -> None:
    acc = api.account(fresh_sandbox, "zendesk")
    done, records = run(api, acc, UPDATE, {"id": 5, "status": "solved", "tags": []})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert records == [{"index": 0, "status": "updated", "id": "5"}]
    (effect,) = effects(fresh_sandbox, "zendesk")["effects"]
    assert effect["fields"] == {"status": "solved", "tags": []}


@pytest.mark.parametrize("tool", [UPDATE, COMMENT])
def test_writing_to_a_missing_ticket_is_rejected(api: Any, fresh_sandbox: Any, tool: str) -> None:
    acc = api.account(fresh_sandbox, "zendesk")
    args = {"id": 99999999, **({"status": "open"} if tool == UPDATE else {"body": "Hi"})}
    done, (rec,) = run(api, acc, tool, args)
    assert done["status"] == "failed" and done["error"]["code"] == "all_rejected", done
    assert rec["error"]["code"] == "RecordNotFound" and rec["error"]["status"] == 404
    assert effects(fresh_sandbox, "zendesk")["count"] == 0


def test_a_lost_update_answer_is_resent_and_changes_nothing_more(
    api: Any, fresh_sandbox: Any
) -> None:
    acc = api.account(fresh_sandbox, "zendesk")
    fresh_sandbox.config(drop_after_commit_next=1)
    done, records = run(api, acc, UPDATE, {"id": 7, "status": "pending", "subject": "Renamed"})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert records == [{"index": 0, "status": "updated", "id": "7"}]
    counts = effects(fresh_sandbox, "zendesk")["per_object"]["7"]
    assert counts == {"create": 0, "update": 1, "noop": 1}
    assert len(sent(fresh_sandbox, "PUT", f"{TICKETS}/7")) == 2


def test_comment_adds_to_the_thread(api: Any, fresh_sandbox: Any) -> None:
    acc = api.account(fresh_sandbox, "zendesk")
    done, records = run(api, acc, COMMENT, {"id": 5, "body": "Looking into it", "public": False})
    assert done["status"] == "succeeded", (done["error"], done["history"])
    assert records == [{"index": 0, "status": "updated", "id": "5"}]
    (effect,) = effects(fresh_sandbox, "zendesk")["effects"]
    assert effect["fields"] == {"comment": {"body": "Looking into it", "public": False}}


def test_a_lost_comment_answer_stops_the_job_without_resending(
    api: Any, fresh_sandbox: Any
) -> None:
    acc = api.account(fresh_sandbox, "zendesk")
    fresh_sandbox.config(drop_after_commit_next=1)
    job = api.call(COMMENT, account_id=acc, args={"id": 8, "body": "Only once"})
    done = api.wait(job["job_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "uncertain_write", done
    assert "operation 0" in done["error"]["message"] and COMMENT in done["error"]["message"]
    comments = [e for e in effects(fresh_sandbox, "zendesk")["effects"] if "comment" in e["fields"]]
    assert [(e["kind"], e["object_id"]) for e in comments] == [("update", "8")]
    assert len(sent(fresh_sandbox, "PUT", f"{TICKETS}/8")) == 1


def test_a_comment_that_never_left_is_retried_not_stopped(api: Any, fresh_sandbox: Any) -> None:
    """No connection was ever made (the port is closed): certainly not applied, so even a
    tool with no retry-safety mechanism retries it as a transient failure; a 5xx answer, by
    contrast, might have been applied, and stops the same tool."""
    from support import free_port

    closed = f"http://127.0.0.1:{free_port()}/zendesk"
    acc = api.account(fresh_sandbox, "zendesk", base_url=closed)
    job = api.call(COMMENT, account_id=acc, args={"id": 8, "body": "Never sent"})
    done = api.wait(job["job_id"], 60)
    assert done["status"] == "failed" and done["error"]["code"] == "retry_budget_exhausted", done
    assert "ConnectionError" in done["error"]["message"]

    answered = api.account(fresh_sandbox, "zendesk")
    fresh_sandbox.config(fail_before_commit_next=1)
    job = api.call(COMMENT, account_id=answered, args={"id": 8, "body": "Maybe sent"})
    done = api.wait(job["job_id"])
    assert done["status"] == "failed" and done["error"]["code"] == "uncertain_write", done
    assert len(sent(fresh_sandbox, "PUT", f"{TICKETS}/8")) == 1
