"""shopify.bulk_query (GraphQL bulk operations) through the real stack: the job waits in
`waiting_vendor` while the sandbox shop runs the bulk query, then downloads its signed JSONL.

The accounts here have no vendor-webhook secret, so every look is a poll (the webhook side is
covered in tests/sandbox/test_shopify.py and the inbound-webhook tests)."""

from __future__ import annotations

from datetime import datetime

import pytest
import requests
from fakes import FakeHttp
from pydantic import ValidationError
from support import wait_until

from connectors.base import Page
from connectors.errors import VendorError
from connectors.shopify import BULK_POLL_S, BulkQueryArgs, bulk_fetch, jsonl_records
from sandbox.shopify import CUSTOMER_BASE, ORDER_BASE, _line_items, customer_node

TOOL = "shopify.bulk_query"
GRAPHQL = "/shopify/admin/api/2025-10/graphql.json"
FILES = "/shopify/_files/bulk/"
CUSTOMERS = "{ customers { edges { node { id email firstName lastName createdAt } } } }"
ORDERS_WITH_ITEMS = """
{
  orders {
    edges {
      node {
        id
        name
        totalPriceSet { shopMoney { amount currencyCode } }
        lineItems { edges { node { id title quantity } } }
      }
    }
  }
}
"""


def control(sandbox, **knobs) -> dict:
    resp = requests.post(f"{sandbox.url}/shopify/_sandbox/bulk", json=knobs, timeout=5)
    resp.raise_for_status()
    return resp.json()


def operations(sandbox) -> list[dict]:
    return requests.get(f"{sandbox.url}/shopify/_sandbox/bulk", timeout=5).json()["operations"]


def waits(done: dict) -> list[str]:
    return [h["reason"].split(";")[0] for h in done["history"] if h["status"] == "waiting_vendor"]


def customer_gid(i: int) -> str:
    return f"gid://shopify/Customer/{CUSTOMER_BASE + i}"


def start(api, sandbox, query: str, **body) -> dict:
    account = body.pop("account", None) or api.account(sandbox, "shopify")
    return api.call(TOOL, account_id=account, args={"query": query}, **body)


def test_bulk_query_polls_shopify_then_downloads_every_customer_once_in_order(
    api, fresh_sandbox, api_log
):
    fresh_sandbox.config(volumes={"shopify.customers": 1200})
    control(fresh_sandbox, duration_s=2.5)  # polls at ~1 s (RUNNING) and ~3 s (COMPLETED)
    job = start(api, fresh_sandbox, CUSTOMERS, delivery="blocks")
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "succeeded", (done.get("error"), done["history"][-4:])
    seen = waits(done)
    assert seen[0] == "bulk operation created"
    assert "Shopify bulk operation: RUNNING" in seen[1:]
    assert set(seen[1:]) <= {"Shopify bulk operation: CREATED", "Shopify bulk operation: RUNNING"}
    records = api.records(job["job_id"])
    assert [r["id"] for r in records] == [customer_gid(i) for i in range(1, 1201)]
    assert done["progress"]["blocks"] > 1
    expected = customer_node(777)
    assert records[776] == {k: expected[k] for k in ("id", "email", "firstName", "lastName",
                                                     "createdAt")}  # fmt: skip
    # The run, one poll per wait, then the signed file: fetched without the access token
    # (the sandbox answers 400 to a file request that carries one).
    log = api_log("shopify")
    assert [(e["method"], e["path"], e["status"]) for e in log[:-1]] == [("POST", GRAPHQL, 200)] * (
        len(seen) + 1
    )
    assert log[-1]["method"] == "GET" and log[-1]["path"].startswith(FILES)
    assert log[-1]["status"] == 200
    [op] = operations(fresh_sandbox)
    assert op["status"] == "COMPLETED" and op["query"] == CUSTOMERS
    assert op["reads"] == len(seen) and op["downloads"] == 1


