"""Shopify sandbox speaks Shopify: link paging, call-limit bucket, GraphQL cost, OAuth."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.shopify import (
    CUSTOMER_BASE,
    ORDER_BASE,
    SHOP_DOMAIN,
    UNAUTHORIZED,
    _encode_cursor,
    customer,
    tokenize,
)

API = "/shopify/admin/api/2025-10"
CUSTOMERS = f"{API}/customers.json"
ORDERS = f"{API}/orders.json"
GRAPHQL = f"{API}/graphql.json"
TOKEN = "/shopify/admin/oauth/access_token"
CALL_LIMIT = "X-Shopify-Shop-Api-Call-Limit"
PAGE_QUERY = (
    "query($after: String) { customers(first: 100, after: $after) "
    "{ nodes { id email } pageInfo { hasNextPage endCursor } } }"
)


def shop(account: dict) -> dict[str, str]:
    return {"X-Shopify-Access-Token": account["access_token"]}


def links(resp) -> dict[str, str]:
    header = resp.headers.get("link", "")
    return (
        {link["rel"]: link["url"] for link in requests.utils.parse_header_links(header)}
        if header
        else {}
    )


def page_info(url: str) -> str:
    return parse_qs(urlsplit(url).query)["page_info"][0]


def configure(client, **changes) -> None:
    assert client.post("/_sandbox/config", json=changes).status_code == 200


@pytest.fixture
def client(make_client):
    c = make_client(rate_budget=100_000, rate_window_ms=1000)
    configure(c, volumes={"shopify.customers": 620, "shopify.orders": 300})
    return c


def test_rest_link_paging_every_id_once_and_no_link_on_last_page(client, mint):
    h = shop(mint(client, "shopify"))
    ids: list[int] = []
    params: dict = {"limit": 250}
    pages = []
    while True:
        resp = client.get(CUSTOMERS, params=params, headers=h)
        assert resp.status_code == 200
        assert set(resp.json()) == {"customers"}
        ids += [c["id"] for c in resp.json()["customers"]]
        pages.append(links(resp))
        if "next" not in pages[-1]:
            break
        params = {"limit": 250, "page_info": page_info(pages[-1]["next"])}
    assert ids == [CUSTOMER_BASE + i for i in range(1, 621)]
    assert [sorted(p) for p in pages] == [["next"], ["next", "previous"], ["previous"]]
    # The link is absolute on the shop, carries page_info and limit only (Shopify's order:
    # previous first), and following it as given works.
    middle = client.get(
        CUSTOMERS, params={"limit": 250, "page_info": page_info(pages[0]["next"])}, headers=h
    )
    raw = middle.headers["link"]
    assert raw.index('rel="previous"') < raw.index('rel="next"')
    nxt = links(middle)["next"]
    assert nxt.startswith(f"http://testserver{CUSTOMERS}?page_info=") and nxt.endswith("&limit=250")
    assert client.get(nxt, headers=h).json()["customers"][0]["id"] == CUSTOMER_BASE + 501
    prev = client.get(links(middle)["previous"], headers=h).json()["customers"]
    assert [c["id"] for c in prev] == [CUSTOMER_BASE + i for i in range(1, 251)]
    # One page only: no link header at all; default limit 50.
    single = client.get(
        CUSTOMERS, params={"limit": 250, "created_at_max": customer(40)["created_at"]}, headers=h
    )
    assert len(single.json()["customers"]) == 40 and "link" not in single.headers
    assert len(client.get(CUSTOMERS, headers=h).json()["customers"]) == 50


def test_customer_record_shape_and_fields(client, mint):
    h = shop(mint(client, "shopify"))
    rec = client.get(CUSTOMERS, params={"limit": 7}, headers=h).json()["customers"][6]
    assert {
        "id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "created_at",
        "updated_at",
        "orders_count",
        "state",
    } <= set(rec)
    assert isinstance(rec["id"], int) and rec["created_at"].endswith("-05:00")
    assert not rec["first_name"].isascii()  # every 7th customer has a multi-byte name
    resp = client.get(CUSTOMERS, params={"limit": 2, "fields": "id,email"}, headers=h)
    assert all(set(c) == {"id", "email"} for c in resp.json()["customers"])
    assert "fields=id%2Cemail" in links(resp)["next"]  # fields may ride along with page_info
    again = client.get(links(resp)["next"], headers=h).json()["customers"]
    assert all(set(c) == {"id", "email"} for c in again)


def test_orders_status_filter_and_filters_carried_by_page_info(client, mint):
    h = shop(mint(client, "shopify"))
    every = client.get(ORDERS, params={"status": "any", "limit": 250}, headers=h)
    assert len(every.json()["orders"]) == 250 and "next" in links(every)
    open_ = client.get(ORDERS, params={"limit": 250}, headers=h).json()["orders"]  # default open
    assert open_ and all(o["closed_at"] is None for o in open_)
    cancelled = client.get(ORDERS, params={"status": "cancelled", "limit": 10}, headers=h)
    first = [o["id"] - ORDER_BASE for o in cancelled.json()["orders"]]
    assert first == list(range(9, 91, 9)) and all(
        o["cancelled_at"] for o in cancelled.json()["orders"]
    )
    second = client.get(links(cancelled)["next"], headers=h).json()["orders"]
    assert [o["id"] - ORDER_BASE for o in second] == list(range(99, 181, 9))
    order = every.json()["orders"][0]
    assert order["name"] == "#1001" and order["customer"]["id"] > CUSTOMER_BASE
    assert order["line_items"] and order["total_price"]


def test_rest_400_shapes(client, mint):
    h = shop(mint(client, "shopify"))
    first = client.get(ORDERS, params={"status": "any", "limit": 5}, headers=h)
    info = page_info(links(first)["next"])
    cases = [
        ({"page_info": "garbage"}, {"errors": "page_info - Invalid value."}),
        (
            {"page_info": info, "status": "any"},
            {
                "status": "status cannot be passed when "
                "page_info is present. See https://shopify.dev/api/usage/pagination-rest for more "
                "information."
            },
        ),
        ({"limit": 251}, {"errors": "limit - Invalid value."}),
        ({"created_at_min": "yesterday"}, {"errors": "created_at_min - Invalid value."}),
    ]
    for params, body in cases:
        resp = client.get(ORDERS, params=params, headers=h)
        assert resp.status_code == 400, params
        assert resp.json() == body
        assert CALL_LIMIT in resp.headers
    # A customers page_info is not an orders one.
    cust = client.get(CUSTOMERS, params={"limit": 5}, headers=h)
    resp = client.get(ORDERS, params={"page_info": page_info(links(cust)["next"])}, headers=h)
    assert resp.json() == {"errors": "page_info - Invalid value."}
    # Versions: a malformed one is a 404; an old one falls forward.
    assert client.get("/shopify/admin/api/v1/customers.json", headers=h).json() == {
        "errors": "Not Found"
    }
    old = client.get("/shopify/admin/api/2019-10/customers.json", headers=h)
    assert old.status_code == 200 and old.headers["X-Shopify-API-Version"] == "2025-01"


def test_401_shape(client, mint):
    for headers in (
        {},
        {"X-Shopify-Access-Token": "shpat_nope"},
        {"Authorization": f"Bearer {mint(client, 'shopify')['access_token']}"},
    ):
        for resp in (
            client.get(CUSTOMERS, headers=headers),
            client.post(GRAPHQL, json={"query": PAGE_QUERY}, headers=headers),
        ):
            assert resp.status_code == 401
            assert resp.json() == {"errors": UNAUTHORIZED}
            assert CALL_LIMIT not in resp.headers
    expired = mint(client, "shopify", expires_in=0)
    assert client.get(CUSTOMERS, headers=shop(expired)).json() == {"errors": UNAUTHORIZED}


def test_leaky_bucket_header_429_and_leak(make_client, mint):
    client = make_client(rate_budget=100_000, rate_window_ms=1000)
    configure(client, rate_budgets={"shopify": 4})  # 4 calls, leaking 4/s
    h = shop(mint(client, "shopify"))
    used = [
        client.get(CUSTOMERS, params={"limit": 1}, headers=h).headers[CALL_LIMIT] for _ in range(4)
    ]
    assert [u.split("/")[1] for u in used] == ["4"] * 4
    assert used[0] == "1/4" and used[-1] in ("3/4", "4/4")
    refused = [client.get(CUSTOMERS, params={"limit": 1}, headers=h) for _ in range(2)]
    resp = next(r for r in refused if r.status_code == 429)
    assert resp.json() == {
        "errors": "Exceeded 2 calls per second for api client. Reduce "
        "request rates to resume uninterrupted service."
    }
    assert resp.headers["Retry-After"] == "2.0"
    assert resp.headers[CALL_LIMIT] == "4/4"
    time.sleep(0.3)  # one slot leaks in 0.25 s
    assert client.get(CUSTOMERS, params={"limit": 1}, headers=h).status_code == 200
    assert client.get("/_sandbox/stats").json()["rate_limited"] >= 1


def test_graphql_nodes_edges_paging_and_cost(client, mint):
    h = shop(mint(client, "shopify"))
    ids: list[str] = []
    after = None
    while True:
        doc = client.post(
            GRAPHQL, json={"query": PAGE_QUERY, "variables": {"after": after}}, headers=h
        ).json()
        conn = doc["data"]["customers"]
        assert set(conn) == {"nodes", "pageInfo"}
        ids += [n["id"] for n in conn["nodes"]]
        cost = doc["extensions"]["cost"]
        assert cost["requestedQueryCost"] == 102
        assert cost["actualQueryCost"] == len(conn["nodes"]) + 2
        assert cost["throttleStatus"]["maximumAvailable"] == 2_500_000.0
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert ids == [f"gid://shopify/Customer/{CUSTOMER_BASE + i}" for i in range(1, 621)]
    assert conn["pageInfo"]["endCursor"] == _encode_cursor(CUSTOMER_BASE + 620)

    edges_query = """
    query Orders($after: String, $n: Int!) {
      o: orders(first: $n, after: $after, query: "status:any") {
        edges { cursor node { id name } }
        pageInfo { hasNextPage endCursor }
      }
    }"""
    doc = client.post(GRAPHQL, json={"query": edges_query, "variables": {"n": 3}}, headers=h).json()
    edges = doc["data"]["o"]["edges"]
    assert [e["node"]["name"] for e in edges] == ["#1001", "#1002", "#1003"]
    assert edges[-1]["cursor"] == doc["data"]["o"]["pageInfo"]["endCursor"]
    assert edges[0]["node"]["id"] == f"gid://shopify/Order/{ORDER_BASE + 1}"
    configure(client, volumes={"shopify.customers": 0})
    empty = client.post(GRAPHQL, json={"query": PAGE_QUERY}, headers=h).json()["data"]
    assert empty == {
        "customers": {
            "nodes": [],
            "pageInfo": {
                "hasNextPage": False,
                "hasPreviousPage": False,
                "startCursor": None,
                "endCursor": None,
            },
        }
    }


@pytest.mark.parametrize("status", [200, 429])
def test_graphql_throttled(make_client, mint, status):
    client = make_client(rate_budget=100_000, rate_window_ms=1000)
    budgets = {"shopify.graphql": 250}  # 250 points restoring 250/s
    if status == 429:
        budgets["shopify.graphql_429"] = 1
    configure(client, rate_budgets=budgets)
    h = shop(mint(client, "shopify"))
    answers = [client.post(GRAPHQL, json={"query": PAGE_QUERY}, headers=h) for _ in range(3)]
    throttled = next(r for r in answers if "errors" in r.json())
    assert throttled.status_code == status
    body = throttled.json()
    assert body["errors"] == [
        {
            "message": "Throttled",
            "extensions": {
                "code": "THROTTLED",
                "documentation": "https://shopify.dev/api/usage/rate-limits",
            },
        }
    ]
    assert "data" not in body
    cost = body["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 102 and cost["actualQueryCost"] is None
    assert cost["throttleStatus"]["maximumAvailable"] == 250.0
    assert cost["throttleStatus"]["restoreRate"] == 250.0
    assert cost["throttleStatus"]["currentlyAvailable"] < 102
    time.sleep(0.5)
    assert "data" in client.post(GRAPHQL, json={"query": PAGE_QUERY}, headers=h).json()
    # A query that can never fit is refused for good, not throttled.
    big = PAGE_QUERY.replace("first: 100", "first: 250")
    doc = client.post(GRAPHQL, json={"query": big}, headers=h).json()
    assert doc["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


def test_graphql_error_shapes(client, mint):
    h = shop(mint(client, "shopify"))

    def errors(query: str, **variables):
        resp = client.post(GRAPHQL, json={"query": query, "variables": variables}, headers=h)
        assert resp.status_code == 200
        return resp.json()["errors"]

    assert errors("query { customers(first: 5) { nodes { id } } }}") == [
        {
            "message": 'Parse error on "}" (RCURLY) at [1, 47]',
            "locations": [{"line": 1, "column": 47}],
        }
    ]
    assert errors("shop { name }")[0]["message"] == 'Parse error on "shop" (IDENTIFIER) at [1, 1]'
    assert errors("{ customers(first: 5) { nodes { id }")[0]["message"] == (
        "Unexpected end of document"
    )
    undefined = errors(
        "query($after: String) {\n  products(first: 5, after: $after) { nodes { id } } }"
    )
    assert undefined == [
        {
            "message": "Field 'products' doesn't exist on type 'QueryRoot'",
            "locations": [{"line": 2, "column": 3}],
            "path": ["query", "products"],
            "extensions": {
                "code": "undefinedField",
                "typeName": "QueryRoot",
                "fieldName": "products",
            },
        }
    ]
    assert (
        errors("{ customers(first: 5, after: $after) { nodes { id } } }")[0]["extensions"]["code"]
        == "variableNotDefined"
    )
    assert errors("{ customers { nodes { id } } }")[0]["message"] == (
        "you must provide one of first or last"
    )
    assert errors(PAGE_QUERY, after="bm9wZQ==")[0]["message"] == (
        "Invalid cursor for current pagination sort."
    )
    orders_cursor = _encode_cursor(ORDER_BASE + 5)  # another collection's cursor
    assert errors(PAGE_QUERY, after=orders_cursor)[0]["message"] == (
        "Invalid cursor for current pagination sort."
    )
    missing = client.post(GRAPHQL, json={"variables": {}}, headers=h)
    assert missing.status_code == 400
    assert missing.json() == {"errors": {"query": "Required parameter missing or invalid"}}
    raw = client.post(
        GRAPHQL,
        content="{ customers(first: 2) { nodes { id } } }",
        headers={**h, "Content-Type": "application/graphql"},
    )
    assert len(raw.json()["data"]["customers"]["nodes"]) == 2


def test_tokenizer_positions():
    toks = tokenize('query($a: String) {\n  x(q: "a}b", n: -1.5) # c }\n}')
    assert [t.kind for t in toks][:4] == ["NAME", "(", "VAR", ":"]
    assert ("STRING", '"a}b"') in [(t.kind, t.value) for t in toks]
    assert toks[-1].line == 3 and toks[-1].column == 1


def refresh(
    client, account: dict, refresh_token: str | None = None, *, as_json: bool = False, **over: str
):
    form = {
        "grant_type": "refresh_token",
        "client_id": account["client_id"],
        "client_secret": account["client_secret"],
        "refresh_token": refresh_token or account["refresh_token"],
        **over,
    }
    return client.post(TOKEN, json=form) if as_json else client.post(TOKEN, data=form)


def test_refresh_rotates_and_reuse_is_invalid_grant(make_client, mint):
    client = make_client(token_ttl_s=3600)
    account = mint(client, "shopify")
    resp = refresh(client, account)
    assert resp.status_code == 200
    doc = resp.json()
    assert set(doc) == {
        "access_token",
        "expires_in",
        "refresh_token",
        "refresh_token_expires_in",
        "scope",
    }
    assert doc["expires_in"] == 3600 and doc["refresh_token"] != account["refresh_token"]
    assert client.get(CUSTOMERS, headers=shop(doc)).status_code == 200

    reused = refresh(client, account)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert reused.json()["error_description"].startswith("The provided authorization grant")
    again = refresh(client, account, doc["refresh_token"], as_json=True)  # JSON works too
    assert again.status_code == 200 and again.json()["refresh_token"] != doc["refresh_token"]

    bad_client = refresh(client, account, again.json()["refresh_token"], client_secret="no")
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    wrong_grant = refresh(client, account, grant_type="authorization_code")
    assert wrong_grant.json()["error"] == "unsupported_grant_type"
    assert client.get("/_sandbox/stats").json()["refresh_calls"]["shopify"] == 5
    log = client.get("/_sandbox/requests", params={"vendor": "shopify"}).json()
    assert [e["status"] for e in log if e["kind"] == "token"] == [200, 400, 200, 401, 400]
    assert all(account["refresh_token"] not in str(e) for e in log)


def test_volume_and_deep_page_are_cheap(make_client, mint):
    client = make_client()
    configure(client, volumes={"shopify.customers": 1_000_000})
    h = shop(mint(client, "shopify"))
    after = _encode_cursor(CUSTOMER_BASE + 999_900)
    t0 = time.monotonic()
    doc = client.post(
        GRAPHQL, json={"query": PAGE_QUERY, "variables": {"after": after}}, headers=h
    ).json()
    assert [n["legacyResourceId"] for n in doc["data"]["customers"]["nodes"]] == [
        str(CUSTOMER_BASE + i) for i in range(999_901, 1_000_001)
    ]
    assert doc["data"]["customers"]["pageInfo"]["hasNextPage"] is False
    assert time.monotonic() - t0 < 2


# ---- bulk operations and the bulk_operations/finish webhook ---------------------------------

BULK = "/shopify/_sandbox/bulk"
HOOKS = "/shopify/_sandbox/webhooks"
RUN = (
    "mutation($q: String!) { bulkOperationRunQuery(query: $q) "
    "{ bulkOperation { id status } userErrors { field message } } }"
)
CURRENT = (
    "{ currentBulkOperation(type: QUERY) "
    "{ id status errorCode objectCount url partialDataUrl createdAt completedAt } }"
)
BULK_CUSTOMERS = "{ customers { edges { node { id email } } } }"
SECRET = "shpss_sandbox_secret"


class Hooks:
    """A tiny webhook receiver on loopback: every POST's headers and raw body."""

    def __init__(self) -> None:
        got: list[dict] = []
        self.got = got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                got.append({"headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": body})  # fmt: skip
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/shopify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.got


