"""hubspot.contacts.export (CRM exports API) through the real stack: the job waits in
`waiting_vendor` while the sandbox builds the export, then downloads the signed file."""

from __future__ import annotations

from functools import partial

import pytest
import requests

from app.kernel.ssrf import check_public_url
from connectors.errors import VendorError
from connectors.http import VendorHttp
from connectors.hubspot import VENDOR

TOOL = "hubspot.contacts.export"
EXPORTS = "/hubspot/crm/v3/exports/export/async"


def test_export_waits_for_hubspot_then_downloads_every_contact_once(api, fresh_sandbox, api_log):
    fresh_sandbox.config(hubspot_contacts=2500)
    account = api.account(fresh_sandbox)
    job = api.call(TOOL, account_id=account, args={"properties": ["email", "firstname"]},
                   delivery="blocks")  # fmt: skip
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "succeeded", done
    waits = [h["reason"].split(";")[0] for h in done["history"] if h["status"] == "waiting_vendor"]
    assert waits == ["export started", "HubSpot export: PENDING", "HubSpot export: PROCESSING"]
    records = api.records(job["job_id"])
    assert [r["hs_object_id"] for r in records] == [str(i) for i in range(1, 2501)]
    assert set(records[0]) == {"hs_object_id", "email", "firstname"}
    assert done["progress"]["blocks"] > 1
    log = api_log("hubspot")
    assert [e["method"] for e in log] == ["POST", "GET", "GET", "GET", "GET"]
    assert log[0]["path"] == EXPORTS and log[1]["path"].endswith("/status")
    assert log[-1]["path"].startswith("/hubspot/_files/exports/")  # the signed file


def test_download_never_carries_the_access_token(api, fresh_sandbox, api_log):
    """The file URL is signed by HubSpot; like a presigned storage URL, the sandbox refuses it
    when a bearer token comes along, so the job above succeeding means ours did not travel."""
    fresh_sandbox.config(hubspot_contacts=10)
    job = api.call(TOOL, account_id=api.account(fresh_sandbox))
    assert api.wait(job["job_id"], timeout=60)["status"] == "succeeded"
    status = next(e for e in api_log("hubspot") if e["path"].endswith("/status"))
    token = fresh_sandbox.mint()["access_token"]
    file_url = requests.get(  # the link, as the worker saw it (the sandbox serves it again)
        f"{fresh_sandbox.url}{status['path']}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()["result"]
    assert requests.get(file_url.split("?")[0], timeout=5).status_code == 403  # unsigned
    with_token = requests.get(file_url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert with_token.status_code == 400
    assert requests.get(file_url, timeout=5).status_code == 200  # the signature suffices
    assert [e["status"] for e in api_log("hubspot") if "/_files/" in e["path"]][0] == 200


def test_canceled_export_fails_the_job_with_hubspots_reason(api, fresh_sandbox, api_log):
    requests.post(f"{fresh_sandbox.url}/hubspot/_sandbox/export", json={"cancel_next": True},
                  timeout=5).raise_for_status()  # fmt: skip
    job = api.call(TOOL, account_id=api.account(fresh_sandbox))
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "export_canceled"
    assert done["error"]["message"] == (
        "HubSpot canceled the export: Export canceled by a user of the portal")
    assert not any("/_files/" in e["path"] for e in api_log("hubspot"))


def test_download_url_is_ssrf_checked_before_any_traffic():
    """A file link pointing inside the network is refused by resolution and address class."""
    http = VendorHttp(VENDOR, "http://127.0.0.1:9", lambda force: "t",
                      url_guard=partial(check_public_url, field="download_url"))  # fmt: skip
    for url in ("http://10.0.0.1/export.csv", "http://169.254.169.254/latest/meta-data"):
        with pytest.raises(VendorError) as err:
            http.download(url)
        assert err.value.code == "download_refused" and "non-public" in err.value.message


def test_export_polls_are_paced_by_the_account_budget(api, fresh_sandbox, api_log):
    """Polls are vendor requests like any other: with HubSpot stating 2 per 3 s, the poll
    schedule (0.5 s, 1 s, ...) would cross the limit; the step waits for a budget slot in
    `waiting_rate_limit` instead, and HubSpot never refuses a request."""
    fresh_sandbox.config(hubspot_contacts=10, rate_budget=2, rate_window_ms=3000)
    job = api.call(TOOL, account_id=api.account(fresh_sandbox))
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "succeeded", done
    assert "waiting_rate_limit" in [h["status"] for h in done["history"]]
    log = [e for e in api_log("hubspot") if "/_files/" not in e["path"]]  # the limited API
    assert [e["status"] for e in log] == [202, 200, 200, 200]
    times = [e["t"] for e in log]
    assert all(b - a >= 3.0 - 0.05 for a, b in zip(times, times[2:], strict=False))  # 2 / 3 s


def test_a_capped_export_continues_where_the_cap_fell(api, fresh_sandbox, api_log):
    """Async results obey the cap and continuation of every job: each continuation job reads
    HubSpot's finished export again (no second export) from the record after the cap."""
    fresh_sandbox.config(hubspot_contacts=1200)
    job_id = api.call(TOOL, account_id=api.account(fresh_sandbox),
                      args={"properties": ["email"]}, max_bytes=16384)["job_id"]  # fmt: skip
    seen: list[str] = []
    bodies = 0
    while True:
        assert api.wait(job_id, timeout=60)["status"] == "succeeded"
        body = api.result(job_id)
        bodies += 1
        seen += [r["hs_object_id"] for r in body["records"]]
        if not body["truncated"]:
            break
        assert bodies < 20, "the continuation chain does not end"
        resp = api.post("/v1/jobs", {"continuation": body["continuation"]})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
    assert bodies > 2
    assert seen == [str(i) for i in range(1, 1201)]  # every row once, in order
    assert [e["method"] for e in api_log("hubspot")].count("POST") == 1
