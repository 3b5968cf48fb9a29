"""Stripe sandbox speaks Stripe: list objects, starting_after paging, error shapes, 429."""

from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

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


# ---- writes, over real HTTP -------------------------------------------------------------


@pytest.fixture
def stripe_live(live_sandbox):
    live_sandbox.config(volumes={"stripe.customers": 30})
    resp = requests.post(
        f"{live_sandbox.url}/_sandbox/static-token", json={"vendor": "stripe", "token": KEY}
    )
    assert resp.status_code == 200
    return live_sandbox


def post(live, path: str, data, key: str | None = None) -> requests.Response:
    headers = {**H, **({"Idempotency-Key": key} if key else {})}
    return requests.post(f"{live.url}/stripe{path}", data=data, headers=headers, timeout=5)


NEW = {"email": "ada@example.com", "name": "Ada Lovelace", "metadata[op]": "job-1:0"}


def test_a_create_replayed_with_its_key_answers_the_same_customer_once(stripe_live):
    first = post(stripe_live, "/v1/customers", NEW, key="k-1")
    assert first.status_code == 200, first.text
    cus = first.json()
    assert cus["id"].startswith("cus_") and len(cus["id"]) == len("cus_") + 14
    assert cus["object"] == "customer" and isinstance(cus["created"], int)
    assert (cus["email"], cus["name"], cus["metadata"]) == (
        "ada@example.com",
        "Ada Lovelace",
        {"op": "job-1:0"},
    )
    assert "idempotent-replayed" not in first.headers
    assert first.headers["idempotency-key"] == "k-1"
    again = post(stripe_live, "/v1/customers", NEW, key="k-1")
    assert again.status_code == 200 and again.json() == cus
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["original-request"] == first.headers["request-id"]
    effects = stripe_live.effects("stripe")
    assert [(e["kind"], e["object_id"], e["idempotency_key"]) for e in effects] == [
        ("create", cus["id"], "k-1")
    ]
    assert effects[0]["fields"] == {
        "email": "ada@example.com",
        "name": "Ada Lovelace",
        "metadata": {"op": "job-1:0"},
    }
    post(stripe_live, "/v1/customers", NEW)  # no key: Stripe creates another customer
    post(stripe_live, "/v1/customers", NEW)
    ids = [e["object_id"] for e in stripe_live.effects("stripe")]
    assert len(ids) == 3 and len(set(ids)) == 3  # the duplicates a test can count


def test_a_key_reused_with_other_parameters_or_endpoint_is_an_idempotency_error(stripe_live):
    cus = post(stripe_live, "/v1/customers", NEW, key="k-2").json()
    other = post(stripe_live, "/v1/customers", {**NEW, "name": "Someone Else"}, key="k-2")
    assert other.status_code == 400
    err = other.json()["error"]
    assert err["type"] == "idempotency_error" and "same parameters" in err["message"]
    elsewhere = post(stripe_live, f"/v1/customers/{cus['id']}", {"name": "X"}, key="k-2")
    assert elsewhere.status_code == 400
    assert elsewhere.json()["error"]["type"] == "idempotency_error"
    assert "same endpoint" in elsewhere.json()["error"]["message"]
    assert len(stripe_live.effects("stripe")) == 1


