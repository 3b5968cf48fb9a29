"""HubSpot sandbox speaks HubSpot: paging, projection, error shapes, limits, OAuth."""

from __future__ import annotations

import time
import uuid
from functools import partial

import pytest
import requests
from support import refresh_grant

from sandbox.hubspot import _encode_after

CONTACTS = "/hubspot/crm/v3/objects/contacts"
TOKEN = "/hubspot/oauth/v1/token"
RATE_HEADERS = (
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
)


def bearer(account: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['access_token']}"}


refresh = partial(refresh_grant, TOKEN)


def test_paging_returns_every_id_once_and_last_page_has_no_paging(make_client, mint):
    client = make_client(hubspot_contacts=250)
    h = bearer(mint(client))
    ids: list[str] = []
    params: dict = {"limit": 100}
    while True:
        doc = client.get(CONTACTS, params=params, headers=h).json()
        ids += [r["id"] for r in doc["results"]]
        if "paging" not in doc:
            break
        params["after"] = doc["paging"]["next"]["after"]  # sent as-is, like the connector
    assert ids == [str(i) for i in range(1, 251)]
    assert len(doc["results"]) == 50

    # Following the absolute link works too, keeping limit.
    first = client.get(CONTACTS, params={"limit": 100}, headers=h).json()
    link = first["paging"]["next"]["link"]
    assert link.startswith("http://testserver/hubspot/crm/v3/objects/contacts?")
    assert client.get(link, headers=h).json()["results"][0]["id"] == "101"
    assert len(client.get(CONTACTS, headers=h).json()["results"]) == 10  # default limit


def test_properties_projection_and_defaults(make_client, mint):
    client = make_client(hubspot_contacts=30)
    h = bearer(mint(client))
    rec = client.get(CONTACTS, headers=h).json()["results"][0]
    assert set(rec["properties"]) == {
        "createdate",
        "email",
        "firstname",
        "hs_object_id",
        "lastmodifieddate",
        "lastname",
    }
    assert rec["createdAt"].endswith("Z") and rec["archived"] is False
    assert rec["createdAt"] == rec["properties"]["createdate"]

    doc = client.get(
        CONTACTS, params={"properties": "email,notes,nope", "limit": 7}, headers=h
    ).json()
    assert all(
        set(r["properties"]) == {"email", "notes", "createdate", "hs_object_id", "lastmodifieddate"}
        for r in doc["results"]
    )
    assert len(doc["results"][0]["properties"]["notes"].encode()) >= 200
    repeated = client.get(
        f"{CONTACTS}?properties=firstname&properties=phone&limit=7", headers=h
    ).json()
    seventh = repeated["results"][6]["properties"]
    assert set(seventh) == {"firstname", "phone", "createdate", "hs_object_id", "lastmodifieddate"}
    assert not seventh["firstname"].isascii()  # every 7th contact has a multi-byte name
    fresh = make_client(hubspot_contacts=30)  # data is a pure function of the index
    assert (
        fresh.get(CONTACTS, headers=bearer(mint(fresh))).json()
        == client.get(CONTACTS, headers=h).json()
    )


def test_validation_errors_are_hubspot_shaped(make_client, mint):
    client = make_client(hubspot_contacts=30)
    h = bearer(mint(client))
    for params in ({"after": "not-a-cursor!"}, {"limit": 101}, {"limit": "ten"}):
        resp = client.get(CONTACTS, params=params, headers=h)
        assert resp.status_code == 400, params
        body = resp.json()
        assert body["status"] == "error" and body["category"] == "VALIDATION_ERROR"
        uuid.UUID(body["correlationId"])
        assert all(name in resp.headers for name in RATE_HEADERS)


def test_401_shapes(make_client, mint):
    client = make_client()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eA=="}):
        resp = client.get(CONTACTS, headers=headers)
        assert resp.status_code == 401
        body = resp.json()
        assert body["category"] == "INVALID_AUTHENTICATION"
        assert body["message"].startswith("Authentication credentials not found.")
        uuid.UUID(body["correlationId"])

    expired = mint(client, expires_in=0)
    resp = client.get(CONTACTS, headers=bearer(expired))
    assert resp.status_code == 401
    assert resp.json()["category"] == "EXPIRED_AUTHENTICATION"
    assert resp.json()["message"].startswith("The OAuth token used to make this call expired")


