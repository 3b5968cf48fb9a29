"""Salesforce sandbox speaks Salesforce: query locators, SOQL errors, limits, OAuth."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from functools import partial

import pytest
import requests
from support import refresh_grant

from sandbox.salesforce import account_id, contact_id

QUERY = "/salesforce/services/data/v62.0/query"
TOKEN = "/salesforce/services/oauth2/token"


def auth(account: dict, batch: int | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {account['access_token']}"}
    if batch:
        headers["Sforce-Query-Options"] = f"batchSize={batch}"
    return headers


refresh = partial(refresh_grant, TOKEN)


def test_ids_are_18_char_salesforce_ids_in_order():
    assert contact_id(1) == "003RO0000000001YAA"
    assert account_id(7) == "001RO0000000007YAA"
    assert sorted(contact_id(i) for i in range(1, 300)) == [contact_id(i) for i in range(1, 300)]


def test_locator_paging_until_done(make_client, mint):
    client = make_client()  # default volume: 1000 contacts
    acct = mint(client, "salesforce")
    h = auth(acct, batch=200)
    doc = client.get(QUERY, params={"q": "SELECT Id, Email FROM Contact"}, headers=h).json()
    assert list(doc) == ["totalSize", "done", "nextRecordsUrl", "records"]
    assert doc["totalSize"] == 1000 and doc["done"] is False
    urls = []
    ids = [r["Id"] for r in doc["records"]]
    while not doc["done"]:
        url = doc["nextRecordsUrl"]
        assert url.startswith("/services/data/v62.0/query/01g")  # relative to the instance
        urls.append(url)
        # The locator remembers the batch size: no header needed on later requests.
        doc = client.get(f"/salesforce{url}", headers=auth(acct)).json()
        ids += [r["Id"] for r in doc["records"]]
    assert "nextRecordsUrl" not in doc and doc["totalSize"] == 1000
    assert ids == [contact_id(i) for i in range(1, 1001)]
    assert [u.rsplit("-", 1)[1] for u in urls] == ["200", "400", "600", "800"]
    # Default batch is 2000: one page, done at once.
    one = client.get(QUERY, params={"q": "SELECT Id FROM Contact"}, headers=auth(acct)).json()
    assert one["done"] is True and len(one["records"]) == 1000 and "nextRecordsUrl" not in one
    # Out-of-range batch sizes are clamped to 200..2000, as Salesforce treats it as a hint.
    small = client.get(QUERY, params={"q": "SELECT Id FROM Contact"}, headers=auth(acct, 5))
    assert len(small.json()["records"]) == 200


def test_record_shape_projection_and_relationships(make_client, mint):
    client = make_client()
    h = auth(mint(client, "salesforce"))
    soql = (
        "select id, firstname, LastName, Email, Phone, Account.Name, CreatedDate, "
        "LastModifiedDate from contact where Email != null order by Id limit 30"
    )
    doc = client.get(QUERY, params={"q": soql}, headers=h).json()
    assert doc["totalSize"] == 30 and doc["done"] is True
    rec = doc["records"][0]
    assert list(rec) == [
        "attributes", "Id", "FirstName", "LastName", "Email", "Phone", "Account",
        "CreatedDate", "LastModifiedDate",
    ]  # fmt: skip
    assert rec["attributes"] == {
        "type": "Contact",
        "url": f"/services/data/v62.0/sobjects/Contact/{contact_id(1)}",
    }
    assert rec["Account"]["attributes"]["type"] == "Account" and rec["Account"]["Name"]
    assert rec["CreatedDate"].endswith("+0000") and rec["CreatedDate"][10] == "T"
    assert doc["records"][24]["Account"] is None  # every 25th contact has no account
    assert not doc["records"][6]["FirstName"].isascii()  # multi-byte names occur

    accounts = client.get(
        QUERY, params={"q": "SELECT Id, Name, Industry, CreatedDate FROM Account LIMIT 5"},
        headers=h,
    ).json()  # fmt: skip
    assert [r["Id"] for r in accounts["records"]] == [account_id(j) for j in range(1, 6)]
    assert accounts["records"][0]["attributes"]["type"] == "Account"
    offset = client.get(
        QUERY, params={"q": "SELECT Id FROM Account LIMIT 2 OFFSET 10"}, headers=h
    ).json()
    assert [r["Id"] for r in offset["records"]] == [account_id(11), account_id(12)]


def test_volumes_and_empty_result(make_client, mint):
    client = make_client()
    h = auth(mint(client, "salesforce"))
    client.post("/_sandbox/config", json={"volumes": {"salesforce.contacts": 0}})
    doc = client.get(QUERY, params={"q": "SELECT Id FROM Contact"}, headers=h).json()
    assert doc == {"totalSize": 0, "done": True, "records": []}
    client.post("/_sandbox/config", json={"volumes": {"salesforce.accounts": 3}})
    doc = client.get(QUERY, params={"q": "SELECT Id FROM Account"}, headers=h).json()
    assert doc["totalSize"] == 3


def test_soql_errors_are_salesforce_shaped(make_client, mint):
    client = make_client()
    h = auth(mint(client, "salesforce"))
    cases = {
        "SELECT Id, Foo FROM Contact": (
            "INVALID_FIELD",
            "No such column 'Foo' on entity 'Contact'",
        ),
        "SELECT Id, Account.Foo FROM Contact": ("INVALID_FIELD", "on entity 'Account'"),
        "SELECT Id, Owner.Name FROM Contact": ("INVALID_FIELD", "relationship 'Owner'"),
        "SELECT Id FROM Widget": ("INVALID_TYPE", "sObject type 'Widget' is not supported"),
        "SELEC Id FROM Contact": ("MALFORMED_QUERY", "unexpected token: 'SELEC'"),
        "SELECT Id FROM Contact LIMIT ten": ("MALFORMED_QUERY", "unexpected token: 'ten'"),
        "SELECT Id FROM Contact OFFSET 5000": ("NUMBER_OUTSIDE_VALID_RANGE", "2000"),
    }
    for soql, (code, text) in cases.items():
        resp = client.get(QUERY, params={"q": soql}, headers=h)
        assert resp.status_code == 400, soql
        body = resp.json()
        assert (
            isinstance(body, list)
            and len(body) == 1
            and set(body[0])
            == {
                "message",
                "errorCode",
            }
        )
        assert body[0]["errorCode"] == code and text in body[0]["message"], (soql, body)
        assert resp.headers["Sforce-Limit-Info"].startswith("api-usage=")
    column = client.get(QUERY, params={"q": "SELECT Id, Foo FROM Contact"}, headers=h).json()
    assert "ERROR at Row:1:Column:12" in column[0]["message"]
    missing = client.get(QUERY, headers=h)
    assert missing.status_code == 400 and missing.json()[0]["errorCode"] == "MALFORMED_QUERY"
    stale = client.get(f"{QUERY}/01gRO0000009999YAA-200", headers=h)
    assert stale.status_code == 400
    assert stale.json() == [
        {"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}
    ]


def test_401_shape(make_client, mint):
    client = make_client()
    expected = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    for headers in ({}, {"Authorization": "Bearer nope"}):
        resp = client.get(QUERY, params={"q": "SELECT Id FROM Contact"}, headers=headers)
        assert resp.status_code == 401 and resp.json() == expected
        assert "Sforce-Limit-Info" not in resp.headers  # the org is unknown
    expired = mint(client, "salesforce", expires_in=0)
    resp = client.get(QUERY, params={"q": "SELECT Id FROM Contact"}, headers=auth(expired))
    assert resp.status_code == 401 and resp.json() == expected
    # A hubspot token is not a Salesforce session.
    other = mint(client, "hubspot")
    assert (
        client.get(QUERY, params={"q": "SELECT Id FROM Contact"}, headers=auth(other)).status_code
        == 401
    )


def test_limit_info_on_every_response_and_403_when_exhausted(make_client, mint):
    client = make_client(rate_budget=3, rate_window_ms=500)
    h = auth(mint(client, "salesforce"))
    usage = [
        client.get(QUERY, params={"q": "SELECT Id FROM Contact LIMIT 1"}, headers=h).headers[
            "Sforce-Limit-Info"
        ]
        for _ in range(3)
    ]
    assert usage == ["api-usage=1/3", "api-usage=2/3", "api-usage=3/3"]
    resp = client.get(QUERY, params={"q": "SELECT Id FROM Contact LIMIT 1"}, headers=h)
    assert resp.status_code == 403
    assert resp.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert resp.headers["Sforce-Limit-Info"] == "api-usage=3/3"
    assert "retry-after" not in resp.headers  # Salesforce names no time
    time.sleep(0.55)
    assert (
        client.get(QUERY, params={"q": "SELECT Id FROM Contact LIMIT 1"}, headers=h).status_code
        == 200
    )
    assert client.get("/_sandbox/stats").json()["rate_limited"] == 1


def test_refresh_has_no_expires_in_and_rotation_is_opt_in(make_client, mint):
    client = make_client(token_ttl_s=7200)
    acct = mint(client, "salesforce")
    resp = refresh(client, acct)
    assert resp.status_code == 200
    doc = resp.json()
    assert set(doc) == {
        "access_token", "instance_url", "id", "token_type", "issued_at", "signature",
    }  # fmt: skip
    assert doc["token_type"] == "Bearer" and "expires_in" not in doc
    assert doc["instance_url"] == "http://testserver/salesforce"
    expected = hmac.new(
        acct["client_secret"].encode(), (doc["id"] + doc["issued_at"]).encode(), hashlib.sha256
    ).digest()
    assert base64.b64decode(doc["signature"]) == expected
    assert client.get(QUERY, params={"q": "SELECT Id FROM Contact LIMIT 1"},
                      headers=auth(doc)).status_code == 200  # fmt: skip
    assert refresh(client, acct).status_code == 200  # not rotated: the old one still works

    client.post("/_sandbox/config", json={"rotate_refresh_tokens": {"salesforce": True}})
    rotated = refresh(client, acct).json()
    assert rotated["refresh_token"] != acct["refresh_token"]
    reused = refresh(client, acct)
    assert reused.status_code == 400
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    assert refresh(client, acct, rotated["refresh_token"]).status_code == 200

    bad_secret = refresh(client, acct, rotated["refresh_token"], client_secret="wrong")
    assert bad_secret.status_code == 400 and bad_secret.json()["error"] == "invalid_client"
    bad_id = refresh(client, acct, rotated["refresh_token"], client_id="nobody")
    assert bad_id.status_code == 400 and bad_id.json()["error"] == "invalid_client_id"
    grant = refresh(client, acct, grant_type="password")
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    assert client.get("/_sandbox/stats").json()["refresh_calls"]["salesforce"] == 8
    log = client.get("/_sandbox/requests", params={"vendor": "salesforce"}).json()
    assert [e["status"] for e in log if e["kind"] == "token"] == [
        200, 200, 200, 400, 200, 400, 400, 400,
    ]  # fmt: skip


# ---- writes (#15): upsert by External ID, sObject Collections, faults, over real HTTP --------

DATA = "/salesforce/services/data/v62.0"


@pytest.fixture
def sf_live(live_sandbox):
    body = {"vendor": "salesforce", "client_id": "cid-1", "client_secret": "secret-1"}
    token = requests.post(f"{live_sandbox.url}/_sandbox/tokens", json=body, timeout=5).json()
    live_sandbox.h = auth(token)
    return live_sandbox


def patch(live, path: str, body) -> requests.Response:
    return requests.patch(f"{live.url}{DATA}{path}", json=body, headers=live.h, timeout=5)


def rec(ext: str, **fields) -> dict:
    return {"attributes": {"type": "Contact"}, "Ext_Id__c": ext, **fields}


def test_upsert_one_creates_201_then_updates_200_the_same_record(sf_live):
    first = patch(sf_live, "/sobjects/Contact/Ext_Id__c/E-1", {"LastName": "Lovelace"})
    assert first.status_code == 201, first.text
    doc = first.json()
    assert doc["success"] is True and doc["created"] is True and doc["errors"] == []
    assert doc["id"].startswith("003") and len(doc["id"]) == 18
    again = patch(sf_live, "/sobjects/Contact/Ext_Id__c/E-1", {"FirstName": "Ada"})
    assert again.status_code == 200 and again.json() == {**doc, "created": False}
    old = requests.patch(
        f"{sf_live.url}/salesforce/services/data/v45.0/sobjects/Contact/Ext_Id__c/E-1",
        json={"Phone": "1"},
        headers=sf_live.h,
        timeout=5,
    )
    assert old.status_code == 204 and old.content == b""
    effects = sf_live.effects("salesforce")
    assert [(e["kind"], e["object_id"]) for e in effects] == [("create", doc["id"])] + [
        ("update", doc["id"])
    ] * 2
    bad = patch(sf_live, "/sobjects/Contact/Ext_Id__c/E-2", {"Colour": "red"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
    nofield = patch(sf_live, "/sobjects/Contact/Email/a@b.c", {"LastName": "X"})
    assert nofield.status_code == 404 and nofield.json()[0]["errorCode"] == "NOT_FOUND"
    assert len(sf_live.effects("salesforce")) == 3


def test_collection_partial_without_all_or_none(sf_live):
    body = {
        "allOrNone": False,
        "records": [rec("C-1", LastName="A"), rec("", LastName="B"), rec("C-3", Colour="x")],
    }
    resp = patch(sf_live, "/composite/sobjects/Contact/Ext_Id__c", body)
    assert resp.status_code == 200, resp.text
    ok, missing, unknown = resp.json()
    assert ok["success"] is True and ok["created"] is True and ok["errors"] == []
    assert missing["success"] is False and missing["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    assert unknown["errors"][0] == {
        "statusCode": "INVALID_FIELD",
        "message": "No such column 'Colour' on sobject of type Contact",
        "fields": ["Colour"],
    }
    again = patch(
        sf_live, "/composite/sobjects/Contact/Ext_Id__c", {"records": [rec("C-1", LastName="Z")]}
    )
    assert again.json()[0] == {**ok, "created": False}
    assert [e["kind"] for e in sf_live.effects("salesforce")] == ["create", "update"]


def test_collection_all_or_none_rolls_back_everything(sf_live):
    body = {"allOrNone": True, "records": [rec("R-1", LastName="A"), rec("R-2", Colour="x")]}
    resp = patch(sf_live, "/composite/sobjects/Contact/Ext_Id__c", body)
    assert resp.status_code == 200
    rolled, bad = resp.json()
    assert (
        rolled["success"] is False
        and rolled["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    )
    assert bad["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert sf_live.effects("salesforce") == []
    many = {"records": [rec(f"M-{i}") for i in range(201)]}
    too_many = patch(sf_live, "/composite/sobjects/Contact/Ext_Id__c", many)
    assert too_many.status_code == 400 and too_many.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    dup = patch(sf_live, "/composite/sobjects/Contact/Ext_Id__c", {"records": [rec("D"), rec("D")]})
    assert [r["errors"][0]["statusCode"] for r in dup.json()] == ["DUPLICATE_EXTERNAL_ID"] * 2
    assert sf_live.effects("salesforce") == []


def test_a_collection_committed_then_dropped_resends_to_one_record_per_external_id(sf_live):
    records = [rec(f"X-{i}", LastName=str(i)) for i in range(3)]
    sf_live.config(drop_after_commit_next=1)
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        patch(sf_live, "/composite/sobjects/Contact/Ext_Id__c", {"records": records})
    assert [e["kind"] for e in sf_live.effects("salesforce")] == ["create"] * 3
    resend = patch(sf_live, "/composite/sobjects/Contact/Ext_Id__c", {"records": records})
    assert all(r["success"] and not r["created"] for r in resend.json())
    ids = {e["object_id"] for e in sf_live.effects("salesforce")}
    assert len(ids) == 3 and {r["id"] for r in resend.json()} == ids


def test_a_failure_before_commit_is_a_500_with_no_effect(sf_live):
    sf_live.config(fail_before_commit_next=1)
    resp = patch(sf_live, "/sobjects/Contact/Ext_Id__c/F-1", {"LastName": "F"})
    assert resp.status_code == 500 and resp.json()[0]["errorCode"] == "UNKNOWN_EXCEPTION"
    assert sf_live.effects("salesforce") == []
    assert patch(sf_live, "/sobjects/Contact/Ext_Id__c/F-1", {"LastName": "F"}).status_code == 201


def test_update_and_delete_by_id_with_their_404s(sf_live):
    created = patch(sf_live, "/sobjects/Contact/Ext_Id__c/U-1", {"LastName": "Hopper"}).json()
    rid = created["id"]
    upd = patch(sf_live, f"/sobjects/Contact/{rid}", {"FirstName": "Grace"})
    assert upd.status_code == 204 and upd.content == b""
    same = patch(sf_live, f"/sobjects/Contact/{rid}", {"FirstName": "Grace"})
    assert same.status_code == 204
    bad = patch(sf_live, f"/sobjects/Contact/{rid}", {"Colour": "red"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
    unknown = patch(sf_live, "/sobjects/Contact/003000000000000AAA", {"FirstName": "X"})
    assert unknown.status_code == 404 and unknown.json()[0]["errorCode"] == "NOT_FOUND"
    url = f"{sf_live.url}{DATA}/sobjects/Contact/{rid}"
    gone = requests.delete(url, headers=sf_live.h, timeout=5)
    assert gone.status_code == 204
    again = requests.delete(url, headers=sf_live.h, timeout=5)
    assert again.status_code == 404 and again.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert patch(sf_live, f"/sobjects/Contact/{rid}", {"FirstName": "Y"}).status_code == 404
    kinds = [(e["kind"], e["object_id"]) for e in sf_live.effects("salesforce")]
    assert kinds == [("create", rid), ("update", rid), ("noop", rid), ("delete", rid)]
    anew = patch(sf_live, "/sobjects/Contact/Ext_Id__c/U-1", {"LastName": "Hopper"})
    assert anew.status_code == 201 and anew.json()["id"] != rid  # a deleted record is not found
