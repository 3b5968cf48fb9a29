"""Lua scripts, one `.lua` file each, loaded by name; a prelude of shared functions is
prepended where a script calls them (`source("sweep", prelude=["work"])`)."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def source(name: str, *, prelude: tuple[str, ...] = ()) -> str:
    """The script `name`.lua, after the preludes it uses (each a `.lua` file of functions)."""
    parts = [*prelude, name]
    return "\n".join(resources.files(__name__).joinpath(f"{p}.lua").read_text() for p in parts)
