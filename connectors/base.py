"""The connector contract: a tool is pydantic args plus a `fetch` that returns one page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from connectors.writes import Route, Write

Cursor = Any  # JSON-able, opaque to everything but the tool that made it
Record = dict[str, Any]


@dataclass
class Page:
    records: list[Record]
    next_cursor: Cursor | None  # None: this was the last page
    # The vendor is still working (an async export): look again from `next_cursor` after
    # this many seconds. The job waits in `waiting_vendor`; no worker waits with it.
    wait_s: float | None = None
    note: str = ""  # what the vendor said, for the job's history
    # The vendor announces the end of this async work by webhook (`connectors.inbound`): the
    # vendor-side id its event will carry. An event naming it resumes the job at once; `wait_s`
    # is then only the polling fallback.
    await_ref: str | None = None


class Http(Protocol):
    """What a connector may do on the wire; auth, refresh and timeouts are handled for it."""

    base_url: str
    vendor: Vendor

    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...

    def download(self, url: str) -> bytes: ...


def _not_a_read(http: Http, args: Any, cursor: Cursor | None) -> Page:
    raise TypeError("a write tool has no pages to fetch")


def _record_id(record: Record) -> str:
    return str(record.get("id", "?"))


@dataclass(frozen=True)
class Tool:
    """A tool and what it does to the vendor's data: `read_only`, `destructive`, `idempotent`
    and `open_world` are advertised as the MCP tool annotations (`hints`) in every listing.
    A read `fetch`es pages; a write has `write` (`connectors.writes`) and is never read-only."""

    name: str  # vendor.resource.action
    description: str
    args: type[BaseModel]
    fetch: Callable[[Http, Any, Cursor | None], Page] = _not_a_read
    record_id: Callable[[Record], str] = _record_id
    vendors: tuple[str, ...] = ()  # accounts it runs on; default: the name's prefix
    read_only: bool = True  # changes nothing at the vendor
    destructive: bool = False  # a write may delete or overwrite (False: only adds)
    # a repeated call has no further effect; None: as `read_only` (a read repeats safely, a
    # write is not taken to unless it says so)
    idempotent: bool | None = None
    open_world: bool = True  # talks to an outside SaaS
    write: Write | None = None  # the operations a write tool performs
    # a unified write: the vendor tool the account's vendor runs it as (`connectors.writes`)
    routes: dict[str, Route] | None = None

    def __post_init__(self) -> None:
        if self.read_only and self.destructive:
            raise ValueError(f"{self.name}: a read-only tool cannot be destructive")
        if self.write is not None and self.read_only:
            raise ValueError(f"{self.name}: a write tool is not read-only")

    @property
    def vendor(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def accepts(self) -> tuple[str, ...]:
        return self.vendors or (self.vendor,)

    @property
    def repeat_safe(self) -> bool:
        """`idempotent`, resolved: a read is, a write only when it says so."""
        return self.read_only if self.idempotent is None else self.idempotent

    @property
    def hints(self) -> dict[str, bool]:
        """The MCP ToolAnnotations hints under their wire names, every one sent (the spec's
        defaults assume a destructive write; destructive/idempotent count only for writes)."""
        return {
            "readOnlyHint": self.read_only,
            "destructiveHint": self.destructive,
            "idempotentHint": self.repeat_safe,
            "openWorldHint": self.open_world,
        }


def _no_errors(resp: Any) -> None:
    return None


@dataclass(frozen=True)
class RatePolicy:
    """A vendor's documented request budget per account: the seed of the shared budget,
    which then learns from what responses report."""

    limit: int  # requests per window
    window_s: float
    fixed: bool = False  # the window resets all at once at a reported instant (not rolling)


@dataclass(frozen=True)
class Vendor:
    name: str
    base_url: str  # the real API host; an account's base_url overrides it
    token_url: str  # OAuth refresh endpoint (absolute, or relative to base_url)
    classify: Callable[[Any], None] = _no_errors  # raise the vendor's errors (even on 200)
    tools: tuple[Tool, ...] = ()
    auth_header: str = "Authorization"
    auth_format: str = "Bearer {token}"
    rate_limit: str = ""  # the dialect's name
    budget: RatePolicy | None = None  # None: no documented per-account budget to pace by
    limits_in_body: bool = False  # 2xx bodies may carry a throttle (Shopify GraphQL cost)
    extra: dict[str, Any] = field(default_factory=dict)
