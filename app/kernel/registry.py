"""The tool registry this process serves: built-in connectors plus TOOLQUEUE_CONNECTORS_DIR."""

from __future__ import annotations

from functools import lru_cache

import connectors
from app.kernel.settings import Settings, get_settings


@lru_cache(maxsize=1)
def registry() -> connectors.Registry:
    settings = get_settings()
    loaded = connectors.load(settings.connectors_dir)
    for vendor in loaded.vendors.values():
        _configure(vendor, settings)
    return loaded


def _configure(vendor: connectors.Vendor, settings: Settings) -> None:
    """A vendor's tunables (`Vendor.extra`) from the deployment's settings: a setting named
    `<vendor>_<key>` (e.g. `salesforce_bulk_threshold`) replaces `extra[key]`."""
    for key in vendor.extra:
        value = getattr(settings, f"{vendor.name}_{key}", None)
        if value is not None:
            vendor.extra[key] = value