@pytest.fixture
def hooks():
    h = Hooks()
    yield h
    h.server.shutdown()


def run_bulk(client, h, query: str = BULK_CUSTOMERS) -> dict:
    resp = client.post(GRAPHQL, json={"query": RUN, "variables": {"q": query}}, headers=h)
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]["bulkOperationRunQuery"]


def current(client, h) -> dict | None:
    return client.post(GRAPHQL, json={"query": CURRENT}, headers=h).json()["data"][
        "currentBulkOperation"
    ]


def test_bulk_finish_webhook_is_signed_and_shaped_like_shopifys(client, mint, hooks):
    h = shop(mint(client, "shopify"))
    assert client.post(HOOKS, json={"callback_url": hooks.url, "secret": SECRET}).status_code == 200
    client.post(BULK, json={"duration_s": 0.3}).raise_for_status()
    started = run_bulk(client, h)
    assert started["userErrors"] == []
    gid = started["bulkOperation"]["id"]
    assert started["bulkOperation"]["status"] == "CREATED"
    assert gid.startswith("gid://shopify/BulkOperation/")
    [hook] = hooks.wait(1)
    raw, headers = hook["body"], hook["headers"]
    digest = hmac.new(SECRET.encode(), raw, hashlib.sha256).digest()
    assert headers["x-shopify-hmac-sha256"] == base64.b64encode(digest).decode()
    assert headers["x-shopify-topic"] == "bulk_operations/finish"
    assert headers["x-shopify-shop-domain"] == SHOP_DOMAIN == "toolqueue-sandbox.myshopify.com"
    assert headers["x-shopify-api-version"] == "2025-10"
    assert headers["content-type"] == "application/json"
    uuid.UUID(headers["x-shopify-webhook-id"])
    uuid.UUID(headers["x-shopify-event-id"])
    assert datetime.fromisoformat(headers["x-shopify-triggered-at"].replace("Z", "+00:00"))
    body = json.loads(raw)
    assert list(body) == [
        "admin_graphql_api_id", "completed_at", "created_at", "error_code", "status", "type"
    ]  # fmt: skip
    assert body["admin_graphql_api_id"] == gid
    assert (body["error_code"], body["status"], body["type"]) == (None, "completed", "query")
    done = current(client, h)
    assert done["id"] == gid and done["status"] == "COMPLETED" and done["objectCount"] == "620"
    created = datetime.fromisoformat(body["created_at"])
    completed = datetime.fromisoformat(body["completed_at"])
    assert created.utcoffset() is not None  # the shop's zone, with its offset
    assert created == datetime.fromisoformat(done["createdAt"].replace("Z", "+00:00"))
    assert completed == datetime.fromisoformat(done["completedAt"].replace("Z", "+00:00"))
    # the signature covers the exact bytes: one byte changed, and it no longer verifies
    tampered = hmac.new(SECRET.encode(), raw.replace(b"completed", b"COMPLETED", 1),
                        hashlib.sha256).digest()  # fmt: skip
    assert base64.b64encode(tampered).decode() != headers["x-shopify-hmac-sha256"]
    log = client.get(HOOKS).json()
    assert log["subscriptions"] == [{"topic": "bulk_operations/finish", "callback_url": hooks.url}]
    assert [(a["url"], a["status"], a["operation"]) for a in log["attempts"]] == [
        (hooks.url, 200, gid)
    ]
    assert SECRET not in json.dumps(log)


