"""Stripe sandbox speaks Stripe: list objects, starting_after paging, error shapes, 429."""

from __future__ import annotations

import base64
import time

import pytest

from sandbox import stripe as st

CUSTOMERS = "/stripe/v1/customers"
CHARGES = "/stripe/v1/charges"
KEY = "sk_test_51Hsandbox0000000000001234"
H = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(make_client):
    def make(customers: int = 250, charges: int = 1000, **knobs):
        c = make_client(**knobs)
        c.post(
            "/_sandbox/config",
            json={"volumes": {"stripe.customers": customers, "stripe.charges": charges}},
        )
        assert (
            c.post("/_sandbox/static-token", json={"vendor": "stripe", "token": KEY}).status_code
            == 200
        )
        return c

    return make


def crawl(client, url: str, **params) -> tuple[list[dict], list[dict]]:
    records, docs = [], []
    while True:
        resp = client.get(url, params=params, headers=H)
        assert resp.status_code == 200, resp.text
        assert resp.headers["request-id"].startswith("req_")
        assert not any(k.lower().startswith(("x-ratelimit", "ratelimit")) for k in resp.headers)
        doc = resp.json()
        assert set(doc) == {"object", "url", "has_more", "data"} and doc["object"] == "list"
        records += doc["data"]
        docs.append(doc)
        if not doc["has_more"]:
            return records, docs
        params["starting_after"] = doc["data"][-1]["id"]


def test_starting_after_paging_to_has_more_false(client):
    c = client(customers=250)
    records, docs = crawl(c, CUSTOMERS, limit=100)
    assert [r["id"] for r in records] == [st.CUSTOMER.id(i) for i in range(1, 251)]
    assert [len(d["data"]) for d in docs] == [100, 100, 50]
    assert [d["has_more"] for d in docs] == [True, True, False]
    assert all(d["url"] == "/v1/customers" for d in docs)
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)  # ids sort in order
    created = [r["created"] for r in records]
    assert created == sorted(created, reverse=True)  # newest first, like Stripe
    assert len(c.get(CUSTOMERS, headers=H).json()["data"]) == 10  # Stripe's default limit
    exact = c.get(
        CUSTOMERS, params={"limit": 50, "starting_after": records[199]["id"]}, headers=H
    ).json()
    assert len(exact["data"]) == 50 and exact["has_more"] is False
    before = c.get(
        CUSTOMERS, params={"limit": 3, "ending_before": records[10]["id"]}, headers=H
    ).json()
    assert [r["id"] for r in before["data"]] == [r["id"] for r in records[7:10]]
    assert before["has_more"] is True


def test_record_shapes(client):
    c = client(customers=20, charges=60)
    cust = c.get(CUSTOMERS, params={"limit": 100}, headers=H).json()["data"]
    assert {"id", "object", "email", "name", "created", "livemode", "metadata"} <= set(cust[0])
    assert cust[0]["object"] == "customer" and cust[0]["id"].startswith("cus_")
    assert len(cust[0]["id"]) == len("cus_") + 14
    assert not cust[6]["name"].isascii()  # every 7th customer has a multi-byte name
    charges, _ = crawl(c, CHARGES, limit=100)
    assert len(charges) == 60 and len({ch["id"] for ch in charges}) == 60
    for ch in charges:
        assert {"id", "amount", "currency", "customer", "status", "created"} <= set(ch)
        assert ch["object"] == "charge" and ch["id"].startswith("ch_")
        assert ch["customer"] in {x["id"] for x in cust}
        assert ch["status"] in ("succeeded", "pending", "failed")
    assert {ch["status"] for ch in charges} == {"succeeded", "pending", "failed"}
    again = client(customers=20, charges=60)  # a pure function of the index
    assert again.get(CHARGES, headers=H).json()["data"] == c.get(CHARGES, headers=H).json()["data"]


def test_filters(client):
    c = client(customers=30, charges=500)
    everything, _ = crawl(c, CHARGES, limit=100)
    who = st.CUSTOMER.id(7)
    mine, docs = crawl(c, CHARGES, limit=4, customer=who)
    assert mine == [ch for ch in everything if ch["customer"] == who] and len(docs) > 2
    one = c.get(CUSTOMERS, params={"email": st.customer(12)["email"]}, headers=H).json()
    assert [r["id"] for r in one["data"]] == [st.CUSTOMER.id(12)] and not one["has_more"]
    for email in (st.customer(12)["email"].upper(), "nobody@example.com", "x.99@example.com"):
        assert c.get(CUSTOMERS, params={"email": email}, headers=H).json()["data"] == []


