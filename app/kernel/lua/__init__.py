"""Lua scripts, one `.lua` file each, loaded by name (`source("job_write")`).

A script that calls shared functions declares them on its first line, `-- include: work, log`;
`source` puts each included file (and what it includes) before the script, once each, in
order, and refuses a cycle. Some includes are generated rather than written: `states`
(`tq_ended`) comes from `app.kernel.states`, so "terminal" has one definition.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from importlib import resources

from app.kernel.states import lua_prelude

INCLUDE = re.compile(r"--\s*include:(.*)")
GENERATED: dict[str, Callable[[], str]] = {"states": lua_prelude}


class IncludeError(ValueError):
    """An `-- include:` names no script, or includes lead back to where they started."""


def text(name: str) -> str:
    """The file `name`.lua (or the generated include of that name) as written, unresolved."""
    if name in GENERATED:
        return GENERATED[name]()
    path = resources.files(__name__).joinpath(f"{name}.lua")
    if not path.is_file():
        raise IncludeError(f"no Lua script {name!r} (app/kernel/lua/{name}.lua)")
    return path.read_text()


def includes(body: str) -> list[str]:
    """The names a script's first line includes (none without the directive)."""
    first = body.split("\n", 1)[0]
    match = INCLUDE.fullmatch(first.strip())
    if not match:
        return []
    return [n.strip() for n in match.group(1).split(",") if n.strip()]


def resolve(name: str) -> list[str]:
    """`name` and everything it includes, each once, includes first (depth-first, in the
    order written); IncludeError on a cycle or an unknown name."""
    order: list[str] = []
    _visit(name, order, ())
    return order


def _visit(name: str, order: list[str], path: tuple[str, ...]) -> None:
    if name in path:
        raise IncludeError("Lua include cycle: " + " -> ".join((*path, name)))
    if name in order:
        return
    for dep in includes(text(name)):
        _visit(dep, order, (*path, name))
    order.append(name)


@cache
def source(name: str) -> str:
    """The script `name`.lua, after every include it declares: what Redis runs."""
    return "\n".join(text(part) for part in resolve(name))