def test_nested_line_items_are_grouped_under_their_order(api, fresh_sandbox):
    fresh_sandbox.config(volumes={"shopify.orders": 40, "shopify.customers": 10})
    control(fresh_sandbox, duration_s=0.3)
    job = start(api, fresh_sandbox, ORDERS_WITH_ITEMS)
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "succeeded", (done.get("error"), done["history"][-4:])
    records = api.result(job["job_id"])["records"]
    assert [r["id"] for r in records] == [f"gid://shopify/Order/{ORDER_BASE + i}"
                                          for i in range(1, 41)]  # fmt: skip
    for i, rec in enumerate(records, start=1):
        assert set(rec) == {"id", "name", "totalPriceSet", "__children"}
        assert rec["totalPriceSet"]["shopMoney"]["currencyCode"] == "USD"
        assert rec["__children"] == [
            {"id": f"gid://shopify/LineItem/{lid}", "title": title, "quantity": qty}
            for lid, title, _, _, qty in _line_items(i)
        ]
    assert done["progress"]["records"] == 40  # children travel inside their parent


def test_an_empty_collection_succeeds_without_a_file(api, fresh_sandbox, api_log):
    fresh_sandbox.config(volumes={"shopify.customers": 0})
    control(fresh_sandbox, duration_s=0.2)
    done = api.wait(start(api, fresh_sandbox, CUSTOMERS)["job_id"], timeout=60)
    assert done["status"] == "succeeded", (done.get("error"), done["history"][-4:])
    assert done["progress"]["records"] == 0
    assert not any(e["path"].startswith(FILES) for e in api_log("shopify"))


def test_failed_operation_fails_the_job_with_shopifys_error_code(api, fresh_sandbox, api_log):
    fresh_sandbox.config(volumes={"shopify.customers": 100})
    control(fresh_sandbox, duration_s=0.3, fail_next=True)
    done = api.wait(start(api, fresh_sandbox, CUSTOMERS)["job_id"], timeout=60)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "bulk_operation_failed"
    assert "INTERNAL_SERVER_ERROR" in done["error"]["message"]
    assert "gid://shopify/BulkOperation/" in done["error"]["message"]
    assert not any(e["path"].startswith(FILES) for e in api_log("shopify"))


def test_a_vendor_job_that_never_ends_fails_at_the_wait_limit(api, fresh_sandbox, api_log):
    """An operation stuck RUNNING is not polled forever: after TOOLQUEUE_VENDOR_WAIT_MAX_S of
    scheduled waits (10 s in the test env) the job fails with `vendor_timeout`."""
    fresh_sandbox.config(volumes={"shopify.customers": 10})
    control(fresh_sandbox, duration_s=3600)
    done = api.wait(start(api, fresh_sandbox, CUSTOMERS)["job_id"], timeout=40)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "vendor_timeout"
    assert "within 10s" in done["error"]["message"] and "RUNNING" in done["error"]["message"]
    looks = [h for h in done["history"] if h["status"] == "waiting_vendor"]
    # 1, 2, 4 s, then the rest up to the limit (alike looks in a row are one entry, counted)
    assert 3 <= sum(h.get("count", 1) for h in looks) <= 6
    at = [datetime.fromisoformat(h["at"].replace("Z", "+00:00")) for h in done["history"]]
    assert (at[-1] - at[0]).total_seconds() >= 9.5  # the limit, not a retry count
    assert not any(e["path"].startswith(FILES) for e in api_log("shopify"))


def test_partial_data_is_delivered_then_the_job_fails(api, fresh_sandbox, api_log):
    """Decision: the rows Shopify did produce are delivered (readable from the failed job),
    and the job fails saying how many and that the rest are missing."""
    fresh_sandbox.config(volumes={"shopify.customers": 100})
    control(fresh_sandbox, duration_s=0.3, partial_next=True)
    job = start(api, fresh_sandbox, CUSTOMERS)
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "bulk_operation_failed"
    message = done["error"]["message"]
    assert "TIMEOUT" in message and "50 records" in message and "missing" in message
    assert done["progress"]["records"] == 50
    body = api.result(job["job_id"])
    assert [r["id"] for r in body["records"]] == [customer_gid(i) for i in range(1, 51)]
    partial = [e for e in api_log("shopify") if e["path"].startswith(FILES)]
    assert len(partial) == 1 and partial[0]["path"].endswith("-partial.jsonl")


