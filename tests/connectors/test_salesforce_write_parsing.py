"""Salesforce write tools without the stack: plans (Collections vs Bulk ingest), the CSV
upload, `sf__Error` parsing, and the uncertain delete's `find`."""

from __future__ import annotations

from typing import Any

import pytest

from connectors import salesforce_ingest as ingest
from connectors import salesforce_writes as sw
from connectors.errors import VendorError
from connectors.writes import ItemResult, Operation, Pending


def args(n: int, **extra: Any) -> sw.UpsertArgs:
    recs = [{"E__c": f"e{i}", "LastName": "L"} for i in range(n)]
    body = {"sobject": "Contact", "external_id_field": "E__c", "records": recs, **extra}
    return sw.UpsertArgs.model_validate(body)


def test_plan_switches_to_bulk_above_the_threshold() -> None:
    small = sw._plan_upsert(args(450))
    assert [len(op.items) for op in small] == [200, 200, 50]
    assert not small[0].items[0][1].bulk
    big = sw._plan_upsert(args(12, bulk_threshold=10))
    assert [len(op.items) for op in big] == [12] and big[0].items[0][1].bulk
    assert args(1).bulk_threshold == sw.EXTRA["bulk_threshold"] == 2000


def test_external_ids_are_required_and_unique() -> None:
    with pytest.raises(ValueError, match="no E__c"):
        sw.UpsertArgs.model_validate(
            {"sobject": "Contact", "external_id_field": "E__c", "records": [{"LastName": "x"}]}
        )
    with pytest.raises(ValueError, match="same"):
        sw.UpsertArgs.model_validate(
            {"sobject": "Contact", "external_id_field": "E__c", "records": [{"E__c": 1}] * 2}
        )


def test_csv_cells_and_sf_error() -> None:
    text = ingest.to_csv([{"E__c": "a", "Phone": None, "X__c": True}, {"E__c": "b,c"}], "E__c")
    assert text == 'E__c,Phone,X__c\na,#N/A,true\n"b,c",,\n'
    err = ingest.failed(
        3, "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --"
    )
    assert err.error == {
        "code": "REQUIRED_FIELD_MISSING",
        "message": "Required fields are missing: [LastName]",
        "fields": ["LastName"],
    }


class Gone:
    """An Http whose DELETE answers what Salesforce does for a record deleted already."""

    base_url = "https://x.my.salesforce.com"

    def request(self, method: str, path: str, **kw: Any) -> Any:
        raise VendorError("ENTITY_IS_DELETED", "entity is deleted", status=404)


def test_an_uncertain_delete_found_deleted_is_deleted() -> None:
    op = Operation(0, ((0, sw.DeleteArgs(sobject="Contact", id="003000000000001AAA")),))
    assert sw._find_delete(Gone(), op) == [ItemResult(0, "deleted", "003000000000001AAA")]
    with pytest.raises(VendorError):
        sw._send_delete(Gone(), op)  # a new job's delete of a gone record is a rejection


def test_a_running_ingest_job_is_pending_with_the_same_job() -> None:
    class Running:
        base_url = ""

        def request(self, method: str, path: str, **kw: Any) -> Any:
            class R:
                @staticmethod
                def json() -> dict[str, Any]:
                    return {"id": "750X", "state": "InProgress"}

            return R()

    op = Operation(
        0,
        tuple(sw._plan_upsert(args(3, bulk_threshold=1))[0].items),
        pending={"job": "750X", "polls": 2},
    )
    with pytest.raises(Pending) as still:
        sw._send_upsert(Running(), op)
    assert still.value.ref == {"job": "750X", "polls": 3} and still.value.wait_s == 5.0
