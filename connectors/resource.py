"""A REST resource described by data (path, query, records path, pagination dialect).

Python vendor files and declarative JSON specs both end up here, so paging, templating
and record extraction are written once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel

from connectors.base import Cursor, Http, Page, Tool
from connectors.errors import VendorError
from connectors.pagination import Dialect, NoPages, PageRequest, search
from connectors.templates import render


@dataclass(frozen=True)
class Pending:
    """An answer with `status` means the vendor queued the work: ask again in `wait_s`."""

    status: int
    wait_s: float


@dataclass(frozen=True)
class Resource:
    name: str
    description: str
    args: type[BaseModel]
    path: str
    records: str  # JMESPath to the page's records
    method: str = "GET"
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    paginate: Dialect = field(default_factory=NoPages)
    record_id: str = "id"
    vendors: tuple[str, ...] = ()
    not_found_empty: bool = False  # a 404 is a page with no records (a find found nothing)
    pending: Pending | None = None

    def request(self, args: BaseModel) -> PageRequest:
        ctx = {"args": args.model_dump(mode="json")}
        query = {
            k: ("true" if v else "false") if isinstance(v, bool) else v
            for k, v in render(self.query, ctx).items()
            if v not in (None, "", [])
        }
        body = render(self.body, ctx) if self.body is not None else None
        return PageRequest(self.method, render(self.path, ctx), query, body)

    def fetch(self, http: Http, args: BaseModel, cursor: Cursor | None) -> Page:
        req = self.paginate.apply(self.request(args), cursor)
        try:
            resp = http.request(req.method, req.path, params=req.params or None, json=req.json)
        except VendorError as exc:
            if self.not_found_empty and exc.status == 404:
                return Page([], None, note=f"{self.name}: nothing found ({exc.code})")
            raise
        if self.pending and resp.status_code == self.pending.status:
            note = f"{self.name}: the vendor queued the request ({resp.status_code})"
            return Page([], cursor, wait_s=self.pending.wait_s, note=note)
        doc = orjson.loads(resp.content) if resp.content else {}
        records = search(self.records, doc) or []
        return Page(list(records), self.paginate.next(resp, doc, records))

    def tool(self) -> Tool:
        rid = self.record_id
        return Tool(
            name=self.name,
            description=self.description,
            args=self.args,
            fetch=self.fetch,
            record_id=lambda r: str(search(rid, r) if "." in rid else r.get(rid, "?")),
            vendors=self.vendors,
        )
