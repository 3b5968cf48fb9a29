"""`salesforce_locked_fields`: the vendor rejects the records that set a field the integration
user may not write (field-level security, `INVALID_FIELD_FOR_INSERT_UPDATE`), then, once the
knob is cleared, accepts the same records. Over real HTTP: collections, one record, PATCH by id,
Bulk API 2.0 ingest."""

from __future__ import annotations

import csv
import io
import time

import pytest
import requests

DATA = "/salesforce/services/data/v62.0"
COLLECTION = f"{DATA}/composite/sobjects/Contact/Ext_Id__c"
JOBS = f"{DATA}/jobs/ingest"
PHONE_LOCKED = (
    "Unable to create/update fields: Phone. Please check the security settings of this field "
    "and verify that it is read/write for your profile or permission set."
)


@pytest.fixture
def sf(live_sandbox):
    body = {"vendor": "salesforce", "client_id": "cid-1", "client_secret": "secret-1"}
    token = requests.post(f"{live_sandbox.url}/_sandbox/tokens", json=body, timeout=5).json()
    live_sandbox.h = {"Authorization": f"Bearer {token['access_token']}"}
    return live_sandbox


def call(live, method: str, path: str, **kw) -> requests.Response:
    headers = {**live.h, **kw.pop("headers", {})}
    return requests.request(method, f"{live.url}{path}", headers=headers, timeout=5, **kw)


def rec(ext: str, **fields) -> dict:
    return {"attributes": {"type": "Contact"}, "Ext_Id__c": ext, **fields}


def lock(live, *fields: str) -> None:
    shown = live.config(salesforce_locked_fields=list(fields))
    assert shown["salesforce_locked_fields"] == list(fields)


def found(live, ext: str) -> list[dict]:
    soql = f"SELECT Id, Phone FROM Contact WHERE Ext_Id__c = '{ext}'"
    return list(call(live, "GET", f"{DATA}/query", params={"q": soql}).json()["records"])


def test_the_knob_is_off_by_default_and_rejects_unknown_shapes(sf):
    assert (
        requests.get(f"{sf.url}/_sandbox/config", timeout=5).json()["salesforce_locked_fields"]
        == []
    )
    bad = requests.post(
        f"{sf.url}/_sandbox/config", json={"salesforce_locked_fields": "Phone"}, timeout=5
    )
    assert bad.status_code == 422


def test_in_a_collection_only_the_record_setting_a_locked_field_fails_until_cleared(sf):
    lock(sf, "Phone")
    records = [rec("L-1", LastName="A"), rec("L-2", Phone="555"), rec("L-3", Phone=None)]
    body = {"allOrNone": False, "records": records}
    first = call(sf, "PATCH", COLLECTION, json=body)
    assert first.status_code == 200, first.text
    one, refused, null = first.json()
    assert one["success"] is True and one["created"] is True
    assert refused == {
        "id": None,
        "success": False,
        "errors": [
            {
                "statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                "message": PHONE_LOCKED,
                "fields": ["Phone"],
            }
        ],
        "created": False,
    }
    assert null["success"] is True  # null sets no value
    assert found(sf, "L-2") == []
    assert [e["kind"] for e in sf.effects("salesforce")] == ["create", "create"]

    lock(sf)  # cleared: {"salesforce_locked_fields": []}
    again = call(sf, "PATCH", COLLECTION, json=body).json()
    assert [(r["success"], r["created"]) for r in again] == [
        (True, False),
        (True, True),
        (True, False),
    ]
    assert again[0]["id"] == one["id"] and again[2]["id"] == null["id"]
    assert [r["Phone"] for r in found(sf, "L-2")] == ["555"]


