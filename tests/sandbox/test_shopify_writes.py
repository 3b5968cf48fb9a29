"""Shopify ``customerUpdate`` over real HTTP: payload, userErrors, cost, effects, faults, and
updated customers read back through the ``customers`` connection."""

from __future__ import annotations

import pytest
import requests

from sandbox.shopify import CUSTOMER_BASE

GRAPHQL = "/shopify/admin/api/2025-10/graphql.json"
UPDATE = """
mutation Update($input: CustomerInput!) {
  customerUpdate(input: $input) {
    customer { id email firstName lastName tags updatedAt }
    userErrors { field message }
  }
}"""
DROPPED = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


def gid(i: int) -> str:
    return f"gid://shopify/Customer/{CUSTOMER_BASE + i}"


@pytest.fixture
def shop(live_sandbox):
    live_sandbox.config(volumes={"shopify.customers": 20})
    body = {"vendor": "shopify", "client_id": "cid-1", "client_secret": "secret-1"}
    token = requests.post(f"{live_sandbox.url}/_sandbox/tokens", json=body, timeout=5).json()
    live_sandbox.h = {"X-Shopify-Access-Token": token["access_token"]}
    return live_sandbox


def gql(live, query: str, **variables) -> requests.Response:
    body = {"query": query, "variables": variables}
    return requests.post(f"{live.url}{GRAPHQL}", json=body, headers=live.h, timeout=5)


def update(live, **data) -> dict:
    resp = gql(live, UPDATE, input=data)
    assert resp.status_code == 200, resp.text
    return resp.json()


def per_object(live) -> dict:
    return requests.get(f"{live.url}/shopify/_sandbox/effects", timeout=5).json()["per_object"]


def test_customer_update_changes_the_given_fields_and_reads_back(shop):
    doc = update(shop, id=gid(3), email="new.3@example.com", firstName="Ada", tags=["vip", "b2b"])
    payload = doc["data"]["customerUpdate"]
    assert payload["userErrors"] == []
    customer = payload["customer"]
    assert customer["id"] == gid(3) and customer["email"] == "new.3@example.com"
    assert customer["firstName"] == "Ada" and customer["tags"] == ["vip", "b2b"]
    assert set(customer) == {"id", "email", "firstName", "lastName", "tags", "updatedAt"}
    cost = doc["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 10 and cost["actualQueryCost"] == 10
    page = gql(shop, "{ customers(first: 3) { nodes { id email firstName } } }").json()
    node = page["data"]["customers"]["nodes"][2]
    assert (node["id"], node["email"], node["firstName"]) == (gid(3), "new.3@example.com", "Ada")
    assert node["updatedAt"] == customer["updatedAt"] and node["tags"] == ["vip", "b2b"]


def test_a_resent_update_is_a_noop_and_an_inline_literal_input_works(shop):
    first = update(shop, id=gid(4), lastName="Lee")["data"]["customerUpdate"]["customer"]
    inline = (
        f'mutation {{ customerUpdate(input: {{id: "{gid(4)}", lastName: "Lee"}}) '
        "{ customer { lastName updatedAt } userErrors { field message } } }"
    )
    again = gql(shop, inline).json()["data"]["customerUpdate"]
    assert again == {
        "customer": {"lastName": "Lee", "updatedAt": first["updatedAt"]},
        "userErrors": [],
    }
    assert per_object(shop) == {gid(4): {"create": 0, "update": 1, "noop": 1}}


def test_bad_input_is_user_errors_with_no_customer_and_no_effect(shop):
    bad = update(shop, id=gid(5), email="not-an-email")["data"]["customerUpdate"]
    assert bad == {
        "customer": None,
        "userErrors": [{"field": ["email"], "message": "Email is invalid"}],
    }
    phone = update(shop, id=gid(5), phone="call me")["data"]["customerUpdate"]
    assert phone["userErrors"] == [{"field": ["phone"], "message": "Phone is invalid"}]
    for unknown in (gid(999), "gid://shopify/Order/1", "5"):
        missing = update(shop, id=unknown, note="x")["data"]["customerUpdate"]
        assert missing == {
            "customer": None,
            "userErrors": [{"field": ["id"], "message": "Customer does not exist"}],
        }
    extra = update(shop, id=gid(5), colour="red")
    assert "data" not in extra and extra["errors"][0]["extensions"]["code"] == "INVALID_VARIABLE"
    assert per_object(shop) == {}


def test_faults_fail_before_commit_or_drop_the_answer_after_it(shop):
    shop.config(fail_before_commit_next=1)
    failed = gql(shop, UPDATE, input={"id": gid(6), "firstName": "F"})
    assert failed.status_code == 503 and per_object(shop) == {}
    shop.config(drop_after_commit_next=1)
    with pytest.raises(DROPPED):
        gql(shop, UPDATE, input={"id": gid(6), "firstName": "F"})
    assert per_object(shop) == {gid(6): {"create": 0, "update": 1, "noop": 0}}
    resent = update(shop, id=gid(6), firstName="F")["data"]["customerUpdate"]
    assert resent["customer"]["firstName"] == "F"
    assert per_object(shop) == {gid(6): {"create": 0, "update": 1, "noop": 1}}


def test_the_mutation_is_throttled_by_the_cost_bucket(shop):
    shop.config(rate_budgets={"shopify.graphql": 15})
    assert update(shop, id=gid(7), note="a")["data"]["customerUpdate"]["userErrors"] == []
    throttled = update(shop, id=gid(7), note="b")
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert per_object(shop) == {gid(7): {"create": 0, "update": 1, "noop": 0}}
