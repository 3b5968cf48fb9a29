"""What a written Salesforce record is found by, so a lookup is a dict access, not a scan.

A pipeline upserts 20,000+ records by External ID; finding each one's record by scanning every
stored object made that O(n²). Every commit of a Salesforce record hands :func:`keys` to
:meth:`sandbox.writes.WriteStore.commit`, which replaces the record's previous keys under the
store's lock, so the index follows a changed value (``PATCH`` by id) and a delete:

- :func:`exact`: a custom field (``…__c``) holds this value (Python equality, as the upsert's
  match by External ID has always been); scalar values only (a JSON list or object is no key);
- :func:`text`: a field, by lower-case name, holds a value whose text is this (the SOQL lookup
  ``WHERE <field> IN (…)`` compares text, names case-insensitively); custom fields and ``Id``.

A deleted record has no keys: neither an upsert nor a lookup finds it.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

Scalar = str | int | float  # bool is an int


def exact(sobject: str, field: str, value: Scalar) -> Hashable:
    return ("exact", sobject, field, value)


def text(sobject: str, field: str, value: str) -> Hashable:
    return ("text", sobject, field.lower(), value)


def indexed(field: str) -> bool:
    """Whether :func:`text` keys exist for ``field`` (a SOQL name, any case)."""
    name = field.lower()
    return name == "id" or name.endswith("__c")


def keys(obj: dict[str, Any]) -> set[Hashable]:
    """Every key the stored record ``obj`` is found by (none once deleted)."""
    if obj.get("IsDeleted"):
        return set()
    sobject = obj["attributes"]["type"]
    out = {text(sobject, "Id", str(obj["Id"]))}
    for name, value in obj.items():
        if not name.endswith("__c") or value is None:
            continue
        out.add(text(sobject, name, str(value)))
        if isinstance(value, Scalar):
            out.add(exact(sobject, name, value))
    return out
