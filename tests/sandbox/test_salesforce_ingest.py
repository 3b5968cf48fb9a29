"""Salesforce Bulk API 2.0 ingest (upsert) over real HTTP: job lifecycle, results, row errors,
faults, and the same records as sObject Collections."""

from __future__ import annotations

import csv
import io
import time

import pytest
import requests

DATA = "/salesforce/services/data/v62.0"
JOBS = f"{DATA}/jobs/ingest"
CSV_HEADERS = {"Content-Type": "text/csv"}
DROPPED = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


@pytest.fixture
def sf(live_sandbox):
    body = {"vendor": "salesforce", "client_id": "cid-1", "client_secret": "secret-1"}
    token = requests.post(f"{live_sandbox.url}/_sandbox/tokens", json=body, timeout=5).json()
    live_sandbox.h = {"Authorization": f"Bearer {token['access_token']}"}
    control = requests.post(
        f"{live_sandbox.url}/salesforce/_sandbox/ingest", json={"processing_ms": 200}, timeout=5
    )
    assert control.json() == {"ok": True, "processing_ms": 200}
    return live_sandbox


def call(live, method: str, path: str, **kw) -> requests.Response:
    headers = {**live.h, **kw.pop("headers", {})}
    return requests.request(method, f"{live.url}{path}", headers=headers, timeout=5, **kw)


def new_job(live, **over) -> dict:
    body = {
        "object": "Contact",
        "externalIdFieldName": "Ext_Id__c",
        "operation": "upsert",
        "contentType": "CSV",
        "lineEnding": "LF",
        **over,
    }
    resp = call(live, "POST", JOBS, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


def upload(live, job_id: str, text: str) -> requests.Response:
    return call(live, "PUT", f"{JOBS}/{job_id}/batches", data=text.encode(), headers=CSV_HEADERS)


def close(live, job_id: str, state: str = "UploadComplete") -> requests.Response:
    return call(live, "PATCH", f"{JOBS}/{job_id}", json={"state": state})


def poll(live, job_id: str) -> tuple[dict, list[str]]:
    seen: list[str] = []
    for _ in range(100):
        info = call(live, "GET", f"{JOBS}/{job_id}").json()
        if not seen or seen[-1] != info["state"]:
            seen.append(info["state"])
        if info["state"] in ("JobComplete", "Failed", "Aborted"):
            return info, seen
        time.sleep(0.02)
    raise AssertionError(f"job never finished: {seen}")


def rows(live, job_id: str, kind: str) -> list[dict]:
    resp = call(live, "GET", f"{JOBS}/{job_id}/{kind}")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(resp.text)))


def run(live, text: str) -> tuple[dict, dict]:
    job = new_job(live)
    assert upload(live, job["id"], text).status_code == 201
    assert close(live, job["id"]).json()["state"] == "UploadComplete"
    info, _ = poll(live, job["id"])
    return job, info


def test_an_ingest_job_moves_through_its_states_and_reports_created_rows(sf):
    job = new_job(sf)
    assert job["state"] == "Open" and job["id"].startswith("750")
    assert job["contentUrl"] == f"services/data/v62.0/jobs/ingest/{job['id']}/batches"
    text = "Ext_Id__c,LastName\nB-1,Lovelace\nB-2,Hopper\n"
    assert upload(sf, job["id"], text).status_code == 201
    assert call(sf, "GET", f"{JOBS}/{job['id']}/successfulResults").status_code == 400
    closed = close(sf, job["id"])
    assert closed.status_code == 200 and closed.json()["state"] == "UploadComplete"
    info, seen = poll(sf, job["id"])
    assert seen == ["UploadComplete", "InProgress", "JobComplete"]
    assert info["numberRecordsProcessed"] == 2 and info["numberRecordsFailed"] == 0
    ok = rows(sf, job["id"], "successfulResults")
    assert [(r["sf__Created"], r["Ext_Id__c"], r["LastName"]) for r in ok] == [
        ("true", "B-1", "Lovelace"),
        ("true", "B-2", "Hopper"),
    ]
    assert all(r["sf__Id"].startswith("003") and len(r["sf__Id"]) == 18 for r in ok)
    assert rows(sf, job["id"], "failedResults") == []
    assert rows(sf, job["id"], "unprocessedrecords") == []
    assert [e["kind"] for e in sf.effects("salesforce")] == ["create", "create"]


