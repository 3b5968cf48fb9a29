"""Bulk API 2.0 ingest for `salesforce.records.upsert`: one ingest job per operation.

The first `send` of an operation creates the job (`POST jobs/ingest`, operation upsert by
the External ID field), uploads its records as one CSV (`PUT …/batches`), closes it
(`PATCH {"state": "UploadComplete"}`) and raises `Pending` with the job's id: Salesforce
processes it asynchronously, and the runner saves the id with the cursor and calls `send`
again later with `op.pending` set, which polls `GET jobs/ingest/{id}` (so a redelivered step
polls the same job, never creates a second). Once the job is terminal, `successfulResults`
(`sf__Id`, `sf__Created`), `failedResults` (`sf__Error` = `CODE:message:fields --`) and
`unprocessedrecords` map back to record indexes by the external id value.

Should a worker stop between creating and closing the job (nothing saved yet), the operation
is uncertain and resent as a new job: an upsert, so re-running it changes nothing.
CSV cells: a field a record lacks is empty (left unchanged, as the guide says); None is
`#N/A` (set to null); booleans `true`/`false`.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from connectors.base import Http
from connectors.writes import ItemResult, Operation, Pending, rejected

INGEST = "/services/data/v62.0/jobs/ingest"
JOB_RECORDS = 10_000  # records per ingest job (one operation): its results are one commit
POLL_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # then every 30 s
TERMINAL = ("JobComplete", "Failed", "Aborted")


def run(http: Http, op: Operation, sobject: str, ext_field: str) -> list[ItemResult]:
    """Start the operation's ingest job (raises `Pending`), or poll the one started."""
    if op.pending is None:
        job = _start(http, op, sobject, ext_field)
        raise Pending({"job": job, "polls": 0}, POLL_S[0], f"Bulk API ingest job {job} closed")
    job, polls = str(op.pending["job"]), int(op.pending.get("polls", 0))
    info = http.request("GET", f"{INGEST}/{job}").json()
    state = str(info.get("state"))
    if state not in TERMINAL:
        wait = POLL_S[min(polls + 1, len(POLL_S) - 1)]
        raise Pending({"job": job, "polls": polls + 1}, wait, f"Bulk API ingest: {state}")
    return _results(http, op, job, ext_field, info)


def _start(http: Http, op: Operation, sobject: str, ext_field: str) -> str:
    body = {
        "object": sobject,
        "externalIdFieldName": ext_field,
        "operation": "upsert",
        "contentType": "CSV",
        "lineEnding": "LF",
    }
    job = str(http.request("POST", INGEST, json=body).json()["id"])
    data = to_csv([p.fields for p in op.payloads], ext_field)
    http.request(
        "PUT", f"{INGEST}/{job}/batches", data=data.encode(), headers={"Content-Type": "text/csv"}
    )
    http.request("PATCH", f"{INGEST}/{job}", json={"state": "UploadComplete"})
    return job


def to_csv(records: list[dict[str, Any]], ext_field: str) -> str:
    """The upload: the external id column first, then every other field in first-seen order."""
    header = [ext_field]
    for rec in records:
        header += [k for k in rec if k not in header]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[cell(rec, name) for name in header] for rec in records])
    return out.getvalue()


def cell(rec: dict[str, Any], name: str) -> str:
    if name not in rec:
        return ""
    value = rec[name]
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _rows(http: Http, job: str, kind: str) -> list[dict[str, str]]:
    resp = http.request("GET", f"{INGEST}/{job}/{kind}", headers={"Accept": "text/csv"})
    return list(csv.DictReader(io.StringIO(resp.content.decode("utf-8"))))


def _results(
    http: Http, op: Operation, job: str, ext_field: str, info: dict[str, Any]
) -> list[ItemResult]:
    """Each record's outcome from the three result sets, matched by its external id value."""
    by_ext = {cell(p.fields, ext_field): i for i, p in op.items}
    out: dict[int, ItemResult] = {}
    for row in _rows(http, job, "successfulResults"):
        i = by_ext.get(row.get(ext_field, ""))
        if i is not None:
            created = row.get("sf__Created", "").lower() == "true"
            out[i] = ItemResult(i, "created" if created else "updated", row.get("sf__Id") or None)
    for row in _rows(http, job, "failedResults"):
        i = by_ext.get(row.get(ext_field, ""))
        if i is not None:
            out[i] = failed(i, row.get("sf__Error", ""))
    why = str(info.get("errorMessage") or f"the Bulk API job ended {info.get('state')}")
    for i, _ in op.items:
        out.setdefault(i, rejected(i, "UNPROCESSED", why, job=job))
    return [out[i] for i, _ in op.items]


def failed(i: int, error: str) -> ItemResult:
    """`sf__Error` is `CODE:message:fields --`."""
    code, _, rest = error.partition(":")
    message, _, fields = rest.rpartition(":") if ":" in rest else (rest, "", "")
    names = [f for f in fields.removesuffix("--").strip().split(",") if f.strip()]
    extra = {"fields": [n.strip() for n in names]} if names else {}
    return rejected(i, code or "REJECTED", message or error, **extra)