def test_a_second_bulk_query_while_one_runs(api, fresh_sandbox):
    """Shopify runs one bulk query per app and shop: another query is rejected with
    Shopify's message; the very same query joins the running operation instead."""
    fresh_sandbox.config(volumes={"shopify.customers": 300, "shopify.orders": 10})
    control(fresh_sandbox, duration_s=3.0)
    account = api.account(fresh_sandbox, "shopify")
    first = start(api, fresh_sandbox, CUSTOMERS, account=account)
    wait_until(lambda: operations(fresh_sandbox), 20, 0.05)
    [running] = operations(fresh_sandbox)
    other = api.wait(start(api, fresh_sandbox, "{ orders { nodes { id } } }",
                           account=account)["job_id"], timeout=30)  # fmt: skip
    assert other["status"] == "failed", other
    assert other["error"]["code"] == "bulk_query_rejected"
    assert (
        f"A bulk query operation for this app and shop is already in progress: {running['id']}."
        in other["error"]["message"]
    )
    same = start(api, fresh_sandbox, CUSTOMERS, account=account)
    for job in (first, same):
        done = api.wait(job["job_id"], timeout=60)
        assert done["status"] == "succeeded", (done.get("error"), done["history"][-4:])
        ids = [r["id"] for r in api.result(job["job_id"])["records"]]
        assert ids == [customer_gid(i) for i in range(1, 301)]
    joined = api.get(f"/v1/jobs/{same['job_id']}").json()
    assert waits(joined)[0] == "joined the bulk operation already running it"
    assert [op["id"] for op in operations(fresh_sandbox)] == [running["id"]]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "{ customers { edges { node { id emale } } } }",
            "Invalid bulk query: Field 'emale' doesn't exist on type 'Customer'",
        ),
        (
            "{ products { edges { node { id } } } }",
            "Invalid bulk query: Field 'products' doesn't exist on type 'QueryRoot'",
        ),
        (
            "{ orders { edges { node { name lineItems { nodes { id } } } } } }",
            "must select the 'id' field",
        ),
    ],
)
def test_a_bad_inner_query_is_rejected_with_shopifys_message(api, fresh_sandbox, query, message):
    done = api.wait(start(api, fresh_sandbox, query)["job_id"], timeout=30)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "bulk_query_rejected"
    assert message in done["error"]["message"]
    assert operations(fresh_sandbox) == []


def test_throttled_bulk_calls_wait_then_complete(api, fresh_sandbox):
    """The run and the polls are charged to the GraphQL cost bucket like any query: a
    THROTTLED answer is waited out (waiting_rate_limit), not an error."""
    fresh_sandbox.config(volumes={"shopify.customers": 50},
                         rate_budgets={"shopify.graphql": 12})  # fmt: skip
    control(fresh_sandbox, duration_s=0.3)
    token = fresh_sandbox.mint("shopify")["access_token"]
    spend = requests.post(  # another app drains the bucket just before the job starts
        f"{fresh_sandbox.url}{GRAPHQL}",
        json={"query": "{ customers(first: 10) { nodes { id } } }"},
        headers={"X-Shopify-Access-Token": token},
        timeout=5,
    )
    assert spend.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] <= 2
    done = api.wait(start(api, fresh_sandbox, CUSTOMERS)["job_id"], timeout=60)
    assert done["status"] == "succeeded", (done.get("error"), done["history"][-4:])
    assert len(api.result(done["job_id"])["records"]) == 50
    assert any(h["status"] == "waiting_rate_limit" for h in done["history"]), done["history"]


# ---- the tool's own logic, without the stack ---------------------------------------------------


