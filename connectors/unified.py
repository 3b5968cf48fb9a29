"""Unified resources: one tool across vendors, records in one documented schema.

`crm.contacts.list` (HubSpot, Salesforce) and `ticketing.tickets.list` (Jira, Zendesk,
GitHub issues): the account decides the vendor. The vendor's own record goes under
`remote_data` only when `include_remote_data` is true.
"""

from __future__ import annotations

from connectors.base import Tool, Vendor


def unified_tools(vendors: dict[str, Vendor]) -> list[Tool]:
    return []