def test_empty_and_single_page(client):
    c = client(customers=0, charges=0)
    for url in (CUSTOMERS, CHARGES):
        doc = c.get(url, params={"limit": 100}, headers=H).json()
        assert doc["data"] == [] and doc["has_more"] is False
    c = client(customers=100, charges=0)
    doc = c.get(CUSTOMERS, params={"limit": 100}, headers=H).json()
    assert len(doc["data"]) == 100 and doc["has_more"] is False


def test_error_shapes(client):
    c = client(customers=30)
    resp = c.get(CUSTOMERS, params={"limit": "abc"}, headers=H)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert {k: err[k] for k in ("code", "message", "param", "type")} == {
        "code": "parameter_invalid_integer",
        "message": "Invalid integer: abc",
        "param": "limit",
        "type": "invalid_request_error",
    }
    assert err["doc_url"] == "https://stripe.com/docs/error-codes/parameter-invalid-integer"
    for limit in (0, 101):
        resp = c.get(CUSTOMERS, params={"limit": limit}, headers=H)
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "limit"

    resp = c.get(CUSTOMERS, params={"starting_after": "cus_nope"}, headers=H)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["code"] == "resource_missing" and err["param"] == "starting_after"
    assert err["message"] == "No such customer: 'cus_nope'"
    beyond = st.CUSTOMER.id(31)  # well-formed, but there are only 30
    assert c.get(CUSTOMERS, params={"starting_after": beyond}, headers=H).status_code == 400
    resp = c.get(CHARGES, params={"customer": "cus_missing"}, headers=H)
    assert resp.json()["error"]["code"] == "resource_missing"
    assert resp.json()["error"]["param"] == "customer"
    resp = c.get(CUSTOMERS, params={"page": 2}, headers=H)
    assert resp.json()["error"]["code"] == "parameter_unknown"
    assert resp.json()["error"]["message"] == "Received unknown parameter: page"
    resp = c.get(CUSTOMERS, params={"starting_after": beyond, "ending_before": beyond}, headers=H)
    assert resp.status_code == 400 and "only specify one" in resp.json()["error"]["message"]


def test_401_shapes(client, mint):
    c = client()
    resp = c.get(CUSTOMERS, headers={"Authorization": "Bearer sk_test_wrongwrongwrong9876"})
    assert resp.status_code == 401
    assert resp.json() == {
        "error": {
            "message": "Invalid API Key provided: sk_test_" + "*" * 15 + "9876",
            "type": "invalid_request_error",
        }
    }
    resp = c.get(CUSTOMERS)
    assert resp.status_code == 401
    assert resp.json()["error"]["message"].startswith("You did not provide an API key.")
    basic = base64.b64encode(f"{KEY}:".encode()).decode()
    assert c.get(CUSTOMERS, headers={"Authorization": f"Basic {basic}"}).status_code == 200
    # Minted (Connect) tokens work too, and never expire.
    token = mint(c, "stripe", expires_in=0)["access_token"]
    assert c.get(CUSTOMERS, headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_rate_limit_429_shape(client):
    c = client(rate_budget=2, rate_window_ms=300)
    assert [c.get(CUSTOMERS, headers=H).status_code for _ in range(2)] == [200, 200]
    resp = c.get(CUSTOMERS, headers=H)
    assert resp.status_code == 429
    err = resp.json()["error"]
    assert err["code"] == "rate_limit" and err["type"] == "invalid_request_error"
    assert err["message"].startswith("Request rate limit exceeded.")
    assert resp.headers["stripe-should-retry"] == "true"
    assert "retry-after" not in resp.headers
    assert not any(k.lower().startswith(("x-ratelimit", "ratelimit")) for k in resp.headers)
    time.sleep(0.35)
    assert c.get(CUSTOMERS, headers=H).status_code == 200


def test_id_codec():
    for kind in (st.CUSTOMER, st.CHARGE):
        for i in (1, 7, 999, 12_345_678):
            assert kind.index(kind.id(i), 99_999_999) == i
        assert kind.index(kind.id(5), 4) is None
        tampered = kind.id(5)[:-1] + ("A" if kind.id(5)[-1] != "A" else "B")
        assert kind.index(tampered, 10) is None
    assert len(st.CHARGE.id(1)) == len("ch_") + 24
