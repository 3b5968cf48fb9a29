"""Vendor webhook dialects (`connectors.inbound`) without a server: normalisation, and payloads
that are signed but odd never escape as anything but `PayloadError` (which the API answers
with a 422), so no delivery becomes a 500."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.inbound import DIALECTS, Delivery, PayloadError

HEADERS = {
    "x-shopify-topic": "orders/create",
    "x-shopify-event-id": "e1",
    "x-github-event": "issues",
    "x-github-delivery": "d1",
}
ODD = [b"", b"null", b"1", b'"x"', b"[]", b"[1, 2]", b"{}", b'{"issue": "x", "action": 5}',
       b'[{"portalId": null}]', b'{"installation": "x", "repository": 3}', b"\xff\xfe",
       b'{"admin_graphql_api_id": null, "status": null}']  # fmt: skip


def _or_payload_error(fn: Any, delivery: Delivery) -> Any:
    try:
        return fn(delivery)
    except PayloadError:
        return PayloadError


@pytest.mark.parametrize("vendor", sorted(DIALECTS))
@pytest.mark.parametrize("body", ODD)
def test_odd_signed_payloads_are_payload_errors_or_events(vendor: str, body: bytes) -> None:
    dialect = DIALECTS[vendor]
    delivery = Delivery("POST", "https://tq.example/v1/vendor-webhooks/x", HEADERS, body)
    events = _or_payload_error(dialect.events, delivery)
    assert events is PayloadError or all(e.type and isinstance(e.data, dict) for e in events)
    ref = _or_payload_error(dialect.account_ref, delivery)
    assert ref is PayloadError or ref is None or isinstance(ref, str)


@pytest.mark.parametrize(
    ("vendor", "headers", "body", "expected"),
    [
        ("shopify", {"x-shopify-topic": "customers/update"}, b'{"id": 7}', "record.updated"),
        ("shopify", {"x-shopify-topic": "app/uninstalled"}, b"{}", "vendor.app/uninstalled"),
        ("shopify", {"x-shopify-topic": "bulk_operations/finish"},
         b'{"admin_graphql_api_id": "gid://shopify/BulkOperation/1", "status": "canceled"}',
         "export.failed"),
        ("github", {"x-github-event": "pull_request"}, b'{"action": "closed"}', "record.updated"),
        ("github", {"x-github-event": "issue_comment"}, b'{"action": "deleted"}',
         "record.deleted"),
        ("github", {"x-github-event": "push"}, b'{"ref": "main"}', "vendor.push"),
        ("hubspot", {}, b'[{"subscriptionType": "deal.deletion", "eventId": 1}]',
         "record.deleted"),
        ("hubspot", {}, b'[{"subscriptionType": "contact.merge", "eventId": 2}]',
         "vendor.contact.merge"),
    ],
)  # fmt: skip
def test_normalised_types(vendor: str, headers: dict, body: bytes, expected: str) -> None:
    [event] = DIALECTS[vendor].events(Delivery("POST", "u", headers, body))
    assert event.type == expected