def test_update_sets_and_unsets_fields_and_a_missing_customer_is_a_saved_404(stripe_live):
    cus = post(stripe_live, "/v1/customers", NEW, key="k-3").json()
    resp = post(
        stripe_live,
        f"/v1/customers/{cus['id']}",
        {"name": "Ada King", "metadata[op]": "", "metadata[tier]": "gold"},
        key="u-1",
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == cus["id"] and resp.json()["name"] == "Ada King"
    assert resp.json()["metadata"] == {"tier": "gold"} and resp.json()["email"] == NEW["email"]
    seeded = st.CUSTOMER.id(3)
    resp = post(stripe_live, f"/v1/customers/{seeded}", {"phone": "+15550001"})
    assert resp.json()["phone"] == "+15550001" and resp.json()["email"] == st.customer(3)["email"]
    missing = post(stripe_live, "/v1/customers/cus_nope", {"name": "X"}, key="u-2")
    assert missing.status_code == 404
    err = missing.json()["error"]
    assert (err["code"], err["param"]) == ("resource_missing", "id")
    assert err["type"] == "invalid_request_error"
    replay = post(stripe_live, "/v1/customers/cus_nope", {"name": "X"}, key="u-2")
    assert replay.status_code == 404 and replay.headers["idempotent-replayed"] == "true"
    kinds = [(e["kind"], e["object_id"]) for e in stripe_live.effects("stripe")]
    assert kinds == [("create", cus["id"]), ("update", cus["id"]), ("update", seeded)]


def test_validation_errors_are_stripe_shaped_and_save_nothing_for_the_key(stripe_live):
    resp = post(stripe_live, "/v1/customers", {**NEW, "colour": "red"}, key="k-4")
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert (err["type"], err["code"], err["param"]) == (
        "invalid_request_error",
        "parameter_unknown",
        "colour",
    )
    resp = post(stripe_live, "/v1/customers", {**NEW, "email": "not-an-email"}, key="k-4")
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert (err["code"], err["param"]) == ("email_invalid", "email")
    assert stripe_live.effects("stripe") == []
    fixed = post(stripe_live, "/v1/customers", NEW, key="k-4")  # the corrected retry executes
    assert fixed.status_code == 200 and "idempotent-replayed" not in fixed.headers


def test_a_write_committed_then_dropped_is_replayed_by_its_key(stripe_live):
    stripe_live.config(drop_after_commit_next=1)
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        post(stripe_live, "/v1/customers", NEW, key="k-5")
    effects = stripe_live.effects("stripe")
    assert len(effects) == 1 and effects[0]["kind"] == "create"  # committed all the same
    assert stripe_live.config()["drop_after_commit_next"] == 0
    resend = post(stripe_live, "/v1/customers", NEW, key="k-5")
    assert resend.status_code == 200 and resend.headers["idempotent-replayed"] == "true"
    assert resend.json()["id"] == effects[0]["object_id"]
    assert len(stripe_live.effects("stripe")) == 1


def test_a_failure_before_commit_is_a_500_with_no_effect(stripe_live):
    stripe_live.config(fail_before_commit_next=1)
    resp = post(stripe_live, "/v1/customers", NEW, key="k-6")
    assert resp.status_code == 500 and resp.json()["error"]["type"] == "api_error"
    assert stripe_live.effects("stripe") == []
    resend = post(stripe_live, "/v1/customers", NEW, key="k-6")
    assert resend.status_code == 200 and "idempotent-replayed" not in resend.headers
    assert len(stripe_live.effects("stripe")) == 1


def test_a_key_in_flight_is_a_409_and_executes_once(stripe_live):
    stripe_live.config(write_latency_ms=400)
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, stripe_live, "/v1/customers", NEW, "k-7")
        time.sleep(0.15)
        second = pool.submit(post, stripe_live, "/v1/customers", NEW, "k-7")
        answers = sorted([first.result(), second.result()], key=lambda r: r.status_code)
    assert [r.status_code for r in answers] == [200, 409]
    assert answers[1].json()["error"]["type"] == "idempotency_error"
    assert "in-progress" in answers[1].json()["error"]["message"]
    assert len(stripe_live.effects("stripe")) == 1
    assert post(stripe_live, "/v1/customers", NEW, "k-7").json() == answers[0].json()


def test_reset_forgets_written_objects_effects_and_keys(stripe_live):
    first = post(stripe_live, "/v1/customers", NEW, key="k-8").json()
    requests.post(f"{stripe_live.url}/_sandbox/reset", timeout=5).raise_for_status()
    assert stripe_live.effects("stripe") == []
    requests.post(
        f"{stripe_live.url}/_sandbox/static-token", json={"vendor": "stripe", "token": KEY}
    ).raise_for_status()
    again = post(stripe_live, "/v1/customers", NEW, key="k-8")
    assert "idempotent-replayed" not in again.headers and again.json()["id"] == first["id"]
