"""salesforce.bulk_query (Bulk API 2.0) through the real stack: the job waits in
`waiting_vendor` while the sandbox's query job runs, then pages the CSV results by locator."""

from __future__ import annotations

import requests

from sandbox.salesforce import contact_id

TOOL = "salesforce.bulk_query"
SOQL = "SELECT Id, Email, Account.Name FROM Contact"
JOBS = "/salesforce/services/data/v62.0/jobs/query"


def test_waits_for_the_vendor_then_pages_csv_results_by_locator(api, fresh_sandbox, api_log):
    fresh_sandbox.config(volumes={"salesforce.contacts": 2500})
    account = api.account(fresh_sandbox, "salesforce")
    job = api.call(TOOL, account_id=account, args={"soql": SOQL, "max_records": 1000},
                   delivery="blocks")  # fmt: skip
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "succeeded", done
    waits = [h for h in done["history"] if h["status"] == "waiting_vendor"]
    assert [w["reason"].split(";")[0] for w in waits] == [
        "job created", "Bulk API: UploadComplete", "Bulk API: InProgress"]  # fmt: skip
    records = api.records(job["job_id"])
    assert [r["Id"] for r in records] == [contact_id(i) for i in range(1, 2501)]
    assert set(records[0]) == {"Id", "Email", "Account.Name"}  # CSV columns, flat
    assert done["progress"]["pages"] == 3  # result pages; polls are not pages

    log = api_log("salesforce")
    assert [(e["method"], e["path"].removeprefix(JOBS)) for e in log] == [
        ("POST", ""),
        *[("GET", "/" + log[1]["path"].rsplit("/", 1)[1])] * 3,
        *[("GET", f"/{log[1]['path'].rsplit('/', 1)[1]}/results")] * 3,
    ]
    pages = [e["query"] for e in log[4:]]
    assert pages == ["maxRecords=1000"] + [f"maxRecords=1000&locator={n}" for n in (1000, 2000)]


def test_large_results_span_export_blocks_with_every_row_once(api, fresh_sandbox):
    fresh_sandbox.config(volumes={"salesforce.contacts": 3000})
    account = api.account(fresh_sandbox, "salesforce")
    job = api.call(TOOL, account_id=account, args={"soql": SOQL, "max_records": 2000},
                   delivery="blocks", max_bytes=32768)  # fmt: skip
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "succeeded", done
    assert done["progress"]["blocks"] > 3
    ids = [r["Id"] for r in api.records(job["job_id"])]
    assert ids == [contact_id(i) for i in range(1, 3001)]


def test_vendor_side_failure_fails_the_job_with_salesforces_reason(api, fresh_sandbox, api_log):
    reason = "InvalidBatch : Failed to process query: FUNCTIONALITY_NOT_ENABLED"
    requests.post(f"{fresh_sandbox.url}/salesforce/_sandbox/bulk", json={"fail_next": reason},
                  timeout=5).raise_for_status()  # fmt: skip
    account = api.account(fresh_sandbox, "salesforce")
    job = api.call(TOOL, account_id=account, args={"soql": SOQL})
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "failed", done
    assert done["error"] == {"code": "bulk_job_failed", "message": reason}
    assert not any(e["path"].endswith("/results") for e in api_log("salesforce"))


def test_bad_soql_is_refused_when_the_job_is_created(api, fresh_sandbox, api_log):
    account = api.account(fresh_sandbox, "salesforce")
    job = api.call(TOOL, account_id=account, args={"soql": "SELECT FROM"})
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "MALFORMED_QUERY"
    assert len(api_log("salesforce")) == 1
