"""/v1/proxy/{account_id}/{path}: one fast vendor call, answered synchronously."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from app.api.auth import tenant_id
from app.services import proxy

router = APIRouter(prefix="/v1", tags=["proxy"])
PREFIX = "/v1/proxy/"  # bodies under it are the vendor's: forwarded as they are, never parsed


async def _body(request: Request) -> bytes:
    """Read in the event loop (BodyLimit has capped it) so the route can run in the pool."""
    return await request.body()


DESCRIPTION = (
    "The vendor's status, body and content-type come back as they are (marked with an "
    "`x-toolqueue-upstream: <vendor>` header), plus normalized `ratelimit-limit`, "
    "`ratelimit-remaining`, `ratelimit-reset` (and `retry-after`) headers. A vendor "
    "rate-limit refusal is a 429 with `Retry-After`; the proxy never retries except once "
    "after a 401, with a refreshed token. Responses over 10 MiB are a 502."
)


def _raw_path(request: Request, path: str) -> str:
    """The path as the caller encoded it (so `%2F` inside a segment survives)."""
    raw = request.scope.get("raw_path")
    if isinstance(raw, bytes):
        parts = raw.decode("latin-1").split("?", 1)[0].split("/", 4)
        if len(parts) == 5 and parts[1:3] == ["v1", "proxy"]:
            return parts[4]
    return path


def proxy_call(
    account_id: str,
    path: str,
    request: Request,
    tenant: str = Depends(tenant_id),
    body: bytes = Depends(_body),
) -> Response:
    """Forward to the account's base URL + path (query and body as sent)."""
    result = proxy.forward(
        tenant,
        account_id,
        request.method,
        _raw_path(request, path),
        request.scope.get("query_string", b"").decode("latin-1"),
        dict(request.headers),
        body,
    )
    return Response(result.body, status_code=result.status, headers=result.headers)


for _method in proxy.METHODS:  # one operation per method: distinct OpenAPI operation ids
    router.add_api_route(
        "/proxy/{account_id}/{path:path}",
        proxy_call,
        methods=[_method],
        operation_id=f"proxy_{_method.lower()}",
        summary=f"{_method} through to the account's vendor API, with its auth injected",
        description=DESCRIPTION,
        responses={
            429: {"description": "the vendor's rate limit refused the call"},
            502: {"description": "upstream unavailable, or its response is too large"},
            504: {"description": "upstream timeout"},
        },
    )
