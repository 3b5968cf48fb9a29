"""Pagination dialects, one small class each; connectors and declarative specs pick one.

A dialect turns a cursor into request changes (`apply`) and a response into the next
cursor (`next`, None on the vendor's own end signal). Cursors are JSON-able and opaque to
the rest of the system, which checkpoints them and refuses one seen twice (a loop).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import jmespath
import requests

from connectors.base import Cursor, Record


@dataclass(frozen=True)
class PageRequest:
    """One page's request: a path (or absolute URL), query params and an optional JSON body."""

    method: str
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None


_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


@lru_cache(maxsize=512)
def _plan(expr: str) -> tuple[str, ...] | Any:
    """A plain dotted path as its keys; anything else as compiled JMESPath."""
    return tuple(expr.split(".")) if _DOTTED.fullmatch(expr) else jmespath.compile(expr)


def search(expr: str, doc: Any) -> Any:
    """JMESPath; a plain dotted path (`paging.next.after`, every page) is walked directly,
    exactly as JMESPath's field lookups do (`.get`, None on anything without it)."""
    if not expr:
        return doc
    plan = _plan(expr)
    if not isinstance(plan, tuple):
        return plan.search(doc)
    for key in plan:
        try:
            doc = doc.get(key)
        except AttributeError:
            return None
    return doc


class Dialect:
    def apply(self, req: PageRequest, cursor: Cursor | None) -> PageRequest:
        return req

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        raise NotImplementedError


@dataclass(frozen=True)
class BodyCursor(Dialect):
    """Cursor in the body: HubSpot `paging.next.after`; Zendesk `meta.after_cursor` +
    `meta.has_more`; Slack `response_metadata.next_cursor` ("" ends). `in_body` puts it in
    a POST body (HubSpot search)."""

    cursor: str
    param: str
    has_more: str = ""
    in_body: bool = False

    def apply(self, req: PageRequest, cursor: Cursor | None) -> PageRequest:
        if cursor is None:
            return req
        if self.in_body:
            return replace(req, json={**(req.json or {}), self.param: cursor})
        return replace(req, params={**req.params, self.param: cursor})

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        if self.has_more and not search(self.has_more, doc):
            return None
        value = search(self.cursor, doc)
        return value if value not in (None, "") else None


@dataclass(frozen=True)
class NextUrl(Dialect):
    """Next URL in the body, relative or absolute: Salesforce `nextRecordsUrl` until
    `done`; Zendesk `links.next` with `meta.has_more`. The URL carries every parameter."""

    url: str
    done: str = ""
    has_more: str = ""

    def apply(self, req: PageRequest, cursor: Cursor | None) -> PageRequest:
        return req if cursor is None else replace(req, path=cursor, params={})

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        if self.done and search(self.done, doc) is True:
            return None
        if self.has_more and not search(self.has_more, doc):
            return None
        return search(self.url, doc) or None


@dataclass(frozen=True)
class LinkHeader(Dialect):
    """RFC 8288 `Link` header, rels in any order (GitHub `next`; Shopify `page_info`)."""

    rel: str = "next"

    def apply(self, req: PageRequest, cursor: Cursor | None) -> PageRequest:
        return req if cursor is None else replace(req, path=cursor, params={})

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        header = resp.headers.get("link", "")
        for link in requests.utils.parse_header_links(header) if header else []:
            if self.rel in link.get("rel", "").split():
                return link.get("url") or None
        return None


@dataclass(frozen=True)
class Offset(Dialect):
    """offset/startAt with `total` and/or `isLast` (Jira's classic page bean)."""

    param: str = "startAt"
    start: str = "startAt"
    total: str = "total"
    is_last: str = "isLast"

    def apply(self, req: PageRequest, cursor: Cursor | None) -> PageRequest:
        return req if cursor is None else replace(req, params={**req.params, self.param: cursor})

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        if not records or (self.is_last and search(self.is_last, doc) is True):
            return None
        nxt = int(search(self.start, doc) or 0) + len(records)
        total = search(self.total, doc) if self.total else None
        return None if isinstance(total, int) and nxt >= total else nxt


@dataclass(frozen=True)
class PageToken(Dialect):
    """A page token with `isLast` and no total (Jira `search/jql` `nextPageToken`)."""

    token: str = "nextPageToken"
    param: str = "nextPageToken"
    is_last: str = "isLast"

    def apply(self, req: PageRequest, cursor: Cursor | None) -> PageRequest:
        return req if cursor is None else replace(req, params={**req.params, self.param: cursor})

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        if self.is_last and search(self.is_last, doc) is True:
            return None
        return search(self.token, doc) or None


@dataclass(frozen=True)
class StartingAfter(Dialect):
    """`has_more` plus `starting_after` = the last object's id (Stripe)."""

    has_more: str = "has_more"
    id_field: str = "id"
    param: str = "starting_after"

    def apply(self, req: PageRequest, cursor: Cursor | None) -> PageRequest:
        return req if cursor is None else replace(req, params={**req.params, self.param: cursor})

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        if not records or not search(self.has_more, doc):
            return None
        return records[-1].get(self.id_field)


@dataclass(frozen=True)
class GraphQLPageInfo(Dialect):
    """GraphQL `pageInfo { hasNextPage endCursor }`; the cursor goes into a variable."""

    page_info: str
    variable: str = "after"

    def apply(self, req: PageRequest, cursor: Cursor | None) -> PageRequest:
        if cursor is None:
            return req
        body = dict(req.json or {})
        body["variables"] = {**body.get("variables", {}), self.variable: cursor}
        return replace(req, json=body)

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        info = search(self.page_info, doc) or {}
        return info.get("endCursor") or None if info.get("hasNextPage") else None


@dataclass(frozen=True)
class Recurse(Dialect):
    """The motivating article's spec shape: `recurse.if` decides whether there is a next
    page; `recurse.config.query` gives its query params, both templates over the response."""

    condition: str
    query: dict[str, Any]

    def apply(self, req: PageRequest, cursor: Cursor | None) -> PageRequest:
        return req if cursor is None else replace(req, params={**req.params, **cursor})

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        from connectors.templates import render

        ctx = {"response": doc, "records": records}
        if not render(self.condition, ctx):
            return None
        query = {k: render(v, ctx) for k, v in self.query.items()}
        return query if all(v not in (None, "") for v in query.values()) else None


class NoPages(Dialect):
    """A single-page resource."""

    def next(self, resp: requests.Response, doc: Any, records: list[Record]) -> Cursor | None:
        return None
