"""Previews of the HubSpot, Salesforce and Shopify write tools without the stack: what each
asks the vendor (reads only, batched per operation) and how it reads the answers."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeHttp, canned

from connectors import hubspot_writes as hw
from connectors import salesforce_writes as sw
from connectors import shopify_writes as shw
from connectors.errors import VendorError
from connectors.writes import Operation, creates


def records(items: list[Any]) -> list[dict[str, Any]]:
    return [p.record() for p in items]


def test_every_tool_of_the_group_has_its_own_preview() -> None:
    tools = (*hw.TOOLS, *sw.TOOLS, *shw.TOOLS)
    assert all(t.write is not None and t.write.preview is not creates for t in tools)


# ---- HubSpot ------------------------------------------------------------------------------


def test_hubspot_upsert_is_one_batch_read_by_the_id_property() -> None:
    args = hw.UpsertArgs.model_validate(
        {
            "records": [
                {"id": "Ada@X.io", "properties": {"firstname": "Ada", "city": "Paris"}},
                {"id": "new@x.io", "properties": {"firstname": "N"}},
                {"id": "same@x.io", "properties": {"firstname": "S"}},
            ]
        }
    )
    (op,) = hw._plan_upsert(args)
    found = [
        {"id": "7", "properties": {"email": "ada@x.io", "firstname": "Ada", "city": "Rome"}},
        {"id": "9", "properties": {"email": "same@x.io", "firstname": "S"}},
    ]
    errors = [{"category": "OBJECT_NOT_FOUND", "context": {"ids": ["new@x.io"]}}]
    http = FakeHttp(canned(207, {"status": "COMPLETE", "results": found, "errors": errors}))
    out = records(hw._preview_upsert(http, op))

    (sent,) = http.sent
    assert (sent.method, sent.path) == ("POST", "/crm/v3/objects/contacts/batch/read")
    assert sent.json == {
        "idProperty": "email",
        "inputs": [{"id": "Ada@X.io"}, {"id": "new@x.io"}, {"id": "same@x.io"}],
        "properties": ["city", "email", "firstname"],
    }
    assert out[0] == {
        "index": 0,
        "action": "update",
        "id": "7",
        "current": {"firstname": "Ada", "city": "Rome"},
        "proposed": {"firstname": "Ada", "city": "Paris"},
        "changed": ["city"],
    }
    assert out[1] == {
        "index": 1,
        "action": "create",
        "id": None,
        "proposed": {"firstname": "N", "email": "new@x.io"},
    }
    assert (out[2]["action"], out[2]["id"], out[2]["changed"]) == ("unchanged", "9", [])


def test_hubspot_update_reads_the_contact_and_a_404_is_the_patch_refused() -> None:
    args = hw.UpdateArgs(id="12", properties={"lastname": "L", "city": "Oslo"})
    http = FakeHttp({"id": "12", "properties": {"lastname": "L", "city": None, "email": "e"}})
    (item,) = hw._preview_update(http, Operation(0, ((0, args),)))
    assert http.sent[0].method == "GET" and http.sent[0].path == "/crm/v3/objects/contacts/12"
    assert http.sent[0].kwargs["params"] == {"properties": "city,lastname"}
    assert item.record() == {
        "index": 0,
        "action": "update",
        "id": "12",
        "current": {"lastname": "L", "city": None},
        "proposed": {"lastname": "L", "city": "Oslo"},
        "changed": ["city"],
    }
    gone = FakeHttp(VendorError("OBJECT_NOT_FOUND", "resource not found", status=404))
    (refused,) = hw._preview_update(gone, Operation(0, ((0, args),)))
    assert refused.record() == {
        "index": 0,
        "action": "reject",
        "id": "12",
        "error": {"code": "OBJECT_NOT_FOUND", "message": "resource not found"},
    }
    with pytest.raises(VendorError):  # anything but "no such contact" is not a preview
        hw._preview_update(FakeHttp(VendorError("MISSING_SCOPES", "no", status=403)),
                           Operation(0, ((0, args),)))  # fmt: skip


def test_hubspot_archive_shows_the_contact_or_says_nothing_would_change() -> None:
    op = Operation(0, ((0, hw.ArchiveArgs(id="5")),))
    props = {"email": "a@x.io", "firstname": "A", "lastname": "B", "hs_object_id": "5"}
    (item,) = hw._preview_archive(FakeHttp({"id": "5", "properties": props}), op)
    assert item.record() == {
        "index": 0,
        "action": "delete",
        "id": "5",
        "current": {"email": "a@x.io", "firstname": "A", "lastname": "B"},
    }
    missing = FakeHttp(VendorError("OBJECT_NOT_FOUND", "gone", status=404))
    (noop,) = hw._preview_archive(missing, op)
    assert noop.record() == {"index": 0, "action": "unchanged", "id": "5"}


# ---- Salesforce ---------------------------------------------------------------------------


def sf_op(recs: list[dict[str, Any]], **extra: Any) -> Operation:
    body = {"sobject": "Contact", "external_id_field": "Ext__c", "records": recs, **extra}
    (op,) = sw._plan_upsert(sw.UpsertArgs.model_validate(body))
    return op


def test_salesforce_upsert_queries_by_external_id_and_follows_the_locator() -> None:
    op = sf_op([
        {"Ext__c": "o'brien", "LastName": "O", "Email": None},
        {"Ext__c": "e2", "lastname": "New"},
        {"Ext__c": "e3", "LastName": "Same"},
    ])  # fmt: skip
    first = {
        "totalSize": 2, "done": False, "nextRecordsUrl": "/services/data/v62.0/query/01g-1",
        "records": [{"attributes": {}, "Id": "003A", "EXT__C": "o'brien", "LastName": "X",
                     "Email": "x@y.z"}],
    }  # fmt: skip
    rest = {"done": True, "records": [{"Id": "003C", "Ext__c": "e3", "LastName": "Same"}]}
    http = FakeHttp(first, rest)
    out = records(sw._preview_upsert(http, op))

    q = http.sent[0]
    assert (q.method, q.path) == ("GET", "/services/data/v62.0/query")
    assert q.kwargs["params"]["q"] == (
        "SELECT Id, Ext__c, LastName, Email FROM Contact WHERE Ext__c IN ('o\\'brien', 'e2', 'e3')"
    )
    assert http.sent[1].path == "/services/data/v62.0/query/01g-1"
    assert out[0]["action"] == "update" and out[0]["id"] == "003A"
    assert out[0]["current"] == {"Ext__c": "o'brien", "LastName": "X", "Email": "x@y.z"}
    assert out[0]["changed"] == ["Email", "LastName"]
    assert out[1] == {
        "index": 1, "action": "create", "id": None, "proposed": {"Ext__c": "e2", "lastname": "New"},
    }  # fmt: skip
    assert (out[2]["action"], out[2]["id"]) == ("unchanged", "003C")


def test_salesforce_bulk_operations_are_looked_up_in_bounded_queries() -> None:
    op = sf_op([{"Ext__c": f"e{i}", "LastName": "L"} for i in range(450)], bulk_threshold=10)
    assert op.items[0][1].bulk  # the ingest path; the preview reads all the same
    http = FakeHttp({"done": True, "records": []}, {"done": True, "records": []},
                    {"done": True, "records": []})  # fmt: skip
    out = sw._preview_upsert(http, op)
    assert [p.action for p in out] == ["create"] * 450
    assert [p.index for p in out] == list(range(450))
    counts = [h.kwargs["params"]["q"].count("'e") for h in http.sent]
    assert counts == [200, 200, 50]


def test_salesforce_upsert_refusals_reject_without_a_write() -> None:
    op = sf_op([{"Ext__c": "a", "Bad Name": 1}, {"Ext__c": "b", "Nope": 1}])
    http = FakeHttp(VendorError("INVALID_FIELD", "No such column 'Nope'", status=400))
    out = records(sw._preview_upsert(http, op))
    assert "Bad Name" not in http.sent[0].kwargs["params"]["q"]  # never put in a query
    assert [(r["action"], r["error"]["code"]) for r in out] == [
        ("reject", "INVALID_FIELD"),
        ("reject", "INVALID_FIELD"),
    ]


def test_salesforce_update_and_delete_read_the_record() -> None:
    rid = "003RO0000000001AAA"
    up = Operation(0, ((0, sw.UpdateArgs(sobject="Contact", id=rid, fields={"Phone": "1"})),))
    http = FakeHttp({"attributes": {}, "Id": rid, "Phone": "2"})
    (item,) = sw._preview_update(http, up)
    assert http.sent[0].path == f"/services/data/v62.0/sobjects/Contact/{rid}"
    assert http.sent[0].kwargs["params"] == {"fields": "Phone"}
    assert (item.action, item.current, item.proposed) == ("update", {"Phone": "2"}, {"Phone": "1"})
    deleted = FakeHttp(VendorError("ENTITY_IS_DELETED", "entity is deleted", status=404))
    (refused,) = sw._preview_update(deleted, up)
    assert (refused.action, refused.id) == ("reject", rid)
    assert refused.error == {"code": "ENTITY_IS_DELETED", "message": "entity is deleted"}

    rm = Operation(0, ((0, sw.DeleteArgs(sobject="Contact", id=rid)),))
    full = {"attributes": {}, "Id": rid, "LastName": "L", "Email": "e@x.io", "Phone": "2"}
    (gone,) = sw._preview_delete(FakeHttp(full), rm)
    assert gone.record() == {
        "index": 0, "action": "delete", "id": rid, "current": {"LastName": "L", "Email": "e@x.io"},
    }  # fmt: skip
    missing = FakeHttp(
        VendorError("NOT_FOUND", "The requested resource does not exist", status=404)
    )
    assert sw._preview_delete(missing, rm)[0].action == "reject"


# ---- Shopify ------------------------------------------------------------------------------


def test_shopify_update_reads_the_customer_by_the_calls_names() -> None:
    args = shw.UpdateArgs(id="42", first_name="Ada", tags=["vip"], note="n")
    node = {"id": shw.GID + "42", "firstName": "Grace", "tags": ["vip"], "note": None}
    http = FakeHttp({"data": {"customer": node}})
    (item,) = shw._preview_update(http, Operation(0, ((0, args),)))
    sent = http.sent[0]
    assert sent.method == "POST" and sent.json["variables"] == {"id": "gid://shopify/Customer/42"}
    assert "customer(id: $id)" in sent.json["query"] and "mutation" not in sent.json["query"]
    assert item.record() == {
        "index": 0,
        "action": "update",
        "id": "gid://shopify/Customer/42",
        "current": {"first_name": "Grace", "tags": ["vip"], "note": None},
        "proposed": {"first_name": "Ada", "tags": ["vip"], "note": "n"},
        "changed": ["first_name", "note"],
    }
    (refused,) = shw._preview_update(FakeHttp({"data": {"customer": None}}),
                                     Operation(0, ((0, args),)))  # fmt: skip
    assert refused.action == "reject" and refused.error is not None
    assert refused.error["code"] == "USER_ERROR" and "does not exist" in refused.error["message"]
