"""The portal's CRM records: contacts, companies and deals, each a pure function of its
index (page k of N costs O(limit)), and the object types that describe them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
ALWAYS_PROPERTIES = ("createdate", "hs_object_id", "lastmodifieddate")
KNOWN_PROPERTIES = frozenset(DEFAULT_PROPERTIES + ("phone", "company", "notes"))

ASCII_FIRST = (
    "Alice",
    "Bob",
    "Carol",
    "Dave",
    "Erin",
    "Frank",
    "Grace",
    "Heidi",
    "Ivan",
    "Judy",
    "Mallory",
    "Niaj",
    "Olivia",
    "Peggy",
    "Rupert",
    "Sybil",
    "Trent",
    "Victor",
    "Walter",
    "Yvonne",
)
# Every 7th contact: multi-byte UTF-8 (2-, 3- and 4-byte sequences) to catch encoding bugs.
UNICODE_FIRST = (
    "José",
    "Zoë",
    "Łukasz",
    "李雷",
    "Ærøskøbing",
    "Дмитрий",
    "Nguyễn",
    "𠮷乃",
    "Renée",
    "Çağrı",
)
LAST = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Martinez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Allen",
    "King",
)
COMPANIES = (
    ("Acme Corp", "acme.example"),
    ("Globex", "globex.example"),
    ("Initech", "initech.example"),
    ("Umbrella", "umbrella.example"),
    ("Hooli", "hooli.example"),
    ("Stark Industries", "stark.example"),
    ("Wayne Enterprises", "wayne.example"),
    ("Tyrell", "tyrell.example"),
    ("Soylent", "soylent.example"),
    ("Vandelay Industries", "vandelay.example"),
    ("Cyberdyne", "cyberdyne.example"),
)
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation "
    "ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in "
    "reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur "
    "sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id "
    "est laborum. Met at trade show; follow up about renewal, pricing tiers and onboarding. "
) * 2
NOTES_LEN = 300
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def iso(ms: int) -> str:
    """HubSpot's timestamp form: ISO-8601 UTC with milliseconds and a ``Z``."""
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def contact(i: int) -> dict[str, Any]:
    """Contact number ``i`` (1-based); a pure function of ``i`` so any page is cheap."""
    if i % 7 == 0:
        first = UNICODE_FIRST[(i // 7) % len(UNICODE_FIRST)]
    else:
        first = ASCII_FIRST[i % len(ASCII_FIRST)]
    last = LAST[(i * 31) % len(LAST)]
    company, domain = COMPANIES[(i * 17) % len(COMPANIES)]
    created_ms = i * 1_000_003 + (i * 7919) % 1000
    created, updated = iso(created_ms), iso(created_ms + (i * 104_729) % 2_592_000_000)
    start = (i * 13) % (len(LOREM) // 2)
    props = {
        "createdate": created,
        "email": f"{last.lower()}.{i}@{domain}",
        "firstname": first,
        "hs_object_id": str(i),
        "lastmodifieddate": updated,
        "lastname": last,
        "phone": f"+1 555 {i % 1000:03d} {(i * 7) % 10000:04d}",
        "company": company,
        "notes": f"Contact {i}: {LOREM[start : start + NOTES_LEN]}",
    }
    return {
        "id": str(i),
        "properties": props,
        "createdAt": created,
        "updatedAt": updated,
        "archived": False,
    }


COMPANY_FIRST = (
    "Blue",
    "Bright",
    "North",
    "Silver",
    "Granite",
    "Cedar",
    "Summit",
    "Harbor",
    "Pioneer",
    "Quantum",
    "Lakeside",
    "Redwood",
    "Atlas",
)
COMPANY_SECOND = (
    "Analytics",
    "Logistics",
    "Robotics",
    "Foods",
    "Health",
    "Capital",
    "Software",
    "Energy",
    "Textiles",
    "Media",
    "Labs",
)
# Every 7th company: a multi-byte UTF-8 name (2-, 3- and 4-byte sequences).
UNICODE_COMPANIES = (
    "Société Générale du Nord",
    "Müller & Söhne",
    "株式会社さくら",
    "Łódź Żegluga",
    "Ørsted Øresund",
    "Компания Восток",
    "Công ty Hà Nội",
    "𠮷野家 Holdings",
    "Café Zoë",
)
INDUSTRIES = (
    "COMPUTER_SOFTWARE",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "RETAIL",
    "MARKETING_AND_ADVERTISING",
    "EDUCATION_MANAGEMENT",
    "CONSTRUCTION",
    "TELECOMMUNICATIONS",
    "FOOD_PRODUCTION",
    "LOGISTICS_AND_SUPPLY_CHAIN",
)
CITIES = (
    "Boston",
    "Dublin",
    "Berlin",
    "São Paulo",
    "Kraków",
    "東京",
    "Zürich",
    "Austin",
    "Singapore",
    "Montréal",
    "Cambridge",
)
DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)
PRODUCTS = ("Platform licence", "Renewal", "Onboarding", "Support plan", "Expansion", "Pilot")


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isascii() and ch.isalnum()) or "co"


def company(i: int) -> dict[str, Any]:
    """Company number ``i`` (1-based); a pure function of ``i``."""
    if i % 7 == 0:
        name = UNICODE_COMPANIES[(i // 7) % len(UNICODE_COMPANIES)]
    else:
        name = f"{COMPANY_FIRST[i % len(COMPANY_FIRST)]} "
        name += COMPANY_SECOND[(i * 5) % len(COMPANY_SECOND)]
    created_ms = i * 1_500_007 + (i * 6151) % 1000
    created, updated = iso(created_ms), iso(created_ms + (i * 86_743) % 2_592_000_000)
    props = {
        "createdate": created,
        "domain": f"{_slug(name)}{i}.example",
        "hs_lastmodifieddate": updated,
        "hs_object_id": str(i),
        "name": name,
        "industry": INDUSTRIES[(i * 3) % len(INDUSTRIES)],
        "city": CITIES[(i * 11) % len(CITIES)],
        "phone": f"+1 555 {(i * 3) % 1000:03d} {(i * 13) % 10000:04d}",
        "numberofemployees": str(5 + (i * 37) % 5000),
    }
    return {
        "id": str(i),
        "properties": props,
        "createdAt": created,
        "updatedAt": updated,
        "archived": False,
    }


def deal(i: int) -> dict[str, Any]:
    """Deal number ``i`` (1-based); a pure function of ``i``."""
    created_ms = i * 2_000_011 + (i * 3571) % 1000
    created, updated = iso(created_ms), iso(created_ms + (i * 65_537) % 2_592_000_000)
    cents = "" if i % 4 else ".50"
    props = {
        "amount": f"{500 + (i * 48_271) % 99_991}{cents}",
        "closedate": iso(created_ms + 86_400_000 * (7 + i % 120)),
        "createdate": created,
        "dealname": f"{company(1 + (i * 13) % 1000)['properties']['name']} – "
        f"{PRODUCTS[i % len(PRODUCTS)]} #{i}",
        "dealstage": DEAL_STAGES[(i * 3) % len(DEAL_STAGES)],
        "hs_lastmodifieddate": updated,
        "hs_object_id": str(i),
        "pipeline": "default",
    }
    return {
        "id": str(i),
        "properties": props,
        "createdAt": created,
        "updatedAt": updated,
        "archived": False,
    }


@dataclass(frozen=True)
class ObjectType:
    """One CRM object type: its records, default and always-returned properties, and which
    properties search compares as dates or numbers (the rest: case-insensitive strings)."""

    name: str
    make: Callable[[int], dict[str, Any]]
    defaults: tuple[str, ...]
    always: tuple[str, ...]
    known: frozenset[str]
    dates: frozenset[str]
    numbers: frozenset[str]

    @property
    def scope(self) -> str:
        return f"crm.objects.{self.name}.read"

    @property
    def collection(self) -> str:
        return f"hubspot.{self.name}"  # hubspot.contacts is LiveConfig.hubspot_contacts


DEAL_PROPERTIES = (
    "amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
    "hs_object_id", "pipeline",
)  # fmt: skip

OBJECTS = {
    "contacts": ObjectType(
        "contacts",
        contact,
        DEFAULT_PROPERTIES,
        ALWAYS_PROPERTIES,
        KNOWN_PROPERTIES,
        frozenset({"createdate", "lastmodifieddate"}),
        frozenset({"hs_object_id"}),
    ),
    "companies": ObjectType(
        "companies",
        company,
        ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
        ("createdate", "hs_lastmodifieddate", "hs_object_id"),
        frozenset(
            {
                "createdate",
                "domain",
                "hs_lastmodifieddate",
                "hs_object_id",
                "name",
                "industry",
                "city",
                "phone",
                "numberofemployees",
            }
        ),
        frozenset({"createdate", "hs_lastmodifieddate"}),
        frozenset({"hs_object_id", "numberofemployees"}),
    ),
    "deals": ObjectType(
        "deals",
        deal,
        DEAL_PROPERTIES,  # every deal property is a default one
        ("createdate", "hs_lastmodifieddate", "hs_object_id"),
        frozenset(DEAL_PROPERTIES),
        frozenset({"closedate", "createdate", "hs_lastmodifieddate"}),
        frozenset({"amount", "hs_object_id"}),
    ),
}


def project(kind: ObjectType, record: dict[str, Any], asked: list[str]) -> dict[str, Any]:
    """HubSpot's projection: known asked-for properties (or the defaults) plus the always-on
    ones; unknown names are silently dropped."""
    names = list(dict.fromkeys(asked)) if asked else list(kind.defaults)
    names = [n for n in names if n in kind.known] + [n for n in kind.always if n not in names]
    record["properties"] = {n: record["properties"][n] for n in names}
    return record