def test_all_or_none_rolls_the_whole_collection_back_on_a_locked_field(sf):
    lock(sf, "Phone")
    body = {"allOrNone": True, "records": [rec("N-1", LastName="A"), rec("N-2", Phone="1")]}
    rolled, refused = call(sf, "PATCH", COLLECTION, json=body).json()
    assert rolled["success"] is False
    assert rolled["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert refused["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert sf.effects("salesforce") == []
    lock(sf)
    assert all(r["success"] for r in call(sf, "PATCH", COLLECTION, json=body).json())
    assert len(sf.effects("salesforce")) == 2


def test_one_record_and_patch_by_id_answer_400_naming_every_locked_field(sf):
    made = call(sf, "PATCH", f"{DATA}/sobjects/Contact/Ext_Id__c/O-1", json={"LastName": "A"})
    rid = made.json()["id"]
    lock(sf, "phone", "Secret__c")  # names are case-insensitive
    both = {"LastName": "B", "Phone": "7", "Secret__c": "s"}
    upsert = call(sf, "PATCH", f"{DATA}/sobjects/Contact/Ext_Id__c/O-2", json=both)
    message = PHONE_LOCKED.replace("fields: Phone.", "fields: Phone, Secret__c.")
    assert upsert.status_code == 400
    assert upsert.json() == [
        {
            "message": message,
            "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
            "fields": ["Phone", "Secret__c"],
        }
    ]
    update = call(sf, "PATCH", f"{DATA}/sobjects/Contact/{rid}", json={"Phone": "7"})
    assert update.status_code == 400
    assert update.json()[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert update.json()[0]["fields"] == ["Phone"]
    assert call(sf, "GET", f"{DATA}/sobjects/Contact/{rid}").json().get("Phone") is None
    assert found(sf, "O-2") == []
    assert [e["kind"] for e in sf.effects("salesforce")] == ["create"]

    lock(sf)
    assert (
        call(sf, "PATCH", f"{DATA}/sobjects/Contact/{rid}", json={"Phone": "7"}).status_code == 204
    )
    assert call(sf, "GET", f"{DATA}/sobjects/Contact/{rid}").json()["Phone"] == "7"
    again = call(sf, "PATCH", f"{DATA}/sobjects/Contact/Ext_Id__c/O-2", json=both)
    assert again.status_code == 201


def _ingest(live, text: str) -> tuple[list[dict], list[dict]]:
    """One upsert job of ``text``, run to the end: (successful rows, failed rows)."""
    spec = {"object": "Contact", "externalIdFieldName": "Ext_Id__c", "operation": "upsert"}
    job = call(live, "POST", JOBS, json=spec).json()["id"]
    csv_type = {"Content-Type": "text/csv"}
    assert call(live, "PUT", f"{JOBS}/{job}/batches", data=text.encode(), headers=csv_type).ok
    assert call(live, "PATCH", f"{JOBS}/{job}", json={"state": "UploadComplete"}).ok
    deadline = time.monotonic() + 10
    while call(live, "GET", f"{JOBS}/{job}").json()["state"] != "JobComplete":
        assert time.monotonic() < deadline, "the ingest job never completed"
        time.sleep(0.02)
    out = []
    for kind in ("successfulResults", "failedResults"):
        resp = call(live, "GET", f"{JOBS}/{job}/{kind}")
        out.append(list(csv.DictReader(io.StringIO(resp.text))))
    return out[0], out[1]


def test_a_bulk_ingest_row_setting_a_locked_field_fails_and_an_empty_cell_does_not(sf):
    requests.post(f"{sf.url}/salesforce/_sandbox/ingest", json={"processing_ms": 0}, timeout=5)
    lock(sf, "Phone")
    text = "Ext_Id__c,LastName,Phone\nI-1,A,555\nI-2,B,\n"
    ok, failed = _ingest(sf, text)
    assert [r["Ext_Id__c"] for r in ok] == ["I-2"]
    assert [(r["Ext_Id__c"], r["sf__Id"], r["sf__Error"]) for r in failed] == [
        ("I-1", "", f"INVALID_FIELD_FOR_INSERT_UPDATE:{PHONE_LOCKED}:Phone --")
    ]
    assert found(sf, "I-1") == []

    lock(sf)
    ok, failed = _ingest(sf, text)
    assert [(r["Ext_Id__c"], r["sf__Created"]) for r in ok] == [("I-1", "true"), ("I-2", "false")]
    assert failed == []
