"""The exception hierarchy every surface maps to HTTP in one place (`app.api.errors`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any


class ToolqueueError(Exception):
    """Base: a machine-readable `code`, a message that says what to fix, an HTTP status."""

    status = 400
    code = "bad_request"
    headers: Mapping[str, str] = MappingProxyType({})  # sent with the answer (`app.api.errors`)

    def __init__(self, message: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.extra}


class Unauthorized(ToolqueueError):
    status = 401
    code = "unauthorized"


class Forbidden(ToolqueueError):
    """The key is known but may not do this (its scopes, tools or accounts; a policy)."""

    status = 403
    code = "forbidden"


class NotFound(ToolqueueError):
    """Also what another tenant sees for an object that exists: never a 403 with details."""

    status = 404
    code = "not_found"


class Conflict(ToolqueueError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ToolqueueError):
    status = 413
    code = "request_too_large"


class InvalidInput(ToolqueueError):
    status = 422
    code = "invalid_request"


class TooManyRequests(ToolqueueError):
    """Carries `Retry-After` and the `ratelimit-*` headers, so a client knows when to retry."""

    status = 429
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, headers: Mapping[str, str], **extra: Any) -> None:
        super().__init__(message, **extra)
        self.headers = dict(headers)


class StoreUnavailable(ToolqueueError):
    """The job store (Redis) cannot be reached, or did not answer in time: nothing to fix in
    the request, retry after `retry_after_s` (also the `Retry-After` header)."""

    status = 503
    code = "store_unavailable"
    RETRY_AFTER_S = 2

    def __init__(
        self, message: str | None = None, *, retry_after_s: int = RETRY_AFTER_S, **extra: Any
    ) -> None:
        super().__init__(
            message or f"the job store is unreachable right now; retry in {retry_after_s} s",
            retry_after_s=retry_after_s,
            **extra,
        )
        self.headers = {"Retry-After": str(retry_after_s)}
