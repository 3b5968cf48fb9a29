"""Pipeline definitions the surface tests (MCP, client, CLI) share, on top of `pipelinekit`'s
HubSpot contacts → map → filter → Salesforce upsert (a plain module, not a conftest)."""

from __future__ import annotations

from typing import Any

from pipelinekit import definition

LOCK = {"salesforce_locked_fields": ["Phone"]}  # sandbox config: a Phone is refused
UNLOCK = {"salesforce_locked_fields": []}


def with_phone(src: str, dst: str) -> dict[str, Any]:
    """`definition`, its source also reading (and projecting) the contacts' phone."""
    spec = definition(src, dst)
    spec["source"]["args"]["properties"] = ["email", "lastname", "phone"]
    spec["source"]["fields"].append("properties.phone")
    return spec


def five_stages(src: str, dst: str) -> dict[str, Any]:
    """source → map → filter → map (Phone) → sink."""
    spec = with_phone(src, dst)
    spec["stages"].append({"map": {"Phone": "properties.phone"}})
    return spec


def some_phones(src: str, dst: str) -> dict[str, Any]:
    """Only the contacts whose id ends in 7 (100 of 1,000) carry a Phone to the sink: under
    `LOCK` those 100 are rejected there, the other 900 written."""
    spec = with_phone(src, dst)
    spec["stages"].append({"map": {"Phone": "ends_with(id, '7') && properties.phone || null"}})
    return spec


PHONED = {str(i) for i in range(7, 1001, 10)}  # the contacts `some_phones` gives a Phone
