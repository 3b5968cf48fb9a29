"""Vendor connectors: a registry of vendors and their tools. Never imports Celery or app."""

from __future__ import annotations

from connectors import hubspot
from connectors.base import Page, Tool, Vendor

VENDORS: dict[str, Vendor] = {v.name: v for v in (hubspot.VENDOR,)}
TOOLS: dict[str, Tool] = {t.name: t for v in VENDORS.values() for t in v.tools}

__all__ = ["TOOLS", "VENDORS", "Page", "Tool", "Vendor"]
