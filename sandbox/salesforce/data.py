"""The org's records: contacts and accounts with 18-character ids, each a pure function of
its index (page k of N costs O(batch)), and the sObject types that describe them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)

_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def sf_id(prefix: str, n: int) -> str:
    """An 18-character Salesforce id: key prefix, pod ``RO``, the number, case checksum."""
    base = f"{prefix}RO{n:010d}"
    suffix = ""
    for chunk in (base[0:5], base[5:10], base[10:15]):
        suffix += _CHECKSUM[sum(1 << j for j, c in enumerate(chunk) if c.isupper())]
    return base + suffix


def contact_id(i: int) -> str:
    return sf_id("003", i)


def account_id(j: int) -> str:
    return sf_id("001", j)


# fmt: off
FIRST = (
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy",
    "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter",
    "Yvonne",
)
UNICODE_FIRST = ("José", "Zoë", "Łukasz", "李雷", "Дмитрий", "Nguyễn", "𠮷乃", "Renée", "Çağrı")
LAST = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez",
    "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
)
COMPANIES = (
    ("Acme Corp", "acme.example"), ("Globex", "globex.example"),
    ("Initech", "initech.example"), ("Umbrella", "umbrella.example"),
    ("Hooli", "hooli.example"), ("Stark Industries", "stark.example"),
    ("Wayne Enterprises", "wayne.example"), ("Tyrell", "tyrell.example"),
    ("Soylent", "soylent.example"), ("Vandelay Industries", "vandelay.example"),
    ("Cyberdyne", "cyberdyne.example"),
)
INDUSTRIES = (
    "Technology", "Manufacturing", "Finance", "Healthcare", "Retail", "Energy", "Media",
    "Education", None,
)
ACCOUNTS_FOR_CONTACTS = 50  # contacts point at accounts 1..50 whatever the account volume
# fmt: on


def _datetime(ms: int) -> str:
    """Salesforce's dateTime form: ``2024-01-15T10:30:00.000+0000``."""
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def account(j: int) -> dict[str, Any]:
    """Account number ``j`` (1-based), every field; a pure function of ``j``."""
    company, _ = COMPANIES[(j - 1) % len(COMPANIES)]
    name = company if j <= len(COMPANIES) else f"{company} {(j - 1) // len(COMPANIES) + 1}"
    created = j * 3_600_007
    return {
        "Id": account_id(j),
        "Name": name,
        "Industry": INDUSTRIES[j % len(INDUSTRIES)],
        "CreatedDate": _datetime(created),
        "LastModifiedDate": _datetime(created + (j * 104_729) % 2_592_000_000),
    }


def contact(i: int) -> dict[str, Any]:
    """Contact number ``i`` (1-based), every field; every 25th has no account."""
    first = UNICODE_FIRST[(i // 7) % len(UNICODE_FIRST)] if i % 7 == 0 else FIRST[i % len(FIRST)]
    last = LAST[(i * 31) % len(LAST)]
    j = None if i % 25 == 0 else (i * 17) % ACCOUNTS_FOR_CONTACTS + 1
    domain = COMPANIES[((j or 1) - 1) % len(COMPANIES)][1]
    created = i * 1_000_003 + (i * 7919) % 1000
    return {
        "Id": contact_id(i),
        "FirstName": first,
        "LastName": last,
        "Name": f"{first} {last}",
        "Email": f"{last.lower()}.{i}@{domain}",
        "Phone": f"(555) {i % 1000:03d}-{(i * 7) % 10000:04d}",
        "AccountId": account_id(j) if j else None,
        "Account": account(j) if j else None,
        "CreatedDate": _datetime(created),
        "LastModifiedDate": _datetime(created + (i * 104_729) % 2_592_000_000),
    }


@dataclass(frozen=True)
class SObject:
    name: str
    key_prefix: str
    fields: tuple[str, ...]
    relationships: dict[str, str]  # relationship name -> target sObject
    volume: str
    row: Any  # index -> full record


OBJECTS = {
    "contact": SObject(
        "Contact",
        "003",
        (
            "Id",
            "FirstName",
            "LastName",
            "Name",
            "Email",
            "Phone",
            "AccountId",
            "CreatedDate",
            "LastModifiedDate",
        ),
        {"account": "account"},
        "salesforce.contacts",
        contact,
    ),
    "account": SObject(
        "Account",
        "001",
        ("Id", "Name", "Industry", "CreatedDate", "LastModifiedDate"),
        {},
        "salesforce.accounts",
        account,
    ),
}
