"""HubSpot sandbox speaks HubSpot: paging, projection, error shapes, limits, OAuth."""

from __future__ import annotations

import time
import uuid

from sandbox.hubspot import _encode_after

CONTACTS = "/hubspot/crm/v3/objects/contacts"
TOKEN = "/hubspot/oauth/v1/token"
RATE_HEADERS = (
    "X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds", "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
)


def bearer(account: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['access_token']}"}


def refresh(client, account: dict, refresh_token: str | None = None, **over: str):
    form = {"grant_type": "refresh_token", "client_id": account["client_id"],
            "client_secret": account["client_secret"],
            "refresh_token": refresh_token or account["refresh_token"], **over}
    return client.post(TOKEN, data=form)


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
    assert set(rec["properties"]) == {"createdate", "email", "firstname", "hs_object_id",
                                      "lastmodifieddate", "lastname"}
    assert rec["createdAt"].endswith("Z") and rec["archived"] is False
    assert rec["createdAt"] == rec["properties"]["createdate"]

    doc = client.get(CONTACTS, params={"properties": "email,notes,nope", "limit": 7},
                     headers=h).json()
    assert all(set(r["properties"]) == {"email", "notes", "createdate", "hs_object_id",
                                        "lastmodifieddate"} for r in doc["results"])
    assert len(doc["results"][0]["properties"]["notes"].encode()) >= 200
    repeated = client.get(f"{CONTACTS}?properties=firstname&properties=phone&limit=7",
                          headers=h).json()
    seventh = repeated["results"][6]["properties"]
    assert set(seventh) == {"firstname", "phone", "createdate", "hs_object_id",
                            "lastmodifieddate"}
    assert not seventh["firstname"].isascii()  # every 7th contact has a multi-byte name
    fresh = make_client(hubspot_contacts=30)  # data is a pure function of the index
    assert fresh.get(CONTACTS, headers=bearer(mint(fresh))).json() == \
        client.get(CONTACTS, headers=h).json()


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
    remaining = [client.get(CONTACTS, headers=h).headers["X-HubSpot-RateLimit-Remaining"]
                 for _ in range(3)]
    assert remaining == ["2", "1", "0"]
    resp = client.get(CONTACTS, headers=h)
    assert resp.status_code == 429
    body = resp.json()
    assert body == {"status": "error", "message": "You have reached your ten_secondly_rolling "
                    "limit.", "errorType": "RATE_LIMIT", "correlationId": body["correlationId"],
                    "policyName": "TEN_SECONDLY_ROLLING"}
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
    assert set(doc) == {"token_type", "refresh_token", "access_token", "expires_in"}
    assert doc["token_type"] == "bearer" and doc["expires_in"] == 1800
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
    assert client.get("/_sandbox/stats").json()["refresh_calls"] == {"hubspot": 5}

    log = client.get("/_sandbox/requests", params={"vendor": "hubspot"}).json()
    assert [e["status"] for e in log if e["kind"] == "token"] == [200, 200, 400, 200, 400]
    assert all(account["access_token"] not in str(e) for e in log)


def test_last_page_of_90000(make_client, mint):
    client = make_client()  # settings default: 90,000 contacts
    h = bearer(mint(client))
    doc = client.get(CONTACTS, params={"limit": 100, "after": _encode_after(89_900)},
                     headers=h).json()
    assert [r["id"] for r in doc["results"]] == [str(i) for i in range(89_901, 90_001)]
    assert "paging" not in doc


def test_admin_endpoints(make_client, mint):
    client = make_client()
    assert client.get("/healthz").json() == {"ok": True}
    assert client.post("/_sandbox/config", json={"bogus": 1}).status_code == 422
    assert client.post("/_sandbox/config", json={"error_rate": 2}).status_code == 422
    assert client.post("/_sandbox/tokens", json={"vendor": "nope", "client_id": "a",
                                                 "client_secret": "b"}).status_code == 422

    assert client.post("/_sandbox/static-token", json={"vendor": "hubspot",
                                                       "token": "pat-na1-x"}).status_code == 200
    t0 = time.time()
    assert client.get(f"{CONTACTS}?limit=1", headers={"Authorization": "Bearer pat-na1-x"}
                      ).status_code == 200
    entries = client.get("/_sandbox/requests", params={"since": t0}).json()
    assert [(e["vendor"], e["method"], e["path"], e["query"], e["status"], e["kind"])
            for e in entries] == [("hubspot", "GET", CONTACTS, "limit=1", 200, "api")]

    account = mint(client)
    assert client.post("/_sandbox/revoke", json={"vendor": "hubspot"}).json() == {"revoked": 1}
    assert refresh(client, account).json()["status"] == "BAD_REFRESH_TOKEN"

    client.delete("/_sandbox/requests")
    assert client.get("/_sandbox/requests").json() == []
    client.post("/_sandbox/reset")
    assert client.get("/_sandbox/stats").json() == {"requests": 0, "refresh_calls": {"hubspot": 0},
                                                    "rate_limited": 0}
    assert client.get(CONTACTS, headers={"Authorization": "Bearer pat-na1-x"}).status_code == 401


def test_faults_are_seeded(make_client, mint):
    def statuses() -> list[int]:
        client = make_client(error_rate=0.5)
        h = bearer(mint(client))
        return [client.get(CONTACTS, headers=h).status_code for _ in range(20)]

    first = statuses()
    assert first == statuses()
    assert set(first) >= {200} and set(first) & {502, 503}
