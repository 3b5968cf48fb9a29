"""Bulk API 2.0 query jobs: create, poll, read the CSV results page by page.

A job moves UploadComplete -> InProgress -> JobComplete one state per status read (so a test
controls time by polling, not by sleeping); ``POST /_sandbox/bulk {"fail_next": "reason"}``
makes the next job end ``Failed`` with that errorMessage instead. Results are CSV pages of
``maxRecords`` rows, chained by the ``Sforce-Locator`` header, the literal ``null`` on the last.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.salesforce.data import sf_id
from sandbox.salesforce.http import errors, gate, not_found
from sandbox.salesforce.soql import Query, SoqlError, parse_soql, rows

BULK_MAX_RECORDS = 50_000

router = APIRouter()


@dataclass
class BulkJob:
    id: str
    query: Query
    total: int
    reads: int = 0
    fail: str | None = None

    @property
    def state(self) -> str:
        if self.reads < 1:
            return "UploadComplete"
        if self.reads < 2:
            return "InProgress"
        return "Failed" if self.fail else "JobComplete"


def _bulk(request: Request) -> dict[str, Any]:
    store = getattr(request.app.state, "salesforce_bulk", None)
    if store is None:
        store = request.app.state.salesforce_bulk = {"jobs": {}, "fail_next": None, "seq": 0}
    return store


def _bulk_info(job: BulkJob) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": job.id,
        "operation": "query",
        "object": job.query.sobject.name,
        "state": job.state,
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": 62.0,
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    }
    if job.state == "JobComplete":
        info["numberRecordsProcessed"] = job.total
    if job.state == "Failed":
        info["errorMessage"] = job.fail
    return info


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


@router.post("/_sandbox/bulk")
async def bulk_control(request: Request) -> Response:
    """Sandbox-only: `{"fail_next": "<errorMessage>"}` fails the next query job."""
    _bulk(request)["fail_next"] = (await request.json()).get("fail_next")
    return JSONResponse({"ok": True})


@router.post("/services/data/{version}/jobs/query")
async def bulk_create(request: Request, version: str) -> Response:
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    try:
        body = await request.json()
    except ValueError:
        return errors(400, "JSON_PARSER_ERROR", "Unexpected character in request body", headers)
    if not isinstance(body, dict) or body.get("operation") not in ("query", "queryAll"):
        return errors(400, "INVALIDJOB", "InvalidJob : operation must be query", headers)
    try:
        parsed = parse_soql(str(body.get("query") or ""))
    except SoqlError as exc:
        return errors(400, exc.code, exc.message, headers)
    store = _bulk(request)
    store["seq"] += 1
    total = rows(parsed, sandbox_state(request).config.volume(parsed.sobject.volume))
    job = BulkJob(sf_id("750", store["seq"]), parsed, total, fail=store["fail_next"])
    store["fail_next"] = None
    store["jobs"][job.id] = job
    return JSONResponse(_bulk_info(job), headers=headers)


async def _bulk_job(request: Request, job_id: str) -> tuple[BulkJob | Response, dict[str, str]]:
    """The gate, then the job (or a 404 in Salesforce's shape)."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied, headers
    job = _bulk(request)["jobs"].get(job_id)
    if job is None:
        return not_found(headers), headers
    return job, headers


@router.get("/services/data/{version}/jobs/query/{job_id}")
async def bulk_status(request: Request, version: str, job_id: str) -> Response:
    job, headers = await _bulk_job(request, job_id)
    if not isinstance(job, BulkJob):
        return job
    info = _bulk_info(job)
    job.reads += 1
    return JSONResponse(info, headers=headers)


def _csv_rows(job: BulkJob, start: int, stop: int) -> list[str]:
    """The header line and rows ``start..stop`` of a job's result, relationship paths dotted."""
    lines = [",".join(".".join(path) for path in job.query.fields)]
    for k in range(start, stop):
        full = job.query.sobject.row(job.query.offset + k + 1)
        row = []
        for path in job.query.fields:
            value: Any = full
            for part in path:
                value = value.get(part) if isinstance(value, dict) else None
            row.append(_csv_value(value))
        lines.append(",".join(row))
    return lines


@router.get("/services/data/{version}/jobs/query/{job_id}/results")
async def bulk_results(request: Request, version: str, job_id: str) -> Response:
    job, headers = await _bulk_job(request, job_id)
    if not isinstance(job, BulkJob):
        return job
    if job.state != "JobComplete":
        return errors(400, "INVALIDJOBSTATE", f"Job is in state {job.state}", headers)
    raw_max = request.query_params.get("maxRecords", str(BULK_MAX_RECORDS))
    locator = request.query_params.get("locator") or "0"
    if not raw_max.isdigit() or int(raw_max) < 1 or not locator.isdigit():
        return errors(400, "INVALID_QUERY_LOCATOR", "invalid locator or maxRecords", headers)
    start, size = int(locator), min(int(raw_max), BULK_MAX_RECORDS)
    stop = min(job.total, start + size)
    headers = {
        **headers,
        "Sforce-Locator": str(stop) if stop < job.total else "null",
        "Sforce-NumberOfRecords": str(stop - start),
    }
    body = "\n".join(_csv_rows(job, start, stop)) + "\n"
    return Response(body, media_type="text/csv", headers=headers)
