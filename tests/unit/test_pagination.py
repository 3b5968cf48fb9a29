"""Each pagination dialect on literal vendor responses: end signals and edge cases."""

from __future__ import annotations

import json
from typing import Any

import requests
from fakes import canned

from connectors import pagination as p


def resp(doc: Any = None, link: str = "") -> tuple[requests.Response, Any]:
    headers = {"Link": link} if link else None
    return canned(200, headers=headers, content=json.dumps(doc).encode()), doc


def nxt(dialect: p.Dialect, doc: Any = None, records: list | None = None, link: str = "") -> Any:
    r, d = resp(doc, link)
    return dialect.next(r, d, records if records is not None else [{"id": "x"}])


def test_hubspot_body_cursor():
    d = p.BodyCursor("paging.next.after", "after")
    assert nxt(d, {"results": [], "paging": {"next": {"after": "NTI1Cg%3D%3D"}}}) == "NTI1Cg%3D%3D"
    assert nxt(d, {"results": []}) is None  # no `paging` on the last page
    req = d.apply(p.PageRequest("GET", "/x", {"limit": 100}), "abc")
    assert req.params == {"limit": 100, "after": "abc"}
    assert d.apply(p.PageRequest("GET", "/x"), None).params == {}


def test_zendesk_cursor_with_has_more():
    d = p.BodyCursor("meta.after_cursor", "page[after]", has_more="meta.has_more")
    assert nxt(d, {"meta": {"has_more": True, "after_cursor": "xxx"}}) == "xxx"
    assert nxt(d, {"meta": {"has_more": False, "after_cursor": "xxx"}}) is None


def test_slack_empty_string_cursor_ends():
    d = p.BodyCursor("response_metadata.next_cursor", "cursor")
    assert nxt(d, {"ok": True, "response_metadata": {"next_cursor": "bmV4dA=="}}) == "bmV4dA=="
    assert nxt(d, {"ok": True, "response_metadata": {"next_cursor": ""}}) is None


def test_search_cursor_goes_into_post_body():
    d = p.BodyCursor("paging.next.after", "after", in_body=True)
    req = d.apply(p.PageRequest("POST", "/search", json={"limit": 100}), "200")
    assert req.json == {"limit": 100, "after": "200"} and req.params == {}


def test_salesforce_relative_next_url_until_done():
    d = p.NextUrl("nextRecordsUrl", done="done")
    doc = {"done": False, "nextRecordsUrl": "/services/data/v62.0/query/01gRO-500"}
    assert nxt(d, doc) == "/services/data/v62.0/query/01gRO-500"
    assert nxt(d, {"done": True, "nextRecordsUrl": "/stale"}) is None
    req = d.apply(p.PageRequest("GET", "/services/data/v62.0/query", {"q": "SELECT"}), "/n")
    assert req.path == "/n" and req.params == {}  # the URL carries everything


def test_link_header_any_rel_order_and_extra_params():
    d = p.LinkHeader()
    link = ('<https://api.github.com/repos/o/r/issues?page=515&per_page=100>; rel="last", '
            '<https://api.github.com/repos/o/r/issues?page=4&per_page=100&state=open>; '
            'rel="next", <https://api.github.com/repos/o/r/issues?page=2>; rel="prev", '
            '<https://api.github.com/repos/o/r/issues?page=1>; rel="first"')
    assert nxt(d, [], link=link) == (
        "https://api.github.com/repos/o/r/issues?page=4&per_page=100&state=open")
    assert nxt(d, [], link='<https://x/issues?page=1>; rel="first"') is None
    assert nxt(d, []) is None


def test_shopify_page_info_previous_and_next():
    d = p.LinkHeader()
    link = ('<https://shop.myshopify.com/admin/api/2025-10/customers.json?page_info=abc&limit=250>;'
            ' rel="previous", <https://shop.myshopify.com/admin/api/2025-10/customers.json?'
            'page_info=def&limit=250>; rel="next"')
    assert nxt(d, {}, link=link).endswith("page_info=def&limit=250")
    only_prev = link.split(", ")[0]
    assert nxt(d, {}, link=only_prev) is None


def test_jira_classic_offset_total_and_is_last():
    d = p.Offset()
    recs = [{"id": i} for i in range(50)]
    doc = {"startAt": 0, "maxResults": 50, "total": 120, "isLast": False}
    assert nxt(d, doc, recs) == 50
    assert nxt(d, {"startAt": 100, "total": 120, "isLast": False}, recs[:20]) is None  # total
    assert nxt(d, {"startAt": 50, "isLast": True}, recs) is None
    assert nxt(d, {"startAt": 50}, recs) == 100  # no total, no isLast: keep going
    assert nxt(d, {"startAt": 50}, []) is None  # an empty page ends


def test_jira_page_token_is_last_without_token():
    d = p.PageToken()
    assert nxt(d, {"issues": [], "isLast": False, "nextPageToken": "CAEaAggD"}) == "CAEaAggD"
    assert nxt(d, {"issues": [], "isLast": True}) is None
    assert nxt(d, {"issues": [], "isLast": True, "nextPageToken": "stale"}) is None


def test_stripe_starting_after_last_id():
    d = p.StartingAfter()
    recs = [{"id": "cus_1"}, {"id": "cus_2"}]
    assert nxt(d, {"object": "list", "has_more": True, "data": recs}, recs) == "cus_2"
    assert nxt(d, {"object": "list", "has_more": False, "data": recs}, recs) is None
    assert d.apply(p.PageRequest("GET", "/v1/customers", {"limit": 100}), "cus_2").params == {
        "limit": 100, "starting_after": "cus_2"}


def test_graphql_page_info():
    d = p.GraphQLPageInfo("data.customers.pageInfo")
    info = {"data": {"customers": {"pageInfo": {"hasNextPage": True, "endCursor": "eyJ"}}}}
    assert nxt(d, info) == "eyJ"
    info["data"]["customers"]["pageInfo"]["hasNextPage"] = False
    assert nxt(d, info) is None
    req = d.apply(p.PageRequest("POST", "/graphql.json", json={"query": "q",
                                                                "variables": {"n": 1}}), "eyJ")
    assert req.json == {"query": "q", "variables": {"n": 1, "after": "eyJ"}}


def test_article_recurse_shape():
    d = p.Recurse("{{response.meta.has_more:bool}}",
                  {"cursor": "{{response.meta.next_cursor}}"})
    assert nxt(d, {"meta": {"has_more": True, "next_cursor": "c2"}}) == {"cursor": "c2"}
    assert nxt(d, {"meta": {"has_more": False, "next_cursor": "c2"}}) is None
    assert d.apply(p.PageRequest("GET", "/t", {"a": 1}), {"cursor": "c2"}).params == {
        "a": 1, "cursor": "c2"}
