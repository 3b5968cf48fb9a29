"""No signed payload, however odd, crashes a vendor dialect (`connectors.inbound`): it gives
events whose data the event log can store (orjson, as `app.vendorhooks` does) or a
`PayloadError`; and no timestamp header crashes HubSpot's verification (a `SignatureError`).
The API's JSON body check stops deep payloads at the door; these hold without it."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.inbound import DIALECTS, Delivery, PayloadError, SignatureError

HEADERS = {"x-shopify-topic": "orders/create", "x-github-event": "issues"}
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False,
                                                                           allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                max_size=4),
    max_leaves=30,
)  # fmt: skip
# the ids, names and states the dialects read, so generated payloads reach them
KEYS = ["objectId", "portalId", "eventId", "subscriptionType", "propertyName", "id", "number",
        "status", "error_code", "admin_graphql_api_id", "action", "installation", "repository",
        "full_name", "issue"]  # fmt: skip
SHAPED = st.dictionaries(st.sampled_from(KEYS), JSON, max_size=6)
PAYLOADS = SHAPED | st.lists(SHAPED, max_size=3) | JSON


def nested(levels: int, leaf: Any = 1) -> Any:
    for _ in range(levels):
        leaf = [leaf]
    return leaf


def assert_storable_or_refused(vendor: str, doc: Any) -> None:
    """Assert the dialect's whole reading of `doc` is storable events or a PayloadError."""
    dialect = DIALECTS[vendor]
    body = json.dumps(doc).encode()  # orjson would not write the deepest of these
    delivery = Delivery("POST", "https://tq.example/hook", HEADERS, body)
    try:
        events = dialect.events(delivery)
    except PayloadError:
        events = []
    for event in events:
        orjson.dumps({"type": event.type, "ref": event.ref, "data": event.data})
        assert isinstance(event.event_id, str) and (event.ref is None or isinstance(event.ref, str))
    try:
        ref = dialect.account_ref(delivery)
    except PayloadError:
        ref = None
    assert ref is None or isinstance(ref, str)


@pytest.mark.parametrize("vendor", sorted(DIALECTS))
@settings(max_examples=150, deadline=None, database=None)
@given(doc=PAYLOADS)
def test_any_signed_payload_gives_storable_events_or_a_payload_error(vendor, doc):
    assert_storable_or_refused(vendor, doc)


DEEP = nested(300)  # orjson reads 1024 levels, writes 254: the event log could not store it


@pytest.mark.parametrize("vendor", sorted(DIALECTS))
@pytest.mark.parametrize("doc", [
    [{"portalId": 1, "objectId": DEEP, "subscriptionType": "contact.creation", "eventId": 1}],
    [{"portalId": DEEP, "objectId": 1, "eventId": DEEP, "subscriptionType": DEEP}],
    {"id": DEEP, "status": DEEP, "error_code": DEEP, "admin_graphql_api_id": DEEP},
    {"issue": {"id": DEEP, "number": DEEP}, "action": DEEP, "installation": {"id": DEEP},
     "repository": {"full_name": DEEP}},
], ids=["hubspot_object_id", "hubspot_every_field", "shopify_fields", "github_fields"])  # fmt: skip
def test_a_deep_structure_where_an_id_goes_is_a_payload_error(vendor, doc):
    assert_storable_or_refused(vendor, doc)


def test_a_structured_hubspot_object_id_is_refused_with_what_to_fix():
    body = orjson.dumps([{"objectId": {"a": 1}, "subscriptionType": "contact.creation"}])
    with pytest.raises(PayloadError, match="objectId must be a string or a number"):
        DIALECTS["hubspot"].events(Delivery("POST", "u", {}, body))


@pytest.mark.parametrize("stamp", ["9" * 401, "9" * 5000, "+1", "1_000", "\uff11\uff12", "1e3",
                                   "-1", "0x10", "", "1.5", "\u0661\u0662"])  # fmt: skip
def test_no_hubspot_timestamp_crashes_the_verification(stamp):
    headers = {"x-hubspot-signature-v3": "bm90IGl0", "x-hubspot-request-timestamp": stamp}
    with pytest.raises(SignatureError):
        DIALECTS["hubspot"].verify(Delivery("POST", "u", headers, b"[]"), "secret", time.time())