def test_duplicate_delivery_shares_the_event_id_and_failures_say_failed(client, mint, hooks):
    h = shop(mint(client, "shopify"))
    client.post(HOOKS, json={"callback_url": hooks.url, "secret": SECRET}).raise_for_status()
    client.post(BULK, json={"duration_s": 0.2, "webhook_copies": 2, "fail_next": True})
    gid = run_bulk(client, h)["bulkOperation"]["id"]
    first, second = hooks.wait(2)
    assert first["body"] == second["body"]
    assert first["headers"]["x-shopify-event-id"] == second["headers"]["x-shopify-event-id"]
    assert first["headers"]["x-shopify-webhook-id"] != second["headers"]["x-shopify-webhook-id"]
    body = json.loads(first["body"])
    assert body["admin_graphql_api_id"] == gid
    assert (body["status"], body["error_code"]) == ("failed", "internal_server_error")
    failed = current(client, h)
    assert failed["status"] == "FAILED" and failed["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert failed["url"] is None and failed["partialDataUrl"] is None
    time.sleep(0.3)
    assert len(hooks.got) == 2


def test_no_webhook_and_reset_forget_operations_and_subscriptions(client, mint, hooks):
    h = shop(mint(client, "shopify"))
    client.post(HOOKS, json={"callback_url": hooks.url, "secret": SECRET}).raise_for_status()
    client.post(BULK, json={"duration_s": 0.2, "no_webhook": True}).raise_for_status()
    run_bulk(client, h)
    time.sleep(0.5)
    assert current(client, h)["status"] == "COMPLETED" and hooks.got == []
    client.post(BULK, json={"duration_s": 0.4, "no_webhook": False}).raise_for_status()
    assert run_bulk(client, h)["userErrors"] == []
    assert client.post("/_sandbox/reset").status_code == 200  # before it completes
    h = shop(mint(client, "shopify"))
    time.sleep(0.7)
    assert hooks.got == []  # the reset dropped the operation and the subscription
    assert current(client, h) is None
    assert client.get(HOOKS).json()["subscriptions"] == []
    assert client.get(BULK).json() == {
        "settings": {"duration_s": 1.0, "fail_next": False, "partial_next": False,
                     "webhook_copies": 1, "no_webhook": False},
        "operations": [],
    }  # fmt: skip


def test_bulk_lifecycle_one_at_a_time_and_the_signed_file(client, mint):
    h = shop(mint(client, "shopify"))
    client.post(BULK, json={"duration_s": 0.6}).raise_for_status()
    gid = run_bulk(client, h)["bulkOperation"]["id"]
    assert current(client, h)["status"] in ("CREATED", "RUNNING")
    busy = run_bulk(client, h, "{ orders { nodes { id } } }")
    assert busy == {
        "bulkOperation": None,
        "userErrors": [
            {
                "field": ["query"],
                "message": "A bulk query operation for this app and shop is already in "
                f"progress: {gid}.",
            }
        ],
    }
    time.sleep(0.3)
    assert current(client, h)["status"] == "RUNNING"
    time.sleep(0.4)
    done = current(client, h)
    assert done["status"] == "COMPLETED" and done["completedAt"] and done["partialDataUrl"] is None
    url = done["url"]
    lines = client.get(url).text.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"id": f"gid://shopify/Customer/{CUSTOMER_BASE + i}", "email": customer(i)["email"]}
        for i in range(1, 621)
    ]
    assert client.get(url, headers=h).status_code == 400  # a token next to the signature
    assert client.get(url, headers={"Authorization": "Bearer x"}).status_code == 400
    assert client.get(url.split("?")[0]).status_code == 403  # unsigned
    assert client.get(url.replace("signature=", "signature=x")).status_code == 403
    by_id = "query($id: ID!) { node(id: $id) { ... on BulkOperation { id status url } } }"
    node = client.post(GRAPHQL, json={"query": by_id, "variables": {"id": gid}}, headers=h)
    assert node.json()["data"]["node"] == {"id": gid, "status": "COMPLETED", "url": url}
    other = {"id": "gid://shopify/BulkOperation/1"}
    node = client.post(GRAPHQL, json={"query": by_id, "variables": other}, headers=h)
    assert node.json()["data"]["node"] is None
    # partial data: FAILED, TIMEOUT, the first half of the lines
    client.post(BULK, json={"duration_s": 0.1, "partial_next": True}).raise_for_status()
    run_bulk(client, h)
    time.sleep(0.2)
    failed = current(client, h)
    assert (failed["status"], failed["errorCode"], failed["url"]) == ("FAILED", "TIMEOUT", None)
    assert failed["objectCount"] == "310"
    partial = client.get(failed["partialDataUrl"]).text.splitlines()
    assert [json.loads(line)["id"] for line in partial] == [
        f"gid://shopify/Customer/{CUSTOMER_BASE + i}" for i in range(1, 311)
    ]


