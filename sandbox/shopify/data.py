"""The shop's records: deterministic customers, orders and line items, a pure function of the
index, rendered as REST (snake_case, shop time zone) or GraphQL (camelCase, gid, UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sandbox.state import SandboxState

CUSTOMER_BASE = 6_940_095_430_000  # ids ascend with the index, like Shopify's
ORDER_BASE = 5_512_036_870_000
LINE_ITEM_BASE = 13_605_112_000_000
EPOCH = datetime(2021, 3, 1, 9, 0, tzinfo=UTC)
STEP_S = 9_973  # seconds between consecutive records' created_at (monotonic in the index)
SHOP_TZ = timezone(timedelta(hours=-5))  # the shop's time zone: REST renders in it
# fmt: off
ASCII_FIRST = (
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter",
)
UNICODE_FIRST = ("José", "Zoë", "Łukasz", "李雷", "Дмитрий", "Nguyễn", "𠮷乃", "Renée", "Çağrı")
LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez",
    "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
)
STATES = ("enabled", "enabled", "enabled", "disabled", "invited", "declined")
PRODUCTS = (
    ("Aeropress Coffee Maker", "AERO-01", "39.95"), ("Ceramic Mug", "MUG-12", "14.00"),
    ("Burr Grinder", "GRND-7", "129.00"), ("Paper Filters (350)", "FLT-350", "8.50"),
    ("Gooseneck Kettle", "KTL-2", "74.99"), ("Single Origin Beans 1kg", "BEAN-1K", "32.00"),
)
# fmt: on
FINANCIAL = ("paid", "paid", "paid", "pending", "refunded", "partially_refunded", "authorized")

LineItem = tuple[int, str, str, str, int]  # (id, title, sku, price, quantity)


def created(i: int) -> datetime:
    return EPOCH + timedelta(seconds=i * STEP_S)


def updated(i: int) -> datetime:
    return created(i) + timedelta(seconds=(i * 104_729) % 8_000_000)


def rest_time(dt: datetime) -> str:
    """REST renders times in the shop's zone with an offset: ``2021-03-01T04:00:00-05:00``."""
    return dt.astimezone(SHOP_TZ).isoformat(timespec="seconds")


