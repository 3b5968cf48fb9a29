"""The companies Clearbit knows: one per email domain of the HubSpot double's contacts
(`sandbox.hubspot.data.COMPANIES`), except `UNKNOWN`, so an enrichment of those contacts meets
both a found and a not-found domain. Each record is a pure function of its profile."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sandbox.hubspot.data import COMPANIES

UNKNOWN = frozenset({"cyberdyne.example", "soylent.example"})  # Clearbit answers 404
INDEXED_AT = "2026-11-30T08:15:42.000Z"
_ID_NAMESPACE = uuid.UUID("6f1c0a52-3f0e-4f55-9d0c-0c1ea2b17e00")


@dataclass(frozen=True)
class Profile:
    """What differs between the known companies; the rest of a record is derived."""

    legal_name: str
    sector: str
    industry_group: str
    industry: str
    sub_industry: str
    employees: int
    founded: int
    city: str
    state: str
    state_code: str
    country: str
    country_code: str
    tags: tuple[str, ...]
    annual_revenue: int
    aliases: tuple[str, ...] = ()
    ticker: str | None = None


PROFILES: dict[str, Profile] = {
    "acme.example": Profile(
        "Acme Corporation", "Industrials", "Capital Goods", "Industrial Machinery",
        "Industrial Machinery & Equipment", 4200, 1920, "Phoenix", "Arizona", "AZ",
        "United States", "US", ("Manufacturing", "B2B", "Enterprise"), 870_000_000,
        aliases=("acmecorp.example",), ticker="ACME",
    ),
    "globex.example": Profile(
        "Globex Corporation", "Energy", "Energy", "Oil & Gas",
        "Integrated Oil & Gas", 12_500, 1961, "Cypress Creek", "Oregon", "OR",
        "United States", "US", ("Energy", "B2B"), 3_400_000_000,
    ),
    "initech.example": Profile(
        "Initech, Inc.", "Information Technology", "Software & Services",
        "Internet Software & Services", "Application Software", 180, 1995, "Austin",
        "Texas", "TX", "United States", "US", ("Technology", "SaaS", "B2B"), 24_000_000,
    ),
    "umbrella.example": Profile(
        "Umbrella Corporation", "Health Care", "Pharmaceuticals, Biotechnology & Life Sciences",
        "Biotechnology", "Biotechnology", 56_000, 1968, "London", "England", "ENG",
        "United Kingdom", "GB", ("Biotechnology", "Pharmaceuticals", "Enterprise"),
        9_100_000_000, aliases=("umbrella-corp.example",),
    ),
    "hooli.example": Profile(
        "Hooli XYZ, Inc.", "Information Technology", "Software & Services",
        "Internet Software & Services", "Internet Services & Infrastructure", 32_000, 1998,
        "Palo Alto", "California", "CA", "United States", "US",
        ("Technology", "Internet", "Consumer", "B2C"), 41_000_000_000, ticker="HOOL",
    ),
    "stark.example": Profile(
        "Stark Industries, Inc.", "Industrials", "Capital Goods", "Aerospace & Defense",
        "Aerospace & Defense", 48_000, 1939, "Los Angeles", "California", "CA",
        "United States", "US", ("Aerospace", "Defense", "Enterprise"), 24_500_000_000,
        ticker="SIA",
    ),
    "wayne.example": Profile(
        "Wayne Enterprises, Inc.", "Industrials", "Capital Goods", "Conglomerates",
        "Industrial Conglomerates", 150_000, 1934, "Gotham", "New Jersey", "NJ",
        "United States", "US", ("Conglomerate", "Enterprise"), 31_000_000_000,
        ticker="WYN",
    ),
    "tyrell.example": Profile(
        "Tyrell Corporation", "Information Technology", "Technology Hardware & Equipment",
        "Electronic Equipment", "Electronic Components", 8_800, 1982, "Los Angeles",
        "California", "CA", "United States", "US", ("Robotics", "Hardware", "B2B"),
        2_200_000_000,
    ),
    "vandelay.example": Profile(
        "Vandelay Industries LLC", "Industrials", "Commercial & Professional Services",
        "Trading Companies & Distributors", "Trading Companies & Distributors", 35, 1991,
        "New York", "New York", "NY", "United States", "US",
        ("Import/Export", "Latex", "B2B"), 4_500_000,
    ),
}  # fmt: skip

_NAMES = {domain: name for name, domain in COMPANIES}
_RANGES = (
    (10, "1-10"),
    (50, "11-50"),
    (250, "51-250"),
    (1000, "251-1K"),
    (5000, "1K-5K"),
    (10_000, "5K-10K"),
    (50_000, "10K-50K"),
    (100_000, "50K-100K"),
)


def known(domain: str) -> str | None:
    """The canonical domain a looked-up domain (or one of its aliases) names, if known."""
    if domain in PROFILES:
        return domain
    return next((d for d, p in PROFILES.items() if domain in p.aliases), None)


def employees_range(employees: int) -> str:
    return next((label for top, label in _RANGES if employees <= top), "100K+")


def company(domain: str) -> dict[str, Any]:
    """The company record of a known canonical `domain`, in Clearbit's shape."""
    p = PROFILES[domain]
    name = _NAMES.get(domain, p.legal_name)
    return {
        "id": str(uuid.uuid5(_ID_NAMESPACE, domain)),
        "name": name,
        "legalName": p.legal_name,
        "domain": domain,
        "domainAliases": list(p.aliases),
        "url": f"https://{domain}",
        "site": {"phoneNumbers": [], "emailAddresses": [f"info@{domain}"]},
        "category": {
            "sector": p.sector,
            "industryGroup": p.industry_group,
            "industry": p.industry,
            "subIndustry": p.sub_industry,
        },
        "tags": list(p.tags),
        "description": f"{name} ({p.industry}), founded {p.founded} in {p.city}.",
        "foundedYear": p.founded,
        "location": f"{p.city}, {p.state_code}, {p.country}",
        "timeZone": None,
        "utcOffset": None,
        "geo": _geo(p),
        "logo": f"https://logo.clearbit.com/{domain}",
        "facebook": {"handle": None},
        "linkedin": {"handle": f"company/{domain.split('.')[0]}"},
        "twitter": {"handle": None},
        "crunchbase": {"handle": None},
        "emailProvider": False,
        "type": "public" if p.ticker else "private",
        "ticker": p.ticker,
        "phone": None,
        "metrics": {
            "alexaUSRank": None,
            "alexaGlobalRank": None,
            "employees": p.employees,
            "employeesRange": employees_range(p.employees),
            "marketCap": None,
            "raised": None,
            "annualRevenue": p.annual_revenue,
        },
        "indexedAt": INDEXED_AT,
        "tech": ["google_apps", "salesforce"] if p.employees > 1000 else ["google_apps"],
        "parent": {"domain": None},
        "ultimateParent": {"domain": None},
    }


def _geo(p: Profile) -> dict[str, Any]:
    return {
        "streetNumber": None,
        "streetName": None,
        "subPremise": None,
        "city": p.city,
        "postalCode": None,
        "state": p.state,
        "stateCode": p.state_code,
        "country": p.country,
        "countryCode": p.country_code,
        "lat": None,
        "lng": None,
    }
