"""Vendor connectors: vendors and their tools. Never imports Celery or `app`.

Every module of this package with a `VENDOR` is a vendor; every `*.json`/`*.yaml` under
`connectors/specs/` (and a directory the caller names) is a declarative spec; a module with
`TOOLS` and no `VENDOR` adds tools to a vendor declared elsewhere (the write tools of a spec
vendor, say); `unified` adds the cross-vendor tools. Adding a vendor is adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from pathlib import Path

from connectors.base import Page, Tool, Vendor
from connectors.specs import SpecError, load_dir

BUILTIN_SPECS = Path(__file__).parent / "specs"


@dataclass(frozen=True)
class Registry:
    vendors: dict[str, Vendor]
    tools: dict[str, Tool]


def load(extra_dir: Path | None = None) -> Registry:
    """Python vendors, built-in specs, the caller's specs, then unified tools."""
    vendors: dict[str, Vendor] = {}
    tools: dict[str, Tool] = {}
    added: list[Tool] = []  # `TOOLS` of modules without a `VENDOR`
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        vendor = getattr(module, "VENDOR", None)
        if isinstance(vendor, Vendor):
            vendors[vendor.name] = vendor
            tools.update((t.name, t) for t in vendor.tools)
        else:
            added.extend(getattr(module, "TOOLS", ()))
    for directory in (BUILTIN_SPECS, extra_dir):
        if directory is None:
            continue
        if not directory.is_dir():
            raise SpecError(f"{directory}: connectors directory does not exist")
        spec_vendors, spec_tools = load_dir(directory)
        vendors.update((v.name, v) for v in spec_vendors)
        for tool in spec_tools:
            for vendor_name in tool.accepts:
                if vendor_name not in vendors:
                    raise SpecError(f"{tool.name}: unknown vendor {vendor_name!r}")
            tools[tool.name] = tool
    _add(added, vendors, tools)
    from connectors.unified import unified_tools
    from connectors.unified_writes import unified_writes

    tools.update((t.name, t) for t in unified_tools(tools))
    tools.update((t.name, t) for t in unified_writes(tools))
    return Registry(vendors, tools)


def _add(added: list[Tool], vendors: dict[str, Vendor], tools: dict[str, Tool]) -> None:
    """Tools for vendors declared elsewhere; a name already registered (a vendor lists the
    tool itself, or a spec replaced it) keeps what it has."""
    for tool in added:
        for vendor_name in tool.accepts:
            if vendor_name not in vendors:
                raise SpecError(f"{tool.name}: unknown vendor {vendor_name!r}")
        tools.setdefault(tool.name, tool)


__all__ = ["Page", "Registry", "SpecError", "Tool", "Vendor", "load"]