def test_rolling_rate_limit_then_recovery(make_client, mint):
    client = make_client(rate_budget=3, rate_window_ms=200)
    h = bearer(mint(client))
    remaining = [
        client.get(CONTACTS, headers=h).headers["X-HubSpot-RateLimit-Remaining"] for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    resp = client.get(CONTACTS, headers=h)
    assert resp.status_code == 429
    body = resp.json()
    assert body == {
        "status": "error",
        "message": "You have reached your ten_secondly_rolling limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": body["correlationId"],
        "policyName": "TEN_SECONDLY_ROLLING",
    }
    assert "retry-after" not in resp.headers
    assert resp.headers["X-HubSpot-RateLimit-Max"] == "3"
    assert resp.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "200"
    assert all(name in resp.headers for name in RATE_HEADERS)
    time.sleep(0.25)
    assert client.get(CONTACTS, headers=h).status_code == 200
    assert client.get("/_sandbox/stats").json()["rate_limited"] == 1


def test_daily_budget(make_client, mint):
    client = make_client()
    h = bearer(mint(client))
    assert client.post("/_sandbox/config", json={"daily_budget": 2}).json()["daily_budget"] == 2
    assert [client.get(CONTACTS, headers=h).status_code for _ in range(2)] == [200, 200]
    resp = client.get(CONTACTS, headers=h)
    assert resp.status_code == 429 and resp.json()["policyName"] == "DAILY"
    assert resp.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"


def test_refresh_rotation_and_reuse(make_client, mint):
    client = make_client(token_ttl_s=1800)
    account = mint(client)
    resp = refresh(client, account)
    assert resp.status_code == 200
    doc = resp.json()
    assert set(doc) == {"token_type", "refresh_token", "access_token", "expires_in", "hub_id"}
    assert doc["token_type"] == "bearer" and doc["expires_in"] == 1800 and doc["hub_id"] == 62515
    assert doc["refresh_token"] == account["refresh_token"]  # HubSpot default: no rotation
    assert client.get(CONTACTS, headers=bearer(doc)).status_code == 200

    client.post("/_sandbox/config", json={"rotate_refresh_tokens": True})
    rotated = refresh(client, account).json()
    assert rotated["refresh_token"] != account["refresh_token"]
    reused = refresh(client, account)
    assert reused.status_code == 400
    assert reused.json()["status"] == "BAD_REFRESH_TOKEN"
    assert reused.json()["message"] == "missing or invalid refresh token"
    assert refresh(client, account, rotated["refresh_token"]).status_code == 200

    bad_client = refresh(client, account, rotated["refresh_token"], client_secret="wrong")
    assert bad_client.status_code == 400 and bad_client.json()["status"] == "BAD_CLIENT_ID"
    assert client.get("/_sandbox/stats").json()["refresh_calls"]["hubspot"] == 5

    log = client.get("/_sandbox/requests", params={"vendor": "hubspot"}).json()
    assert [e["status"] for e in log if e["kind"] == "token"] == [200, 200, 400, 200, 400]
    assert all(account["access_token"] not in str(e) for e in log)


def test_last_page_of_90000(make_client, mint):
    client = make_client()  # settings default: 90,000 contacts
    h = bearer(mint(client))
    doc = client.get(
        CONTACTS, params={"limit": 100, "after": _encode_after(89_900)}, headers=h
    ).json()
    assert [r["id"] for r in doc["results"]] == [str(i) for i in range(89_901, 90_001)]
    assert "paging" not in doc


def test_admin_endpoints(make_client, mint):
    client = make_client()
    assert client.get("/healthz").json() == {"ok": True}
    assert client.post("/_sandbox/config", json={"bogus": 1}).status_code == 422
    assert client.post("/_sandbox/config", json={"error_rate": 2}).status_code == 422
    assert (
        client.post(
            "/_sandbox/tokens", json={"vendor": "nope", "client_id": "a", "client_secret": "b"}
        ).status_code
        == 422
    )

    assert (
        client.post(
            "/_sandbox/static-token", json={"vendor": "hubspot", "token": "pat-na1-x"}
        ).status_code
        == 200
    )
    t0 = time.time()
    assert (
        client.get(f"{CONTACTS}?limit=1", headers={"Authorization": "Bearer pat-na1-x"}).status_code
        == 200
    )
    entries = client.get("/_sandbox/requests", params={"since": t0}).json()
    assert [
        (e["vendor"], e["method"], e["path"], e["query"], e["status"], e["kind"]) for e in entries
    ] == [("hubspot", "GET", CONTACTS, "limit=1", 200, "api")]

    account = mint(client)
    assert client.post("/_sandbox/revoke", json={"vendor": "hubspot"}).json() == {"revoked": 1}
    assert refresh(client, account).json()["status"] == "BAD_REFRESH_TOKEN"

    client.delete("/_sandbox/requests")
    assert client.get("/_sandbox/requests").json() == []
    client.post("/_sandbox/reset")
    stats = client.get("/_sandbox/stats").json()
    assert stats["requests"] == 0 and stats["rate_limited"] == 0
    assert set(stats["refresh_calls"].values()) == {0} and "hubspot" in stats["refresh_calls"]
    assert client.get(CONTACTS, headers={"Authorization": "Bearer pat-na1-x"}).status_code == 401


def test_faults_are_seeded(make_client, mint):
    def statuses() -> list[int]:
        client = make_client(error_rate=0.5)
        h = bearer(mint(client))
        return [client.get(CONTACTS, headers=h).status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert set(first) >= {200} and set(first) & {502, 503}


# ---- companies and deals --------------------------------------------------------------------

OBJECTS = "/hubspot/crm/v3/objects"
COMPANY_DEFAULTS = {"createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"}
DEAL_DEFAULTS = {
    "amount",
    "closedate",
    "createdate",
    "dealname",
    "dealstage",
    "hs_lastmodifieddate",
    "hs_object_id",
    "pipeline",
}
ALWAYS = {"createdate", "hs_lastmodifieddate", "hs_object_id"}


@pytest.mark.parametrize(
    "kind,defaults", [("companies", COMPANY_DEFAULTS), ("deals", DEAL_DEFAULTS)]
)
def test_companies_and_deals_page_like_contacts(make_client, mint, kind, defaults):
    client = make_client()
    client.post("/_sandbox/config", json={"volumes": {f"hubspot.{kind}": 250}})
    h = bearer(mint(client))
    ids: list[str] = []
    params: dict = {"limit": 100}
    while True:
        resp = client.get(f"{OBJECTS}/{kind}", params=params, headers=h)
        assert resp.status_code == 200 and all(n in resp.headers for n in RATE_HEADERS)
        doc = resp.json()
        ids += [r["id"] for r in doc["results"]]
        if "paging" not in doc:
            break
        assert doc["paging"]["next"]["link"].startswith(f"http://testserver{OBJECTS}/{kind}?")
        params["after"] = doc["paging"]["next"]["after"]
    assert ids == [str(i) for i in range(1, 251)]
    rec = doc["results"][0]
    assert set(rec["properties"]) == defaults
    assert rec["archived"] is False and rec["createdAt"] == rec["properties"]["createdate"]
    assert rec["updatedAt"] == rec["properties"]["hs_lastmodifieddate"]
    assert len(client.get(f"{OBJECTS}/{kind}", headers=h).json()["results"]) == 10

    asked = "name,industry,city,nope" if kind == "companies" else "dealname,amount,nope"
    doc = client.get(
        f"{OBJECTS}/{kind}", params={"properties": asked, "limit": 14}, headers=h
    ).json()
    expected = set(asked.split(",")) - {"nope"} | ALWAYS
    assert all(set(r["properties"]) == expected for r in doc["results"])
    if kind == "companies":
        assert not doc["results"][6]["properties"]["name"].isascii()  # every 7th: multi-byte
    for params in ({"after": "not-a-cursor!"}, {"limit": 101}, {"limit": "ten"}):
        resp = client.get(f"{OBJECTS}/{kind}", params=params, headers=h)
        assert resp.status_code == 400 and resp.json()["category"] == "VALIDATION_ERROR"
    assert client.get(f"{OBJECTS}/{kind}").json()["category"] == "INVALID_AUTHENTICATION"


def test_empty_collections_and_shared_portal_budget(make_client, mint):
    client = make_client(rate_budget=3, rate_window_ms=10_000)
    client.post("/_sandbox/config", json={"volumes": {"hubspot.companies": 0, "hubspot.deals": 0}})
    h = bearer(mint(client))
    for kind in ("companies", "deals"):
        assert client.get(f"{OBJECTS}/{kind}", headers=h).json() == {"results": []}
    assert client.get(CONTACTS, headers=h).status_code == 200
    refused = client.get(f"{OBJECTS}/deals", headers=h)  # one budget for the whole portal
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_company_and_deal_data_is_deterministic():
    from sandbox.hubspot import company, deal

    assert company(5) == company(5) and deal(9) == deal(9)
    c = company(1)["properties"]
    assert set(c) >= {
        "name",
        "domain",
        "industry",
        "city",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    }
    d = deal(4)["properties"]
    assert (
        float(d["amount"]) > 0 and d["pipeline"] == "default" and d["closedate"] > d["createdate"]
    )


# ---- search -----------------------------------------------------------------------------------

SEARCH = f"{OBJECTS}/contacts/search"


def search_client(make_client, mint, contacts: int = 250, per_second: int = 1000):
    client = make_client(hubspot_contacts=contacts)
    client.post("/_sandbox/config", json={"rate_budgets": {"hubspot.search": per_second}})
    return client, bearer(mint(client))


def matching(body: dict) -> dict:
    return {"filterGroups": [{"filters": [body]}]}


def test_search_pages_with_string_offsets_and_ends_without_paging(make_client, mint):
    client, h = search_client(make_client, mint)
    ids: list[str] = []
    body: dict = {"limit": 100, "filterGroups": []}
    while True:
        resp = client.post(SEARCH, json=body, headers=h)
        assert resp.status_code == 200
        assert not any(k.lower().startswith("x-hubspot-ratelimit") for k in resp.headers)
        doc = resp.json()
        assert doc["total"] == 250
        ids += [r["id"] for r in doc["results"]]
        if "paging" not in doc:
            break
        assert doc["paging"] == {"next": {"after": str(len(ids))}}
        body["after"] = doc["paging"]["next"]["after"]
    assert ids == [str(i) for i in range(1, 251)]
    # Same records as the list endpoint, same default properties.
    listed = client.get(CONTACTS, params={"limit": 5}, headers=h).json()["results"]
    assert client.post(SEARCH, json={"limit": 5}, headers=h).json()["results"] == listed
    assert len(client.post(SEARCH, json={}, headers=h).json()["results"]) == 10  # default
    single = client.post(SEARCH, json={"limit": 200, "after": "100"}, headers=h).json()
    assert len(single["results"]) == 150 and "paging" not in single


def test_search_filters_eq_and_contains_token(make_client, mint):
    from sandbox.hubspot import contact

    client, h = search_client(make_client, mint, contacts=500)
    everyone = [contact(i)["properties"] for i in range(1, 501)]

    def ids(filters: list[dict], **extra) -> list[str]:
        body = {"filterGroups": [{"filters": filters}], "limit": 200, **extra}
        out: list[str] = []
        while True:
            doc = client.post(SEARCH, json=body, headers=h).json()
            out += [r["id"] for r in doc["results"]]
            if "paging" not in doc:
                assert doc["total"] == len(out)
                return out
            body["after"] = doc["paging"]["next"]["after"]

    def expect(pred) -> list[str]:
        return [p["hs_object_id"] for p in everyone if pred(p)]

    email = everyone[41]["email"]
    assert ids([{"propertyName": "email", "operator": "EQ", "value": email.upper()}]) == ["42"]
    assert ids([{"propertyName": "firstname", "operator": "EQ", "value": "Alice"}]) == expect(
        lambda p: p["firstname"] == "Alice"
    )
    assert ids(
        [{"propertyName": "lastname", "operator": "CONTAINS_TOKEN", "value": "smith"}]
    ) == expect(lambda p: p["lastname"] == "Smith")
    assert ids(
        [{"propertyName": "company", "operator": "CONTAINS_TOKEN", "value": "industries"}]
    ) == expect(lambda p: "Industries" in p["company"])
    wild = ids([{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@acme.example"}])
    assert wild == expect(lambda p: p["email"].endswith("@acme.example")) and wild
    assert ids([{"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "acme"}]) == wild
    # AND inside a group, OR across groups.
    both = ids(
        [
            {"propertyName": "firstname", "operator": "EQ", "value": "Bob"},
            {"propertyName": "company", "operator": "EQ", "value": "Globex"},
        ]
    )
    assert both == expect(lambda p: p["firstname"] == "Bob" and p["company"] == "Globex")
    body = {
        "filterGroups": [
            {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "Bob"}]},
            {"filters": [{"propertyName": "firstname", "operator": "EQ", "value": "Carol"}]},
        ],
        "limit": 200,
    }
    either = [r["id"] for r in client.post(SEARCH, json=body, headers=h).json()["results"]]
    assert either == expect(lambda p: p["firstname"] in ("Bob", "Carol"))

    assert ids([{"propertyName": "hs_object_id", "operator": "GT", "value": "490"}]) == [
        str(i) for i in range(491, 501)
    ]
    assert ids(
        [{"propertyName": "hs_object_id", "operator": "BETWEEN", "value": "5", "highValue": 7}]
    ) == ["5", "6", "7"]
    created = everyone[9]["createdate"]
    assert ids([{"propertyName": "createdate", "operator": "LT", "value": created}]) == [
        str(i) for i in range(1, 10)
    ]
    assert ids(
        [{"propertyName": "company", "operator": "IN", "values": ["Hooli", "Tyrell"]}]
    ) == expect(lambda p: p["company"] in ("Hooli", "Tyrell"))
    assert ids([{"propertyName": "company", "operator": "NEQ", "value": "Hooli"}]) == expect(
        lambda p: p["company"] != "Hooli"
    )
    assert len(ids([{"propertyName": "email", "operator": "HAS_PROPERTY"}])) == 500
    assert ids([{"propertyName": "email", "operator": "NOT_HAS_PROPERTY"}]) == []

    # One sort rule, and the asked-for properties (plus the always-on ones).
    doc = client.post(
        SEARCH,
        headers=h,
        json={
            **matching({"propertyName": "firstname", "operator": "EQ", "value": "Alice"}),
            "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}],
            "properties": ["firstname", "company"],
            "limit": 3,
        },
    ).json()
    alices = expect(lambda p: p["firstname"] == "Alice")
    assert [r["id"] for r in doc["results"]] == alices[::-1][:3]
    assert set(doc["results"][0]["properties"]) == {
        "firstname",
        "company",
        "createdate",
        "hs_object_id",
        "lastmodifieddate",
    }
    assert doc["paging"]["next"]["after"] == "3" and doc["total"] == len(alices)


def test_search_ceiling_of_10000_results(make_client, mint):
    client, h = search_client(make_client, mint, contacts=10_500)
    body = {
        **matching({"propertyName": "email", "operator": "HAS_PROPERTY"}),
        "limit": 200,
        "after": "9800",
    }
    doc = client.post(SEARCH, json=body, headers=h).json()
    assert doc["total"] == 10_500 and len(doc["results"]) == 200
    assert doc["results"][-1]["id"] == "10000"
    assert doc["paging"] == {"next": {"after": "10000"}}  # offered, but a trap
    capped = client.post(SEARCH, json={**body, "after": "9900"}, headers=h).json()
    assert [r["id"] for r in capped["results"]][-1] == "10000" and len(capped["results"]) == 100
    for after in ("10000", 10_000, "10200"):
        resp = client.post(SEARCH, json={**body, "after": after}, headers=h)
        assert resp.status_code == 400
        err = resp.json()
        assert err["status"] == "error" and err["category"] == "VALIDATION_ERROR"
        assert "10000" in err["message"]
        uuid.UUID(err["correlationId"])


def test_search_validation_errors_are_hubspot_shaped(make_client, mint):
    client, h = search_client(make_client, mint)
    bad = [
        matching({"propertyName": "email", "operator": "LIKE", "value": "x"}),
        matching({"propertyName": "email", "operator": "EQ"}),
        matching({"operator": "EQ", "value": "x"}),
        matching({"propertyName": "email", "operator": "IN", "values": []}),
        {"limit": 201},
        {"limit": 0},
        {"limit": "many"},
        {"after": "abc"},
        {"sorts": ["createdate", "email"]},
        {"sorts": [{"propertyName": "createdate", "direction": "UP"}]},
        {"filterGroups": [{"filters": []}] * 6},
        {"filterGroups": "nope"},
        {"properties": "email"},
    ]
    for body in bad:
        resp = client.post(SEARCH, json=body, headers=h)
        assert resp.status_code == 400, body
        err = resp.json()
        assert err["status"] == "error" and err["category"] == "VALIDATION_ERROR", body
        uuid.UUID(err["correlationId"])
    op = client.post(SEARCH, json=bad[0], headers=h).json()["message"]
    assert 'from String "LIKE"' in op and "CONTAINS_TOKEN" in op
    raw = client.post(SEARCH, content=b"{nope", headers={**h, "content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["message"].startswith("Invalid input JSON")
    assert client.post(SEARCH, json={}).json()["category"] == "INVALID_AUTHENTICATION"
    expired = client.post(SEARCH, json={}, headers=bearer(mint(client, expires_in=0)))
    assert expired.status_code == 401 and expired.json()["category"] == "EXPIRED_AUTHENTICATION"


def test_search_has_its_own_secondly_limit(make_client, mint):
    client = make_client(rate_budget=100, rate_window_ms=10_000)
    h = bearer(mint(client))
    # Real HubSpot: about 5 search requests per second, whatever the portal's burst budget.
    statuses = [client.post(SEARCH, json={"limit": 1}, headers=h).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    resp = client.post(SEARCH, json={"limit": 1}, headers=h)
    assert resp.status_code == 429
    body = resp.json()
    assert body == {
        "status": "error",
        "message": "You have reached your secondly limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": body["correlationId"],
        "policyName": "SECONDLY",
    }
    assert not any(k.lower().startswith("x-hubspot-ratelimit") for k in resp.headers)
    assert "retry-after" not in resp.headers
    # The list endpoints' budget is untouched by search, and search's by them.
    listed = client.get(CONTACTS, headers=h)
    assert listed.status_code == 200 and listed.headers["X-HubSpot-RateLimit-Remaining"] == "99"
    time.sleep(1.05)
    assert client.post(SEARCH, json={"limit": 1}, headers=h).status_code == 200
    assert client.get("/_sandbox/stats").json()["rate_limited"] == 2

    client.post("/_sandbox/config", json={"rate_budgets": {"hubspot.search": 1}})
    client.post("/_sandbox/reset")  # forgets the window (and the tokens)
    h = bearer(mint(client))
    assert [client.post(SEARCH, json={}, headers=h).status_code for _ in range(2)] == [200, 429]


def test_missing_scopes_403(make_client):
    client = make_client()
    token = "pat-na1-test~crm.objects.contacts.read"  # sandbox convention: only these scopes
    client.post("/_sandbox/static-token", json={"vendor": "hubspot", "token": token})
    h = {"Authorization": f"Bearer {token}"}
    assert client.get(CONTACTS, headers=h).status_code == 200
    assert client.post(SEARCH, json={}, headers=h).status_code == 200
    for resp in (
        client.get(f"{OBJECTS}/deals", headers=h),
        client.post(f"{OBJECTS}/companies/search", json={}, headers=h),
    ):
        assert resp.status_code == 403
        body = resp.json()
        assert body["category"] == "MISSING_SCOPES" and body["status"] == "error"
        assert body["message"].startswith("This app hasn't been granted all required scopes")
        assert body["errors"][0]["context"]["requiredGranularScopes"][0].startswith("crm.objects.")
        assert body["links"] == {"scopes": "https://developers.hubspot.com/scopes"}
        assert resp.headers["X-HubSpot-Correlation-Id"] == body["correlationId"]


# ---- writes (#15): batch upsert by email, create conflict, faults, over real HTTP -----------


@pytest.fixture
def hub_live(live_sandbox):
    live_sandbox.config(hubspot_contacts=50)
    body = {"vendor": "hubspot", "client_id": "cid-1", "client_secret": "secret-1"}
    token = requests.post(f"{live_sandbox.url}/_sandbox/tokens", json=body, timeout=5).json()
    live_sandbox.h = bearer(token)
    return live_sandbox


def hub(live, method: str, path: str, json=None):
    url = f"{live.url}{CONTACTS}{path}"
    return requests.request(method, url, json=json, headers=live.h, timeout=5)


def upsert_input(email: str, **props) -> dict:
    return {"idProperty": "email", "id": email, "properties": props}


def test_batch_upsert_creates_then_updates_the_same_contact(hub_live):
    first = hub(
        hub_live, "POST", "/batch/upsert", {"inputs": [upsert_input("ada@x.io", firstname="Ada")]}
    )
    assert first.status_code == 200, first.text
    doc = first.json()
    assert doc["status"] == "COMPLETE" and "errors" not in doc
    (made,) = doc["results"]
    assert made["new"] is True and made["properties"]["email"] == "ada@x.io"
    again = hub(
        hub_live, "POST", "/batch/upsert", {"inputs": [upsert_input("ada@x.io", lastname="L")]}
    )
    (same,) = again.json()["results"]
    assert same["id"] == made["id"] and same["new"] is False
    assert same["properties"]["firstname"] == "Ada" and same["properties"]["lastname"] == "L"
    effects = hub_live.effects("hubspot")
    assert [(e["kind"], e["object_id"]) for e in effects] == [
        ("create", made["id"]),
        ("update", made["id"]),
    ]
    seeded = hub(hub_live, "POST", "/batch/upsert", {"inputs": [upsert_input(contact_email(3))]})
    assert seeded.json()["results"][0]["id"] == "3" and seeded.json()["results"][0]["new"] is False


def contact_email(i: int) -> str:
    from sandbox.hubspot import contact

    return contact(i)["properties"]["email"]


def test_a_bad_input_is_a_207_and_the_rest_are_written(hub_live):
    inputs = [upsert_input("ok@x.io"), upsert_input("bad@x.io", colour="red"), upsert_input("nope")]
    resp = hub(hub_live, "POST", "/batch/upsert", {"inputs": inputs})
    assert resp.status_code == 207, resp.text
    doc = resp.json()
    assert [r["properties"]["email"] for r in doc["results"]] == ["ok@x.io"]
    assert doc["numErrors"] == 2
    assert [e["context"]["ids"] for e in doc["errors"]] == [["bad@x.io"], ["nope"]]
    assert all(
        e["category"] == "VALIDATION_ERROR" and e["status"] == "error" for e in doc["errors"]
    )
    assert doc["errors"][0]["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert len(hub_live.effects("hubspot")) == 1


def test_more_than_100_inputs_or_a_repeated_id_are_refused_whole(hub_live):
    many = [upsert_input(f"u{i}@x.io") for i in range(101)]
    resp = hub(hub_live, "POST", "/batch/upsert", {"inputs": many})
    assert resp.status_code == 400 and resp.json()["category"] == "VALIDATION_ERROR"
    twice = [upsert_input("a@x.io"), upsert_input("a@x.io")]
    resp = hub(hub_live, "POST", "/batch/upsert", {"inputs": twice})
    assert resp.status_code == 400 and "Duplicate IDs" in resp.json()["message"]
    assert hub_live.effects("hubspot") == []


def test_create_conflict_names_the_existing_id_then_update_and_archive(hub_live):
    made = hub(hub_live, "POST", "", {"properties": {"email": "c@x.io", "firstname": "C"}})
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    dup = hub(hub_live, "POST", "", {"properties": {"email": "c@x.io"}})
    assert dup.status_code == 409 and dup.json()["category"] == "CONFLICT"
    assert dup.json()["message"] == f"Contact already exists. Existing ID: {cid}"
    seeded = hub(hub_live, "POST", "", {"properties": {"email": contact_email(4)}})
    assert seeded.json()["message"].endswith("Existing ID: 4")
    upd = hub(hub_live, "PATCH", f"/{cid}", {"properties": {"firstname": "D"}})
    assert upd.status_code == 200 and upd.json()["properties"]["firstname"] == "D"
    assert hub(hub_live, "DELETE", f"/{cid}").status_code == 204
    assert (
        hub(hub_live, "PATCH", f"/{cid}", {"properties": {}}).json()["category"]
        == "OBJECT_NOT_FOUND"
    )
    assert hub(hub_live, "DELETE", f"/{cid}").status_code == 204  # archiving twice: no effect
    kinds = [e["kind"] for e in hub_live.effects("hubspot")]
    assert kinds == ["create", "update", "delete"]


def test_a_batch_committed_then_dropped_resends_to_one_contact_per_email(hub_live):
    inputs = [upsert_input(f"d{i}@x.io", firstname=str(i)) for i in range(3)]
    hub_live.config(drop_after_commit_next=1)
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        hub(hub_live, "POST", "/batch/upsert", {"inputs": inputs})
    assert [e["kind"] for e in hub_live.effects("hubspot")] == ["create"] * 3  # all committed
    resend = hub(hub_live, "POST", "/batch/upsert", {"inputs": inputs})
    assert resend.status_code == 200 and not any(r["new"] for r in resend.json()["results"])
    per_object = requests.get(f"{hub_live.url}/hubspot/_sandbox/effects", timeout=5).json()[
        "per_object"
    ]
    assert len(per_object) == 3 and all(
        c == {"create": 1, "update": 0, "noop": 1} for c in per_object.values()
    )


def test_a_failure_before_commit_is_a_503_with_no_effect(hub_live):
    hub_live.config(fail_before_commit_next=1)
    resp = hub(hub_live, "POST", "/batch/upsert", {"inputs": [upsert_input("f@x.io")]})
    assert resp.status_code == 503 and resp.json()["category"] == "SERVICE_UNAVAILABLE"
    assert hub_live.effects("hubspot") == []
    resend = hub(hub_live, "POST", "/batch/upsert", {"inputs": [upsert_input("f@x.io")]})
    assert resend.json()["results"][0]["new"] is True


def test_a_resent_update_or_upsert_that_changes_nothing_is_a_noop_effect(hub_live):
    made = hub(hub_live, "POST", "", {"properties": {"email": "n@x.io", "firstname": "N"}}).json()
    first = hub(hub_live, "PATCH", f"/{made['id']}", {"properties": {"firstname": "M"}}).json()
    again = hub(hub_live, "PATCH", f"/{made['id']}", {"properties": {"firstname": "M"}}).json()
    assert again["updatedAt"] == first["updatedAt"]  # nothing changed, nothing touched
    hub(hub_live, "POST", "/batch/upsert", {"inputs": [upsert_input("n@x.io", firstname="M")]})
    effects = requests.get(f"{hub_live.url}/hubspot/_sandbox/effects", timeout=5).json()
    assert [e["kind"] for e in effects["effects"]] == ["create", "update", "noop", "noop"]
    assert effects["per_object"] == {made["id"]: {"create": 1, "update": 1, "noop": 2}}
