"""The sandbox finds a Salesforce record by its External ID through an index, not a scan: 20,000
upserts in 100 sObject Collections requests stay fast, and the index follows a PATCH that
changes the value, a delete, and serves SOQL lookups by custom field and by Id."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

SF = "/salesforce/services/data/v62.0"
COLLECTION = f"{SF}/composite/sobjects/Contact/Ext__c"


def _client(make_client, mint) -> tuple[TestClient, dict[str, str]]:
    client = make_client(rate_budget=1_000_000)
    return client, {"Authorization": f"Bearer {mint(client, 'salesforce')['access_token']}"}


def _batch(k: int) -> dict:
    return {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Contact"}, "Ext__c": f"P-{k * 200 + i}", "LastName": str(i)}
            for i in range(200)
        ],
    }


def _lookup(client: TestClient, h: dict[str, str], where: str) -> list[str]:
    soql = f"SELECT Id, Ext__c FROM Contact WHERE {where}"
    doc = client.get(f"{SF}/query", params={"q": soql}, headers=h).json()
    return [r["Id"] for r in doc["records"]]


def test_twenty_thousand_upserts_in_a_hundred_collections_cost_the_same_per_request(
    make_client, mint
) -> None:
    client, h = _client(make_client, mint)
    took = []
    for k in range(100):
        started = time.perf_counter()
        answer = client.patch(COLLECTION, json=_batch(k), headers=h)
        took.append(time.perf_counter() - started)
        assert answer.status_code == 200
        assert all(r["success"] and r["created"] for r in answer.json())
    # a scan per record made request k cost ~k times the first (the last ten ~15x the first
    # ten, over 20 s in all); an index keeps them alike
    first, last = sum(took[:10]), sum(took[-10:])
    assert sum(took) < 20, f"100 requests took {sum(took):.1f} s"
    assert last < 3 * first + 0.5, f"first ten {first:.2f} s, last ten {last:.2f} s"
    again = client.patch(COLLECTION, json=_batch(0), headers=h).json()
    assert [r["created"] for r in again] == [False] * 200
    assert client.get("/salesforce/_sandbox/effects").json()["count"] == 20_200
    assert len(_lookup(client, h, "Ext__c IN ('P-0', 'P-19999', 'P-20000')")) == 2


def test_an_upsert_finds_the_record_by_the_value_a_patch_gave_it(make_client, mint) -> None:
    client, h = _client(make_client, mint)
    made = client.patch(
        COLLECTION,
        json={"records": [{"attributes": {"type": "Contact"}, "Ext__c": "A-1", "LastName": "L"}]},
        headers=h,
    ).json()
    rid = made[0]["id"]
    moved = client.patch(f"{SF}/sobjects/Contact/{rid}", json={"Ext__c": "A-2"}, headers=h)
    assert moved.status_code == 204

    found = client.patch(f"{SF}/sobjects/Contact/Ext__c/A-2", json={"FirstName": "F"}, headers=h)
    assert found.status_code == 200 and found.json() == {
        "id": rid,
        "success": True,
        "errors": [],
        "created": False,
    }
    old = client.patch(f"{SF}/sobjects/Contact/Ext__c/A-1", json={"LastName": "N"}, headers=h)
    assert old.status_code == 201 and old.json()["id"] != rid  # the old value finds nothing
    fresh = old.json()["id"]
    assert _lookup(client, h, "ext__c IN ('A-1', 'A-2')") == [rid, fresh]  # first-written order
    assert _lookup(client, h, "Ext__c = 'A-2'") == [rid]
    assert _lookup(client, h, f"Id IN ('{fresh}', '{rid}')") == [rid, fresh]

    assert client.delete(f"{SF}/sobjects/Contact/{rid}", headers=h).status_code == 204
    assert _lookup(client, h, "Ext__c = 'A-2'") == []
    assert _lookup(client, h, f"Id = '{rid}'") == []
    anew = client.patch(f"{SF}/sobjects/Contact/Ext__c/A-2", json={"LastName": "L"}, headers=h)
    assert anew.status_code == 201 and anew.json()["id"] not in (rid, fresh)
    assert _lookup(client, h, "Ext__c = 'A-2'") == [anew.json()["id"]]
    kinds = [e["kind"] for e in client.get("/salesforce/_sandbox/effects").json()["effects"]]
    assert kinds == ["create", "update", "update", "create", "delete", "create"]