def gql_time(dt: datetime) -> str:
    """GraphQL renders UTC with a ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _person(i: int) -> tuple[str, str, str]:
    first = (
        UNICODE_FIRST[(i // 7) % len(UNICODE_FIRST)]
        if i % 7 == 0
        else (ASCII_FIRST[i % len(ASCII_FIRST)])
    )
    last = LAST[(i * 31) % len(LAST)]
    return first, last, f"{last.lower()}.{i}@example.com"


def _phone(i: int) -> str | None:
    return None if i % 3 == 0 else f"+1613555{i % 10000:04d}"


def customer(i: int) -> dict[str, Any]:
    """Customer ``i`` (1-based) as REST renders it."""
    first, last, email = _person(i)
    orders_count = (i * 7) % 12
    return {
        "id": CUSTOMER_BASE + i,
        "email": email,
        "created_at": rest_time(created(i)),
        "updated_at": rest_time(updated(i)),
        "first_name": first,
        "last_name": last,
        "orders_count": orders_count,
        "state": STATES[i % len(STATES)],
        "total_spent": f"{orders_count * 37.5 + (i % 100) / 4:.2f}",
        "last_order_id": ORDER_BASE + i if orders_count else None,
        "note": None,
        "verified_email": i % 5 != 0,
        "multipass_identifier": None,
        "tax_exempt": False,
        "tags": "vip" if i % 10 == 0 else "",
        "last_order_name": f"#{1000 + i}" if orders_count else None,
        "currency": "USD",
        "phone": _phone(i),
        "admin_graphql_api_id": f"gid://shopify/Customer/{CUSTOMER_BASE + i}",
    }


def customer_node(i: int) -> dict[str, Any]:
    """Customer ``i`` as GraphQL renders it (camelCase, gid, UTC)."""
    first, last, email = _person(i)
    return {
        "id": f"gid://shopify/Customer/{CUSTOMER_BASE + i}",
        "legacyResourceId": str(CUSTOMER_BASE + i),
        "email": email,
        "firstName": first,
        "lastName": last,
        "phone": _phone(i),
        "createdAt": gql_time(created(i)),
        "updatedAt": gql_time(updated(i)),
        "numberOfOrders": str((i * 7) % 12),
        "state": STATES[i % len(STATES)].upper(),
        "verifiedEmail": i % 5 != 0,
        "tags": ["vip"] if i % 10 == 0 else [],
    }


def order_status(i: int) -> tuple[bool, bool]:
    """(closed, cancelled): every 9th order is cancelled (and closed), every 4th closed."""
    cancelled = i % 9 == 0
    return cancelled or i % 4 == 0, cancelled


def _order_customer(i: int, customers: int) -> dict[str, Any] | None:
    """The customer an order links to, as REST embeds it; ``customers`` = volume."""
    if not customers:
        return None
    c = (i * 7) % customers + 1
    first, last, email = _person(c)
    return {
        "id": CUSTOMER_BASE + c,
        "email": email,
        "first_name": first,
        "last_name": last,
        "admin_graphql_api_id": f"gid://shopify/Customer/{CUSTOMER_BASE + c}",
    }


def line_items(i: int) -> list[LineItem]:
    items = []
    for k in range(1 + i % 3):
        title, sku, price = PRODUCTS[(i + k * 5) % len(PRODUCTS)]
        items.append((LINE_ITEM_BASE + i * 3 + k, title, sku, price, 1 + (i + k) % 3))
    return items


def _money(items: list[LineItem]) -> dict[str, str]:
    subtotal = sum(float(p) * q for _, _, _, p, q in items)
    tax = round(subtotal * 0.13, 2)
    return {
        "subtotal_price": f"{subtotal:.2f}",
        "total_tax": f"{tax:.2f}",
        "total_price": f"{subtotal + tax:.2f}",
    }


def order(i: int, customers: int) -> dict[str, Any]:
    """Order ``i`` (1-based) as REST renders it; ``customers`` = volume, for the link."""
    closed, cancelled = order_status(i)
    items = line_items(i)
    made = created(i)
    cust = _order_customer(i, customers)
    return {
        "id": ORDER_BASE + i,
        "admin_graphql_api_id": f"gid://shopify/Order/{ORDER_BASE + i}",
        "name": f"#{1000 + i}",
        "order_number": 1000 + i,
        "email": cust["email"] if cust else "",
        "created_at": rest_time(made),
        "updated_at": rest_time(updated(i)),
        "processed_at": rest_time(made),
        "closed_at": rest_time(made + timedelta(days=3)) if closed else None,
        "cancelled_at": rest_time(made + timedelta(hours=5)) if cancelled else None,
        "cancel_reason": "customer" if cancelled else None,
        "financial_status": "voided" if cancelled else FINANCIAL[i % len(FINANCIAL)],
        "fulfillment_status": "fulfilled" if closed and not cancelled else None,
        "currency": "USD",
        **_money(items),
        "customer": cust,
        "line_items": [
            {"id": lid, "title": title, "sku": sku, "price": price, "quantity": qty}
            for lid, title, sku, price, qty in items
        ],
    }


def _gql_rest_time(rest: str | None) -> str | None:
    return gql_time(datetime.fromisoformat(rest)) if rest else None


def order_node(i: int, customers: int) -> dict[str, Any]:
    rest = order(i, customers)
    return {
        "id": rest["admin_graphql_api_id"],
        "legacyResourceId": str(rest["id"]),
        "name": rest["name"],
        "email": rest["email"] or None,
        "createdAt": gql_time(created(i)),
        "updatedAt": gql_time(updated(i)),
        "closedAt": _gql_rest_time(rest["closed_at"]),
        "cancelledAt": _gql_rest_time(rest["cancelled_at"]),
        "displayFinancialStatus": rest["financial_status"].upper(),
        "displayFulfillmentStatus": "FULFILLED" if rest["fulfillment_status"] else "UNFULFILLED",
        "totalPriceSet": {"shopMoney": {"amount": rest["total_price"], "currencyCode": "USD"}},
        "customer": {"id": rest["customer"]["admin_graphql_api_id"]} if rest["customer"] else None,
    }


def line_item_node(lid: int, title: str, sku: str, price: str, qty: int) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/LineItem/{lid}",
        "name": title,
        "title": title,
        "sku": sku,
        "quantity": qty,
        "originalUnitPriceSet": {"shopMoney": {"amount": price, "currencyCode": "USD"}},
    }


@dataclass(frozen=True)
class Collection:
    name: str  # "customers" | "orders"
    base: int  # id = base + index

    def volume(self, state: SandboxState) -> int:
        return state.config.volume(f"shopify.{self.name}")


CUSTOMERS = Collection("customers", CUSTOMER_BASE)
ORDERS = Collection("orders", ORDER_BASE)
COLLECTIONS = {"customers": CUSTOMERS, "orders": ORDERS}
