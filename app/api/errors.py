"""Every error to HTTP, in one place: `{"error": <code>, "message": <what to fix>}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from mcp_types import INTERNAL_ERROR, PARSE_ERROR
from starlette.exceptions import HTTPException

from app.kernel.errors import StoreUnavailable, ToolqueueError
from app.kernel.redis import STORE_ERRORS

_HTTP_CODES = {
    400: "malformed_json",  # FastAPI's only 400: a body it could not decode
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
}


def response(exc: ToolqueueError) -> JSONResponse:
    """The answer to `exc` (also for the pure-ASGI layers outside FastAPI's handlers)."""
    headers = dict(exc.headers)
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers or None)


def jsonrpc_response(exc: ToolqueueError, request_id: str | int | None) -> JSONResponse:
    """The answer to `exc` on a JSON-RPC endpoint (/mcp), same status and headers: a JSON-RPC
    error an MCP client reads (the SDK's client surfaces the error body of any 4xx/5xx) whose
    `data` is our error body. A body refused unread is a PARSE_ERROR, as the SDK's own."""
    rpc_code = INTERNAL_ERROR if exc.status >= 500 else PARSE_ERROR
    body: dict[str, Any] = {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {"code": rpc_code, "message": exc.message, "data": exc.body()},
    }
    return JSONResponse(body, status_code=exc.status, headers=dict(exc.headers) or None)


def install(app: FastAPI) -> None:
    @app.exception_handler(ToolqueueError)
    async def _toolqueue(_: Request, exc: ToolqueueError) -> JSONResponse:
        return response(exc)

    async def _store(_: Request, exc: Exception) -> JSONResponse:
        return response(StoreUnavailable())

    for error in STORE_ERRORS:  # Redis down or not answering: 503, never a plain-text 500
        app.add_exception_handler(error, _store)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse(
                {"error": "malformed_json", "message": "the request body is not valid JSON"},
                status_code=400,
            )
        parts = []
        for e in errors[:5]:
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            parts.append(f"{loc or 'body'}: {e.get('msg')}")
        details = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
            for e in errors[:20]
        ]
        return JSONResponse(
            {"error": "invalid_request", "message": "; ".join(parts), "details": details},
            status_code=422,
        )

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        return JSONResponse(
            {"error": code, "message": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )
