"""Shopify tools end to end: real API, real worker, the sandbox as the shop.

Accounts point at the shop root (``<sandbox>/shopify``, like ``https://{shop}.myshopify.com``)
unless a test says otherwise; the connector adds ``/admin/api/2025-10``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs

import pytest
import requests
from fakes import FakeHttp, canned

from connectors import ratelimit
from connectors.errors import VendorError
from connectors.http import check
from connectors.shopify import VENDOR, PageInfo, api_path, classify
from sandbox.shopify import CUSTOMER_BASE, ORDER_BASE

API = "/shopify/admin/api/2025-10"


def gql(first: int = 100, connection: str = "customers", shape: str = "nodes { id email }"):
    return (
        f"query Page($after: String) {{ {connection}(first: {first}, after: $after) "
        f"{{ {shape} pageInfo {{ hasNextPage endCursor }} }} }}"
    )


# tool -> (args, volume key, id of record i, request path)
TOOLS = {
    "shopify.customers.list": (
        {"limit": 100},
        "shopify.customers",
        lambda i: CUSTOMER_BASE + i,
        f"{API}/customers.json",
    ),
    "shopify.orders.list": (
        {"limit": 100},
        "shopify.orders",
        lambda i: ORDER_BASE + i,
        f"{API}/orders.json",
    ),
    "shopify.graphql.query": (
        {"query": gql(100, "orders", "edges { cursor node { id name } }"), "connection": "orders"},
        "shopify.orders",
        lambda i: f"gid://shopify/Order/{ORDER_BASE + i}",
        f"{API}/graphql.json",
    ),
}


def ids_of(api, job: dict) -> list:
    body = api.result(job["job_id"])
    assert body["truncated"] is False
    return [r["id"] for r in body["records"]]


@pytest.fixture
def shop(api, fresh_sandbox) -> str:
    return api.account(fresh_sandbox, "shopify")


@pytest.mark.parametrize("tool", TOOLS)
def test_full_traversal_every_record_once_in_order(api, fresh_sandbox, shop, tool, run, api_log):
    args, volume, ident, path = TOOLS[tool]
    fresh_sandbox.config(volumes={volume: 1000})
    done = run(shop, tool, args, fields=["id"])
    assert done["status"] == "succeeded", (done.get("error"), done["history"][-4:])
    assert ids_of(api, done) == [ident(i) for i in range(1, 1001)]
    calls = api_log("shopify")
    # Ten pages, ten requests: nothing after the page without a next link / hasNextPage.
    assert [(e["path"], e["status"]) for e in calls] == [(path, 200)] * 10
    if tool != "shopify.graphql.query":
        first = parse_qs(calls[0]["query"])
        assert first["limit"] == ["100"]
        assert first.get("status") == (["any"] if "orders" in tool else None)
        for later in calls[1:]:  # Shopify refuses any other parameter next to page_info
            assert set(parse_qs(later["query"])) == {"page_info", "limit"}


@pytest.mark.parametrize("volume", [0, 40])
@pytest.mark.parametrize("tool", TOOLS)
def test_empty_and_single_page(api, fresh_sandbox, shop, tool, volume, run, api_log):
    args, key, ident, path = TOOLS[tool]
    fresh_sandbox.config(volumes={key: volume})
    done = run(shop, tool, args, fields=["id"])
    assert done["status"] == "succeeded", (done.get("error"), done["history"][-4:])
    assert ids_of(api, done) == [ident(i) for i in range(1, volume + 1)]
    assert [(e["path"], e["status"]) for e in api_log("shopify")] == [(path, 200)]


def test_rest_filters_reach_shopify(api, fresh_sandbox, shop, run, api_log):
    fresh_sandbox.config(volumes={"shopify.orders": 1000})
    args = {"status": "cancelled", "fields": ["id"]}
    done = run(shop, "shopify.orders.list", args, fields=["id"])
    assert done["status"] == "succeeded", (done.get("error"), done["history"][-4:])
    assert ids_of(api, done) == [ORDER_BASE + i for i in range(9, 1001, 9)]
    assert "fields=id" in api_log("shopify")[0]["query"]


@pytest.mark.parametrize(
    ("tool", "args", "code", "message"),
    [
        (
            "shopify.customers.list",
            {"created_at_min": "yesterday"},
            "http_400",
            "created_at_min - Invalid value.",
        ),
        (
            "shopify.graphql.query",
            {"query": gql() + "}", "connection": "customers"},
            "graphql_error",
            f'Parse error on "}}" (RCURLY) at [1, {len(gql()) + 1}]',
        ),
        (
            "shopify.graphql.query",
            {"query": gql(connection="products"), "connection": "products"},
            "undefinedField",
            "Field 'products' doesn't exist on type 'QueryRoot'",
        ),
        (
            "shopify.graphql.query",
            {"query": gql(), "connection": "data.customers"},
            "connection_not_found",
            "the response has no connection at `data.data.customers` (data has ['customers']); "
            "`connection` is the path inside `data`",
        ),
    ],
)
def test_vendor_errors_fail_the_job_with_shopify_code_and_message(
    api, fresh_sandbox, shop, tool, args, code, message, run, api_log
):
    done = run(shop, tool, args, fields=["id"])
    assert done["status"] == "failed", done
    assert done["error"] == {"code": code, "message": message}
    assert len(api_log("shopify")) == 1  # refused for good: not retried


def test_unknown_api_version_is_a_404(api, fresh_sandbox, run):
    account = api.account(
        fresh_sandbox, "shopify", base_url=f"{fresh_sandbox.url}/shopify/admin/api/v1"
    )
    done = run(account, "shopify.orders.list", {}, fields=["id"])
    assert done["status"] == "failed", done
    assert done["error"] == {"code": "http_404", "message": "Not Found"}


def test_graphql_args_are_checked_at_enqueue(api, shop):
    for args in (
        {"query": "{ customers(first: 5) { nodes { id } } }", "connection": "customers"},
        {"query": gql(), "connection": "customers[0]"},
        {"query": gql()},
    ):
        resp = api.post(
            "/v1/jobs", {"tool": "shopify.graphql.query", "account_id": shop, "args": args}
        )
        assert resp.status_code in (400, 422), resp.text
        assert "invalid_args" in resp.text


def test_rest_429_waits_then_completes(api, fresh_sandbox, shop, run, api_log):
    """One shop, one bucket of 4 leaking 4/s, two REST jobs: refusals (429 + Retry-After) are
    waited out, and a full bucket (`4/4`, no reset named) pauses the account's budget, so
    both jobs wait but not necessarily both are refused."""
    fresh_sandbox.config(
        rate_budgets={"shopify": 4}, volumes={"shopify.customers": 1000, "shopify.orders": 1000}
    )
    tools = ("shopify.customers.list", "shopify.orders.list")
    with ThreadPoolExecutor(2) as pool:
        jobs = pool.map(lambda t: run(shop, t, {"limit": 100}, fields=["id"], timeout=90), tools)
        done = list(jobs)
    for tool, job in zip(tools, done, strict=True):
        assert job["status"] == "succeeded", job
        assert "waiting_rate_limit" in [h["status"] for h in job["history"]]
        assert ids_of(api, job) == [TOOLS[tool][2](i) for i in range(1, 1001)]
    refused = [e for e in api_log("shopify") if e["status"] == 429]
    assert refused and {e["path"] for e in refused} <= {
        f"{API}/customers.json",
        f"{API}/orders.json",
    }


@pytest.mark.parametrize("status", [200, 429])
def test_graphql_throttled_waits_then_completes(api, fresh_sandbox, shop, status, run, api_log):
    """250 points restoring 250/s, 102 per page: THROTTLED every few pages, as a 200 or 429."""
    budgets = {"shopify.graphql": 250}
    if status == 429:
        budgets["shopify.graphql_429"] = 1
    fresh_sandbox.config(rate_budgets=budgets, volumes={"shopify.customers": 1000})
    args = {"query": gql(), "connection": "customers"}
    done = run(shop, "shopify.graphql.query", args, fields=["id"])
    assert done["status"] == "succeeded", (done.get("error"), done["history"][-4:])
    assert "waiting_rate_limit" in [h["status"] for h in done["history"]]
    assert ids_of(api, done) == [
        f"gid://shopify/Customer/{CUSTOMER_BASE + i}" for i in range(1, 1001)
    ]
    calls = api_log("shopify")
    assert len(calls) > 10  # ten pages plus the throttled attempts
    assert sum(e["status"] == 429 for e in calls) == (len(calls) - 10 if status == 429 else 0)


def test_rotating_refresh_via_admin_root_base_url(api, fresh_sandbox, run):
    """The other documented account form: base_url = admin API root, absolute token_url.
    Tokens live 1 s and the 10 pages take about 1.5 s, so the job refreshes more than once:
    each refresh must present the token the previous one rotated in."""
    root = f"{fresh_sandbox.url}/shopify"
    fresh_sandbox.config(token_ttl_s=1, rotate_refresh_tokens={"shopify": True}, latency_ms=150)
    account = api.account(
        fresh_sandbox,
        "shopify",
        base_url=f"{root}/admin/api/2025-10",
        token_url=f"{root}/admin/oauth/access_token",
        expires_in=1,
    )
    done = run(account, "shopify.customers.list", {"limit": 100}, fields=["id"])
    assert done["status"] == "succeeded", (done.get("error"), done["history"][-4:])
    assert len(ids_of(api, done)) == 1000
    log = fresh_sandbox.requests("shopify")
    tokens = [e for e in log if e["kind"] == "token"]
    assert len(tokens) >= 2 and all(e["status"] == 200 for e in tokens)
    assert {e["path"] for e in tokens} == {"/shopify/admin/oauth/access_token"}
    assert all(e["status"] == 200 for e in log if e["kind"] == "api")

    requests.post(
        f"{fresh_sandbox.url}/_sandbox/revoke", json={"vendor": "shopify"}, timeout=5
    ).raise_for_status()
    # 20 pages at 150 ms outlive the 1 s token: the job must refresh, and is refused
    job = api.call("shopify.customers.list", account_id=account, args={}, fields=["id"])
    parked = api.wait(job["job_id"], states=("needs_reauth", "failed", "succeeded"))
    assert parked["status"] == "needs_reauth", parked
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "needs_reauth" and view["last_refresh_outcome"] == "rejected"


# ---- the connector's pieces, without the stack ---------------------------------------------


def fake(
    status: int = 200, body: bytes = b"{}", headers: dict | None = None, path: str = "graphql.json"
):
    url = f"https://s.myshopify.com/admin/api/2025-10/{path}"
    return canned(status, headers=headers, content=body, url=url)


def test_page_info_dialect_either_rel_order():
    d = PageInfo()
    shop_url = "https://s.myshopify.com/admin/api/2025-10/customers.json"
    prev = f'<{shop_url}?page_info=abc&limit=250>; rel="previous"'
    nxt = f'<{shop_url}?page_info=def&limit=250>; rel="next"'
    for link in (f"{prev}, {nxt}", f"{nxt}, {prev}"):
        assert d.next(fake(headers={"Link": link}), {}, []) == "def"
    assert d.next(fake(headers={"Link": prev}), {}, []) is None
    assert d.next(fake(), {}, []) is None
    from connectors.pagination import PageRequest

    first = PageRequest("GET", "orders.json", {"limit": 50, "status": "any", "fields": "id"})
    assert d.apply(first, None) == first
    assert d.apply(first, "def").params == {"limit": 50, "fields": "id", "page_info": "def"}


def test_api_path_for_both_base_url_forms():
    assert api_path(FakeHttp(base_url="https://s.myshopify.com"), "customers.json") == (
        "/admin/api/2025-10/customers.json"
    )
    root = FakeHttp(base_url="https://s.myshopify.com/admin/api/2024-07")
    assert api_path(root, "/graphql.json") == "/graphql.json"
    assert VENDOR.auth_header == "X-Shopify-Access-Token" and VENDOR.auth_format == "{token}"


def test_classify_and_rate_limit_signals():
    throttled = (
        b'{"errors":[{"message":"Throttled","extensions":{"code":"THROTTLED"}}],'
        b'"extensions":{"cost":{"requestedQueryCost":102,"actualQueryCost":null,'
        b'"throttleStatus":{"maximumAvailable":1000.0,"currentlyAvailable":2,'
        b'"restoreRate":50.0}}}}'
    )
    for status in (200, 429):
        resp = fake(status, throttled)
        classify(resp)  # not a vendor error: a wait of (102 - 2) / 50 s
        rate = ratelimit.parse(resp.headers, status, resp.content)
        assert rate.limited and rate.wait == pytest.approx(2.0)
    rest = fake(
        429,
        b'{"errors":"Exceeded 2 calls per second for api client."}',
        {"Retry-After": "2.0", "X-Shopify-Shop-Api-Call-Limit": "40/40"},
    )
    classify(rest)
    rate = ratelimit.parse(rest.headers, 429, rest.content)
    assert rate.limited and rate.wait == 2.0 and rate.remaining == 0
    cases = [
        (
            fake(200, b'{"errors":[{"message":"Parse error on \\"}\\" (RCURLY) at [1, 20]"}]}'),
            "graphql_error",
            'Parse error on "}" (RCURLY) at [1, 20]',
        ),
        (
            fake(
                200,
                b'{"data":null,"errors":[{"message":"Access denied","extensions":'
                b'{"code":"ACCESS_DENIED"}}]}',
            ),
            "ACCESS_DENIED",
            "Access denied",
        ),
        (
            fake(400, b'{"errors":{"query":"Required parameter missing or invalid"}}'),
            "http_400",
            "query: Required parameter missing or invalid",
        ),
        (
            fake(400, b'{"status":"status cannot be passed when page_info is present."}'),
            "http_400",
            "status cannot be passed when page_info is present.",
        ),
        (
            fake(422, b'{"errors":{"email":["has already been taken"]}}'),
            "http_422",
            "email: has already been taken",
        ),
        (
            fake(
                403, b'{"errors":"This action requires merchant approval for read_orders scope."}'
            ),
            "http_403",
            "This action requires merchant approval for read_orders scope.",
        ),
    ]
    for resp, code, message in cases:
        with pytest.raises(VendorError) as err:
            classify(resp)
        assert (err.value.code, err.value.message) == (code, message)
    ok = fake(200, b'{"customers":[]}', {"X-Shopify-Shop-Api-Call-Limit": "1/40"}, "customers.json")
    classify(ok)
    classify(
        fake(200, b'{"customers":[{"id":1,"note":"errors"}],"errors":[1]}', path="customers.json")
    )  # REST 2xx bodies are not read for errors
    check(ok, ratelimit.parse(ok.headers, 200, ok.content), "shopify")
