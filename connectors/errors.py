"""What a connector can tell a task: each outcome a distinct exception, no HTTP codes leak out."""

from __future__ import annotations


class ConnectorError(Exception):
    """A job-ending failure with a machine-readable code and the vendor's own message."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class VendorError(ConnectorError):
    """The vendor refused the request for good (4xx other than auth and rate limits)."""


class Unauthorized(VendorError):
    """The vendor's 401 in another guise (Slack `invalid_auth`/`token_expired` in a 200):
    refreshed once and retried, like a 401."""


class PaginationLoop(ConnectorError):
    def __init__(self, cursor: object) -> None:
        super().__init__("pagination_loop", f"the vendor returned cursor {cursor!r} twice")


class RateLimited(Exception):
    """Wait before the next request; `retry_after` is seconds from now, None when the vendor
    gave no timing. `budget`: the account's own budget said so, before anything was sent."""

    def __init__(
        self,
        retry_after: float | None,
        *,
        policy: str = "",
        status: int = 429,
        budget: bool = False,
    ) -> None:
        super().__init__(f"rate limited ({policy or status}); retry after {retry_after}")
        self.retry_after = retry_after
        self.policy = policy
        self.status = status
        self.budget = budget


class Transient(Exception):
    """A failure worth retrying later (5xx, timeout, connection reset). `unsent`: the request
    certainly never reached the vendor (no connection was made), so a write was not applied."""

    def __init__(self, message: str, *, status: int | None = None, unsent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.unsent = unsent


class AuthRejected(ConnectorError):
    """Credentials are no longer accepted (revoked access, refresh token rejected)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__("needs_reauth", message, status=status)