def test_ingest_and_collections_upsert_the_same_records_and_a_resend_is_a_noop(sf):
    record = {"attributes": {"type": "Contact"}, "Ext_Id__c": "S-1", "LastName": "A"}
    collection = f"{DATA}/composite/sobjects/Contact/Ext_Id__c"
    made = call(sf, "PATCH", collection, json={"records": [record]}).json()[0]
    job, _ = run(sf, "Ext_Id__c,LastName\nS-1,B\n")
    (row,) = rows(sf, job["id"], "successfulResults")
    assert row["sf__Id"] == made["id"] and row["sf__Created"] == "false"
    again, _ = run(sf, "Ext_Id__c,LastName\nS-1,B\n")
    assert rows(sf, again["id"], "successfulResults")[0]["sf__Id"] == made["id"]
    counts = requests.get(f"{sf.url}/salesforce/_sandbox/effects", timeout=5).json()["per_object"]
    assert counts == {made["id"]: {"create": 1, "update": 1, "noop": 1}}


def test_row_errors_are_failed_results_and_the_rest_are_written(sf):
    text = "Ext_Id__c,LastName,Email\nR-1,Ok,a@b.c\n,NoExt,x@y.z\nR-3,,c@d.e\n"
    job, info = run(sf, text)
    assert info["state"] == "JobComplete"
    assert info["numberRecordsProcessed"] == 3 and info["numberRecordsFailed"] == 2
    failed = rows(sf, job["id"], "failedResults")
    assert [(r["sf__Error"], r["LastName"]) for r in failed] == [
        ("MISSING_ARGUMENT:Ext_Id__c not specified:Ext_Id__c --", "NoExt"),
        ("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --", ""),
    ]
    assert list(failed[0]) == ["sf__Id", "sf__Error", "Ext_Id__c", "LastName", "Email"]
    assert [r["Ext_Id__c"] for r in rows(sf, job["id"], "successfulResults")] == ["R-1"]
    assert len(sf.effects("salesforce")) == 1


def test_an_unknown_column_fails_the_job_and_leaves_every_row_unprocessed(sf):
    job, info = run(sf, "Ext_Id__c,LastName,Colour\nU-1,A,red\n")
    assert info["state"] == "Failed"
    assert info["errorMessage"] == "InvalidBatch : Field name not found : Colour"
    assert info["numberRecordsProcessed"] == 0
    assert [r["Ext_Id__c"] for r in rows(sf, job["id"], "unprocessedrecords")] == ["U-1"]
    assert sf.effects("salesforce") == []


def test_refusals_unknown_jobs_and_abort(sf):
    bad = call(sf, "POST", JOBS, json={"object": "Contact", "operation": "upsert"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALIDJOB"
    missing = call(sf, "GET", f"{JOBS}/750000000000000AAA")
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
    job = new_job(sf)
    upload(sf, job["id"], "Ext_Id__c,LastName\nA-1,X\n")
    assert close(sf, job["id"], "Aborted").json()["state"] == "Aborted"
    assert upload(sf, job["id"], "Ext_Id__c\nA-2\n").json()[0]["errorCode"] == "INVALIDJOBSTATE"
    assert close(sf, job["id"]).status_code == 400
    assert [r["Ext_Id__c"] for r in rows(sf, job["id"], "unprocessedrecords")] == ["A-1"]
    assert sf.effects("salesforce") == []


def test_a_failed_upload_keeps_nothing_and_a_dropped_close_still_closed_the_job(sf):
    job = new_job(sf)
    sf.config(fail_before_commit_next=1)
    failed = upload(sf, job["id"], "Ext_Id__c,LastName\nD-1,X\n")
    assert failed.status_code == 500 and failed.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    sf.config(drop_after_commit_next=1)
    with pytest.raises(DROPPED):
        upload(sf, job["id"], "Ext_Id__c,LastName\nD-1,X\n")
    sf.config(drop_after_commit_next=1)
    with pytest.raises(DROPPED):
        close(sf, job["id"])
    assert close(sf, job["id"]).json()[0]["errorCode"] == "INVALIDJOBSTATE"  # already closed
    info, _ = poll(sf, job["id"])
    assert info["state"] == "JobComplete" and info["numberRecordsProcessed"] == 1
    assert [e["kind"] for e in sf.effects("salesforce")] == ["create"]