def test_jsonl_children_join_their_parent_and_odd_lines_are_kept_or_dropped():
    raw = (
        b'{"id":"gid://shopify/Order/1","name":"#1"}\n'
        b'{"id":"gid://shopify/LineItem/1","__parentId":"gid://shopify/Order/1"}\n'
        b'{"id":"gid://shopify/LineItem/2","__parentId":"gid://shopify/Order/1"}\n'
        b"\n"
        b'{"id":"gid://shopify/Order/2","name":"#2"}\n'
        b'{"id":"gid://shopify/LineItem/9","__parentId":"gid://shopify/Order/0"}\n'
        b'{"id":"gid://shopify/Order/3","na'  # partial data can end mid-line
    )
    assert jsonl_records(raw) == [
        {
            "id": "gid://shopify/Order/1",
            "name": "#1",
            "__children": [{"id": "gid://shopify/LineItem/1"}, {"id": "gid://shopify/LineItem/2"}],
        },
        {"id": "gid://shopify/Order/2", "name": "#2"},
        {"id": "gid://shopify/LineItem/9", "__parentId": "gid://shopify/Order/0"},
    ]


@pytest.mark.parametrize("query", ["", "   ", "customers", "{ x }" + " " * 50_000])
def test_query_argument_is_validated(query):
    with pytest.raises(ValidationError):
        BulkQueryArgs(query=query)


GID = "gid://shopify/BulkOperation/7"
SHOP = "https://shop.myshopify.com"


def graphql(data: dict) -> dict:
    """A GraphQL answer carrying `data`."""
    return {"data": data}


def test_every_waiting_page_names_the_operation_and_backs_off():
    created = {"bulkOperation": {"id": GID, "status": "CREATED"}, "userErrors": []}
    http = FakeHttp(graphql({"bulkOperationRunQuery": created}), base_url=SHOP)
    args = BulkQueryArgs(query=CUSTOMERS)
    page = bulk_fetch(http, args, None)
    assert page == Page([], {"op": GID, "polls": 0}, BULK_POLL_S[0], "bulk operation created",
                        await_ref=GID)  # fmt: skip
    assert http.sent[0].json["variables"] == {"query": CUSTOMERS}
    seen = []
    cursor = page.next_cursor
    for _ in range(9):
        http.answers.append(graphql({"currentBulkOperation": {"id": GID, "status": "RUNNING"}}))
        page = bulk_fetch(http, args, cursor)
        assert page.await_ref == GID and page.records == []
        seen.append(page.wait_s)
        cursor = page.next_cursor
    assert seen == [2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 60.0, 60.0, 60.0]


def test_another_apps_current_operation_makes_it_ask_for_its_own_by_id():
    url = "https://storage.example/x.jsonl"
    done = {"id": GID, "status": "COMPLETED", "url": url}
    http = FakeHttp(
        graphql({"currentBulkOperation": {"id": "gid://shopify/BulkOperation/8",
                                          "status": "RUNNING"}}),
        graphql({"node": done}),
        base_url=SHOP,
        files={url: b'{"id":"gid://shopify/Customer/1"}\n'},
    )  # fmt: skip
    page = bulk_fetch(http, BulkQueryArgs(query=CUSTOMERS), {"op": GID, "polls": 3})
    assert page.records == [{"id": "gid://shopify/Customer/1"}] and page.next_cursor is None
    asked = http.sent[1].json
    assert asked["variables"] == {"id": GID} and "node(id: $id)" in asked["query"]
    assert http.downloads == ["https://storage.example/x.jsonl"]


@pytest.mark.parametrize(
    ("status", "code"),
    [("CANCELED", "bulk_operation_canceled"), ("EXPIRED", "bulk_operation_expired"),
     ("FAILED", "bulk_operation_failed")],
)  # fmt: skip
def test_end_states_fail_with_the_error_code(status, code):
    http = FakeHttp(graphql({"currentBulkOperation": {"id": GID, "status": status,
                                                      "errorCode": "ACCESS_DENIED"}}),
                    base_url=SHOP)  # fmt: skip
    with pytest.raises(VendorError) as err:
        bulk_fetch(http, BulkQueryArgs(query=CUSTOMERS), {"op": GID, "polls": 0})
    assert err.value.code == code and "ACCESS_DENIED" in err.value.message
    assert http.downloads == []
