"""CRM exports (async): start, poll, download a signed CSV.

An export moves PENDING -> PROCESSING -> COMPLETE one state per status read, so tests control
time by polling. ``POST /hubspot/_sandbox/export {"cancel_next": true}`` ends the next one
CANCELED. The result is a signed download URL on the sandbox host (HubSpot's is a short-lived
signed file URL): no bearer token, the signature is the credential.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.hubspot.data import KNOWN_PROPERTIES, contact
from sandbox.hubspot.http import NAME, error, rate_gate

SCOPE = "crm.objects.contacts.read"
REQUIRED = (
    "exportType (VIEW|LIST), format CSV, objectType CONTACT and objectProperties are required"
)

router = APIRouter()


@dataclass
class Export:
    id: str
    properties: list[str]
    total: int
    signature: str
    reads: int = 0
    cancel: bool = False

    @property
    def status(self) -> str:
        if self.reads < 1:
            return "PENDING"
        if self.reads < 2:
            return "PROCESSING"
        return "CANCELED" if self.cancel else "COMPLETE"


def _exports(request: Request) -> dict[str, Any]:
    store = getattr(request.app.state, "hubspot_exports", None)
    if store is None:
        store = request.app.state.hubspot_exports = {"exports": {}, "cancel_next": False}
    return store


def _properties(raw: bytes) -> list[str]:
    """The ``objectProperties`` of a valid export request (``ValueError`` says why not)."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise ValueError("Invalid input JSON") from None
    props = body.get("objectProperties") if isinstance(body, dict) else None
    if (
        not isinstance(body, dict)
        or body.get("objectType") != "CONTACT"
        or body.get("format") != "CSV"
        or body.get("exportType") not in ("VIEW", "LIST")
        or not isinstance(props, list)
        or not props
    ):
        raise ValueError(REQUIRED)
    unknown = [p for p in props if p not in KNOWN_PROPERTIES]
    if unknown:
        raise ValueError(f"Unknown properties: {unknown}")
    return list(props)


@router.post("/_sandbox/export")
async def export_control(request: Request) -> Response:
    """Sandbox-only: `{"cancel_next": true}` ends the next export CANCELED."""
    _exports(request)["cancel_next"] = bool((await request.json()).get("cancel_next"))
    return JSONResponse({"ok": True})


@router.post("/crm/v3/exports/export/async")
async def export_start(request: Request) -> Response:
    denied, headers = await rate_gate(request, SCOPE)
    if denied is not None:
        return denied
    try:
        props = _properties(await request.body())
    except ValueError as exc:
        return error(400, str(exc), "VALIDATION_ERROR", headers)
    store = _exports(request)
    export = Export(
        str(len(store["exports"]) + 5_000_001),
        props,
        sandbox_state(request).config.volume("hubspot.contacts"),
        base64.urlsafe_b64encode(os.urandom(12)).decode(),
        cancel=store["cancel_next"],
    )
    store["cancel_next"] = False
    store["exports"][export.id] = export
    status = f"{str(request.base_url).rstrip('/')}/{NAME}/crm/v3/exports/export/async/tasks"
    return JSONResponse(
        {"id": export.id, "links": {"status": f"{status}/{export.id}/status"}},
        status_code=202,
        headers=headers,
    )


@router.get("/crm/v3/exports/export/async/tasks/{export_id}/status")
async def export_status(request: Request, export_id: str) -> Response:
    denied, headers = await rate_gate(request, SCOPE)
    if denied is not None:
        return denied
    export = _exports(request)["exports"].get(export_id)
    if export is None:
        return error(404, f"Export {export_id} not found", "OBJECT_NOT_FOUND", headers)
    body: dict[str, Any] = {"id": export.id, "taskId": export.id, "status": export.status}
    if export.status == "COMPLETE":
        files = f"{str(request.base_url).rstrip('/')}/{NAME}/_files/exports"
        body["result"] = f"{files}/{export.id}.csv?signature={export.signature}"
        body["numPartitions"] = 1
    if export.status == "CANCELED":  # HubSpot's ActionResponse: the reason in `errors`
        body["numErrors"] = 1
        body["errors"] = [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Export canceled by a user of the portal",
            }
        ]
    export.reads += 1
    return JSONResponse(body, headers=headers)


@router.get("/_files/exports/{name}")
async def export_file(request: Request, name: str) -> Response:
    """The export's CSV: columns `objectProperties`, one row per contact. Like a presigned
    storage URL it refuses a request that also carries an Authorization header."""
    if "authorization" in request.headers:  # as S3 answers a presigned URL plus a token
        return Response(
            "InvalidArgument: Only one auth mechanism allowed",
            status_code=400,
            media_type="text/plain",
        )
    export = _exports(request)["exports"].get(name.removesuffix(".csv"))
    if export is None or request.query_params.get("signature") != export.signature:
        return Response("AccessDenied", status_code=403, media_type="text/plain")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(export.properties)
    for i in range(1, export.total + 1):
        props = contact(i)["properties"]
        writer.writerow([props.get(p, "") for p in export.properties])
    return Response(out.getvalue(), media_type="text/csv")
