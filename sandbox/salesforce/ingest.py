"""Bulk API 2.0 ingest jobs (upsert by External ID): create, upload CSV, close, poll, results.

As the Bulk API 2.0 Developer Guide documents (developer.salesforce.com/docs/atlas.en-us.
api_asynch.meta/api_asynch: "Create a Job", "Upload Job Data", "Close or Abort a Job", "Get Job
Info", "Get Job Successful/Failed/Unprocessed Record Results", "Walkthrough for Bulk Upsert"):

- ``POST /services/data/vXX.X/jobs/ingest`` ``{"object", "externalIdFieldName", "operation":
  "upsert", "contentType": "CSV", "lineEnding": "LF"|"CRLF"}`` → 200 job info, ``state: "Open"``,
  ``contentUrl`` (``services/data/vXX.X/jobs/ingest/{id}/batches``); ``contentType`` only CSV,
  ``lineEnding`` defaults to LF, ``externalIdFieldName`` required for upsert.
- ``PUT …/jobs/ingest/{id}/batches``, ``text/csv``: a header row of field names, one row per
  record → 201, no body. Only an ``Open`` job takes data.
- ``PATCH …/jobs/ingest/{id}`` ``{"state": "UploadComplete"}`` (or ``"Aborted"``) → job info.
- ``GET …/jobs/ingest/{id}``: ``UploadComplete`` → ``InProgress`` → ``JobComplete`` (or
  ``Failed`` with ``errorMessage``), ``numberRecordsProcessed`` (failed rows included),
  ``numberRecordsFailed``; unknown id → 404 ``NOT_FOUND``.
- ``GET …/successfulResults``: CSV ``"sf__Id","sf__Created",<original columns>``;
  ``…/failedResults``: ``"sf__Id","sf__Error",<original columns>`` (``sf__Error`` is
  ``CODE:message:fields --``); ``…/unprocessedrecords``: the original columns.

Sandbox choices: only ``upsert`` on ``Contact``/``Account``, by a custom (``…__c``) field, into the
store the sObject Collections upsert uses (:func:`sandbox.salesforce.writes.upsert`), so either
path finds the same records, effects included. Records are written when the job is closed;
its state then advances with time, ``processing_ms`` (default :data:`PROCESSING_MS`, set by
``POST /salesforce/_sandbox/ingest {"processing_ms": n}``): UploadComplete for the first half,
InProgress for the second, then terminal; results before JobComplete → 400 ``INVALIDJOBSTATE``.
An empty cell leaves a field unchanged (as the guide says; ``#N/A`` would null it, not modelled).
Row errors: no external id value → ``MISSING_ARGUMENT``; a value for a field
``salesforce_locked_fields`` names → ``INVALID_FIELD_FOR_INSERT_UPDATE`` (field-level security, as
for sObject Collections; the setting when the job is closed decides); a new record without its
required field (Contact ``LastName``, Account ``Name``) → ``REQUIRED_FIELD_MISSING``. A header
column the sObject lacks fails the whole job (``Failed``, ``InvalidBatch : Field name not found :
X``, every row unprocessed), as Salesforce rejects a batch whose header does not match. Write
faults: upload and close are the writes: ``fail_before_commit_next`` → 500 ``UNKNOWN_EXCEPTION``,
nothing kept; ``drop_after_commit_*`` → the data kept / the job closed (records written), the answer
cut; ``write_latency_ms`` holds both. Only an ``Open`` job can be aborted.
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.salesforce.data import sf_id
from sandbox.salesforce.http import VERSION, errors, gate, not_found
from sandbox.salesforce.writes import (
    PREFIXES,
    STANDARD,
    existing,
    locked_error,
    locked_fields,
    upsert,
)
from sandbox.writes import delivered, hold

router = APIRouter()

PROCESSING_MS = 500
REQUIRED = {"Contact": "LastName", "Account": "Name"}
INGEST = "/services/data/{version}/jobs/ingest"
Row = dict[str, str]


@dataclass
class IngestJob:
    id: str
    sobject: str
    ext_field: str
    version: str
    line_ending: str
    state: str = "Open"  # Open | UploadComplete | Aborted (then time decides, see ``state_of``)
    header: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    closed_at: float = 0.0
    done: list[tuple[Row, str, bool]] = field(default_factory=list)  # (row, sf__Id, created)
    failed: list[tuple[Row, str]] = field(default_factory=list)  # (row, sf__Error)
    error: str | None = None  # the whole job failed


def _store(request: Request) -> dict[str, Any]:
    store = getattr(request.app.state, "salesforce_ingest", None)
    if store is None:
        store = {"jobs": {}, "seq": 0, "processing_ms": PROCESSING_MS}
        request.app.state.salesforce_ingest = store
    return store


def state_of(job: IngestJob, processing_ms: int) -> str:
    """The state a status read shows: closed jobs advance with the time since closing."""
    if job.state != "UploadComplete":
        return job.state
    elapsed_ms = (time.monotonic() - job.closed_at) * 1000
    if elapsed_ms < processing_ms / 2:
        return "UploadComplete"
    if elapsed_ms < processing_ms:
        return "InProgress"
    return "Failed" if job.error else "JobComplete"


def _info(job: IngestJob, state: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": job.id,
        "operation": "upsert",
        "object": job.sobject,
        "externalIdFieldName": job.ext_field,
        "state": state,
        "concurrencyMode": "Parallel",
        "contentType": "CSV",
        "apiVersion": float(job.version[1:]),
        "contentUrl": f"services/data/{job.version}/jobs/ingest/{job.id}/batches",
        "lineEnding": job.line_ending,
        "columnDelimiter": "COMMA",
    }
    if state in ("JobComplete", "Failed"):
        info["numberRecordsProcessed"] = len(job.done) + len(job.failed)
        info["numberRecordsFailed"] = len(job.failed)
    if state == "Failed":
        info["errorMessage"] = job.error
    return info


# ---- processing ---------------------------------------------------------------------------


def _row_error(job: IngestJob, row: Row, exists: bool, locked: frozenset[str]) -> str | None:
    """``sf__Error`` for a row Salesforce rejects, or None; an empty cell sets nothing."""
    if not row.get(job.ext_field):
        return f"MISSING_ARGUMENT:{job.ext_field} not specified:{job.ext_field} --"
    refused = locked_error(locked, {k: v for k, v in row.items() if v != ""})
    if refused is not None:
        return f"{refused['statusCode']}:{refused['message']}:{','.join(refused['fields'])} --"
    required = REQUIRED[job.sobject]
    if not exists and not row.get(required):
        return f"REQUIRED_FIELD_MISSING:Required fields are missing: [{required}]:{required} --"
    return None


def _unknown_column(job: IngestJob) -> str | None:
    for name in job.header:
        if name not in STANDARD[job.sobject] and not name.endswith("__c"):
            return name
    return None


def process(request: Request, job: IngestJob) -> None:
    """Run the closed job's upserts in row order, recording each row's outcome."""
    if (bad := _unknown_column(job)) is not None:
        job.error = f"InvalidBatch : Field name not found : {bad}"
        return
    locked = locked_fields(request)
    for row in job.rows:
        found = existing(request, job.sobject, job.ext_field, row.get(job.ext_field))
        problem = _row_error(job, row, found is not None, locked)
        if problem is not None:
            job.failed.append((row, problem))
            continue
        fields = {k: v for k, v in row.items() if v != ""}
        result = upsert(request, job.sobject, job.ext_field, fields)
        job.done.append((row, result["id"], result["created"]))


# ---- the HTTP surface --------------------------------------------------------------------


@router.post("/_sandbox/ingest")
async def ingest_control(request: Request) -> Response:
    """Sandbox-only: ``{"processing_ms": n}`` sets how long a closed ingest job takes."""
    body = await request.json()
    _store(request)["processing_ms"] = max(0, int(body.get("processing_ms", PROCESSING_MS)))
    return JSONResponse({"ok": True, "processing_ms": _store(request)["processing_ms"]})


def _create_problem(body: Any) -> str | None:
    """Why a create-job body is refused (``InvalidJob : …``), or None."""
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if body.get("operation") != "upsert":
        return "the sandbox supports operation upsert only"
    if body.get("object") not in PREFIXES:
        return f"Unable to find object: {body.get('object')}"
    ext = body.get("externalIdFieldName")
    if not isinstance(ext, str) or not ext.endswith("__c"):
        return "External ID field is required for upsert and must be an External ID field"
    if body.get("contentType", "CSV") != "CSV" or body.get("lineEnding", "LF") not in (
        "LF",
        "CRLF",
    ):
        return "contentType must be CSV and lineEnding LF or CRLF"
    return None


@router.post(INGEST)
async def create_job(request: Request, version: str) -> Response:
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    if not VERSION.match(version):
        return not_found(headers)
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return errors(400, "JSON_PARSER_ERROR", "Unexpected character in request body", headers)
    if (problem := _create_problem(body)) is not None:
        return errors(400, "INVALIDJOB", f"InvalidJob : {problem}", headers)
    store = _store(request)
    store["seq"] += 1
    job = IngestJob(
        sf_id("750", 100_000 + store["seq"]),
        body["object"],
        body["externalIdFieldName"],
        version,
        body.get("lineEnding", "LF"),
    )
    store["jobs"][job.id] = job
    return JSONResponse(_info(job, job.state), headers=headers)


async def _job(request: Request, job_id: str) -> tuple[IngestJob | Response, dict[str, str]]:
    """The gate, then the job (or a 404 in Salesforce's shape)."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied, headers
    job = _store(request)["jobs"].get(job_id)
    return (job if job is not None else not_found(headers)), headers


def _write_fault(request: Request, headers: dict[str, str]) -> Response | None:
    if sandbox_state(request).take_fail_before_commit():
        message = "An unexpected error occurred. Please include this ErrorId if you contact support"
        return errors(500, "UNKNOWN_EXCEPTION", message, headers)
    return None


def _bad_state(job: IngestJob, headers: dict[str, str]) -> Response:
    return errors(400, "INVALIDJOBSTATE", f"Job is in state {job.state}", headers)


def _parse_csv(text: str) -> tuple[list[str], list[Row]] | None:
    lines = list(csv.reader(io.StringIO(text)))
    if not lines or not lines[0]:
        return None
    header = lines[0]
    return header, [dict(zip(header, line, strict=False)) for line in lines[1:] if line]


@router.put(INGEST + "/{job_id}/batches")
async def upload(request: Request, version: str, job_id: str) -> Response:
    job, headers = await _job(request, job_id)
    if not isinstance(job, IngestJob):
        return job
    if (fault := _write_fault(request, headers)) is not None:
        return fault
    if job.state != "Open":
        return _bad_state(job, headers)
    parsed = _parse_csv((await request.body()).decode("utf-8", "replace"))
    if parsed is None:
        return errors(400, "INVALIDBATCH", "InvalidBatch : no header row in CSV data", headers)
    await hold(sandbox_state(request).config.write_latency_ms)
    job.header = job.header or parsed[0]
    job.rows.extend(parsed[1])
    reply = Response(status_code=201, headers=headers)
    return delivered(reply, True, sandbox_state(request).take_drop_after_commit)


def _close(request: Request, job: IngestJob, target: Any) -> bool:
    """Apply ``target`` (UploadComplete or Aborted) to an Open job; False if not allowed."""
    if job.state != "Open" or target not in ("UploadComplete", "Aborted"):
        return False
    job.state = target
    job.closed_at = time.monotonic()
    if target == "UploadComplete":
        process(request, job)
    return True


@router.patch(INGEST + "/{job_id}")
async def close_or_abort(request: Request, version: str, job_id: str) -> Response:
    job, headers = await _job(request, job_id)
    if not isinstance(job, IngestJob):
        return job
    if (fault := _write_fault(request, headers)) is not None:
        return fault
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        return errors(400, "JSON_PARSER_ERROR", "Unexpected character in request body", headers)
    target = body.get("state") if isinstance(body, dict) else None
    await hold(sandbox_state(request).config.write_latency_ms)
    if not _close(request, job, target):
        return _bad_state(job, headers)
    answer = JSONResponse(_info(job, job.state), headers=headers)
    return delivered(answer, True, sandbox_state(request).take_drop_after_commit)


@router.get(INGEST + "/{job_id}")
async def job_info(request: Request, version: str, job_id: str) -> Response:
    job, headers = await _job(request, job_id)
    if not isinstance(job, IngestJob):
        return job
    state = state_of(job, _store(request)["processing_ms"])
    return JSONResponse(_info(job, state), headers=headers)


def _csv(header: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _originals(job: IngestJob, row: Row) -> list[str]:
    return [row.get(name, "") for name in job.header]


def _results(job: IngestJob, kind: str) -> str:
    """The CSV body of one of the three result resources."""
    if kind == "successfulResults":
        rows = [[rid, str(new).lower(), *_originals(job, r)] for r, rid, new in job.done]
        return _csv(["sf__Id", "sf__Created", *job.header], rows)
    if kind == "failedResults":
        failed = [["", err, *_originals(job, r)] for r, err in job.failed]
        return _csv(["sf__Id", "sf__Error", *job.header], failed)
    untouched = job.rows if job.error or job.state == "Aborted" else []
    return _csv(job.header, [_originals(job, r) for r in untouched])


@router.get(INGEST + "/{job_id}/{kind}")
async def results(request: Request, version: str, job_id: str, kind: str) -> Response:
    job, headers = await _job(request, job_id)
    if not isinstance(job, IngestJob):
        return job
    if kind not in ("successfulResults", "failedResults", "unprocessedrecords"):
        return not_found(headers)
    state = state_of(job, _store(request)["processing_ms"])
    if state not in ("JobComplete", "Failed", "Aborted"):
        return errors(400, "INVALIDJOBSTATE", f"Job is in state {state}", headers)
    return Response(_results(job, kind), media_type="text/csv", headers=headers)