def test_bulk_query_validation_and_cost(client, mint):
    h = shop(mint(client, "shopify"))
    literal = (
        'mutation { bulkOperationRunQuery(query: """\n  {\n    orders {\n      edges { node '
        '{ id lineItems { edges { node { id sku } } } } }\n    }\n  }\n""") '
        "{ bulkOperation { id } userErrors { message } } }"
    )
    doc = client.post(GRAPHQL, json={"query": literal}, headers=h).json()
    assert doc["data"]["bulkOperationRunQuery"]["userErrors"] == []
    assert doc["extensions"]["cost"]["actualQueryCost"] == 10
    assert current(client, h) is not None
    client.post("/_sandbox/reset")
    h = shop(mint(client, "shopify"))
    for query, message in [
        ("{ customers { edges { node { id emale } } } }",
         "Invalid bulk query: Field 'emale' doesn't exist on type 'Customer'"),
        ("{ customers { pageInfo { hasNextPage } } }",
         "Invalid bulk query: Bulk queries must select the nodes of connection 'customers'"),
        ("{ orders { edges { node { totalPriceSet } } } }",
         "Invalid bulk query: Field must have selections (field 'totalPriceSet'"),
        ("{ customers { edges { node { id", "Invalid bulk query: Unexpected end of document"),
    ]:  # fmt: skip
        answer = run_bulk(client, h, query)
        assert answer["bulkOperation"] is None
        [error] = answer["userErrors"]
        assert error["field"] == ["query"] and error["message"].startswith(message), error
    assert current(client, h) is None
    configure(client, rate_budgets={"shopify.graphql": 12})  # 12 points, restoring 12/s
    assert run_bulk(client, h)["userErrors"] == []
    throttled = client.post(GRAPHQL, json={"query": RUN, "variables": {"q": BULK_CUSTOMERS}},
                            headers=h).json()  # fmt: skip
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert throttled["extensions"]["cost"]["requestedQueryCost"] == 10
