"""The reads a preview makes, served by the sandbox: HubSpot's contact GET and batch read,
Salesforce's record GET and SOQL lookup by External ID, Shopify's `customer(id:)`. Each sees
what writes left behind, and none is an effect."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from sandbox.salesforce import contact_id
from sandbox.shopify import CUSTOMER_BASE

HUB = "/hubspot/crm/v3/objects/contacts"
SF = "/salesforce/services/data/v62.0"
SHOP = "/shopify/admin/api/2025-10/graphql.json"


def effects(client: TestClient, vendor: str) -> int:
    return int(client.get(f"/{vendor}/_sandbox/effects").json()["count"])


def test_hubspot_reads_see_written_contacts_and_are_no_effects(make_client, mint) -> None:
    client = make_client(hubspot_contacts=5)
    h = {"Authorization": f"Bearer {mint(client)['access_token']}"}
    inputs = [{"idProperty": "email", "id": "ada@x.io", "properties": {"firstname": "Ada"}}]
    created = client.post(f"{HUB}/batch/upsert", json={"inputs": inputs}, headers=h).json()
    cid = created["results"][0]["id"]
    before = effects(client, "hubspot")

    one = client.get(f"{HUB}/{cid}", params={"properties": "firstname,city,nope"}, headers=h)
    assert one.status_code == 200
    props = one.json()["properties"]
    assert props["firstname"] == "Ada" and props["city"] is None and "nope" not in props
    assert client.get(f"{HUB}/999999", headers=h).json()["category"] == "OBJECT_NOT_FOUND"

    body = {
        "idProperty": "email",
        "inputs": [{"id": "ada@x.io"}, {"id": "nobody@x.io"}],
        "properties": ["firstname", "email"],
    }
    batch = client.post(f"{HUB}/batch/read", json=body, headers=h)
    assert batch.status_code == 207
    doc = batch.json()
    assert [r["id"] for r in doc["results"]] == [cid]
    assert doc["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert doc["errors"][0]["context"]["ids"] == ["nobody@x.io"]
    seeded = client.post(f"{HUB}/batch/read", json={"inputs": [{"id": "3"}]}, headers=h)
    assert seeded.status_code == 200 and seeded.json()["results"][0]["id"] == "3"

    client.delete(f"{HUB}/{cid}", headers=h)
    assert client.get(f"{HUB}/{cid}", headers=h).status_code == 404
    assert effects(client, "hubspot") == before + 1  # the archive; no read counted


def _sf(client: TestClient, mint: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(client, 'salesforce')['access_token']}"}


def test_salesforce_lookup_by_external_id_and_record_get(make_client, mint) -> None:
    client = make_client()
    h = _sf(client, mint)
    records = [
        {"attributes": {"type": "Contact"}, "Ext__c": ext, "LastName": last}
        for ext, last in (("e'1", "Lovelace"), ("e2", "Hopper"))
    ]
    answer = client.patch(
        f"{SF}/composite/sobjects/Contact/Ext__c", json={"records": records}, headers=h
    ).json()
    ids = [r["id"] for r in answer]
    before = effects(client, "salesforce")

    soql = "SELECT Id, ext__c, LastName, Email FROM Contact WHERE Ext__c IN ('e\\'1', 'e3')"
    doc = client.get(f"{SF}/query", params={"q": soql}, headers=h).json()
    assert doc["totalSize"] == 1 and doc["done"] is True
    row = doc["records"][0]
    assert row["Id"] == ids[0] and row["ext__c"] == "e'1"
    assert row["LastName"] == "Lovelace" and row["Email"] is None
    by_id = f"SELECT Id, Name FROM Contact WHERE Id = '{contact_id(4)}'"
    seeded = client.get(f"{SF}/query", params={"q": by_id}, headers=h).json()
    assert [r["Id"] for r in seeded["records"]] == [contact_id(4)]

    got = client.get(f"{SF}/sobjects/Contact/{ids[1]}", params={"fields": "lastname"}, headers=h)
    assert got.json() == {
        "attributes": got.json()["attributes"],
        "Id": ids[1],
        "LastName": "Hopper",
    }
    bad = client.get(f"{SF}/sobjects/Contact/{ids[1]}", params={"fields": "Nope"}, headers=h)
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_FIELD"
    client.delete(f"{SF}/sobjects/Contact/{ids[1]}", headers=h)
    gone = client.get(f"{SF}/sobjects/Contact/{ids[1]}", headers=h)
    assert gone.status_code == 404 and gone.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    assert effects(client, "salesforce") == before + 1  # the delete; no read counted


def test_shopify_customer_query_reads_the_update(make_client, mint) -> None:
    client = make_client()
    h = {"X-Shopify-Access-Token": mint(client, "shopify")["access_token"]}
    gid = f"gid://shopify/Customer/{CUSTOMER_BASE + 2}"
    mutation = "mutation($i: CustomerInput!) { customerUpdate(input: $i) { customer { id } } }"
    client.post(SHOP, json={"query": mutation, "variables": {"i": {"id": gid, "note": "n"}}},
                headers=h)  # fmt: skip
    before = effects(client, "shopify")
    read = "query($id: ID!) { customer(id: $id) { id note tags firstName } }"
    doc = client.post(SHOP, json={"query": read, "variables": {"id": gid}}, headers=h).json()
    assert doc["data"]["customer"]["id"] == gid and doc["data"]["customer"]["note"] == "n"
    assert doc["extensions"]["cost"]["actualQueryCost"] == 1
    nobody = {"query": read, "variables": {"id": "gid://shopify/Customer/1"}}
    assert client.post(SHOP, json=nobody, headers=h).json()["data"]["customer"] is None
    assert effects(client, "shopify") == before
