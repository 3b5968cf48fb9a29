"""The connector contract: a tool is pydantic args plus a `fetch` that returns one page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

Cursor = Any  # JSON-able, opaque to everything but the tool that made it
Record = dict[str, Any]


@dataclass
class Page:
    records: list[Record]
    next_cursor: Cursor | None  # None: this was the last page


class Http(Protocol):
    """What a connector may do on the wire; auth, refresh and timeouts are handled for it."""

    base_url: str

    def request(self, method: str, path: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Tool:
    name: str  # vendor.resource.action
    description: str
    args: type[BaseModel]
    fetch: Callable[[Http, Any, Cursor | None], Page]
    record_id: Callable[[Record], str] = field(default=lambda r: str(r.get("id", "?")))

    @property
    def vendor(self) -> str:
        return self.name.split(".", 1)[0]


@dataclass(frozen=True)
class Vendor:
    name: str
    base_url: str  # the real API host; an account's base_url overrides it
    token_url: str  # OAuth refresh endpoint (absolute, or relative to base_url)
    classify: Callable[[Any], None]  # raise the right connector error for a non-2xx response
    tools: tuple[Tool, ...] = ()
