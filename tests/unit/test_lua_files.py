"""The Lua scripts' shape, checked: every script is a `.lua` file under app/kernel/lua (none
hides in a Python string), each documents the KEYS and ARGV it reads and what it returns, its
`-- include:` line resolves, and "terminal" comes from app/kernel/states.py only."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from support import ROOT

from app.kernel import lua
from app.kernel.states import TERMINAL, JobState

LUA_DIR = ROOT / "app" / "kernel" / "lua"
SCRIPTS = sorted(p.stem for p in LUA_DIR.glob("*.lua"))
INDEX = re.compile(r"\b(KEYS|ARGV)\[(\d+)\]")
RANGE = re.compile(r"\b(KEYS|ARGV)\[(\d+)\.\.\]")  # KEYS[8..]: the 8th and on


def header(body: str) -> list[str]:
    """The comment lines a file opens with."""
    lines = []
    for line in body.splitlines():
        if not line.startswith("--"):
            break
        lines.append(line)
    return lines


def code(body: str) -> str:
    """The file without its comments (whole-line and trailing)."""
    return "\n".join(line.split("--", 1)[0] for line in body.splitlines())


def prelude(body: str) -> bool:
    return any(line.startswith("-- Prelude") for line in header(body))


def test_no_python_module_holds_a_lua_script() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("app", "tasks", "connectors")
        for path in sorted((ROOT / package).rglob("*.py"))
        if "redis.call(" in path.read_text()
    ]
    assert offenders == [], "Lua belongs in app/kernel/lua/<name>.lua, loaded by name"


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_documents_its_keys_argv_and_reply(name: str) -> None:
    body = lua.text(name)
    top = "\n".join(header(body))
    if prelude(body):
        assert "KEYS, ARGV: none" in top, f"{name}.lua: say a prelude reads no KEYS or ARGV"
        assert not INDEX.search(code(body)), f"{name}.lua: a prelude takes keys as arguments"
        return
    assert "Returns" in top, f"{name}.lua: document what it returns"
    documented = {(kind, int(i)) for kind, i in INDEX.findall(top)}
    ranges = {kind: int(i) for kind, i in RANGE.findall(top)}
    for kind, i in sorted({(kind, int(i)) for kind, i in INDEX.findall(code(body))}):
        covered = (kind, i) in documented or (kind in ranges and i >= ranges[kind])
        assert covered, f"{name}.lua uses {kind}[{i}] but its header does not document it"


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_include_resolves_and_stands_on_the_first_line(name: str) -> None:
    body = lua.text(name)
    later = [line for line in body.splitlines()[1:] if lua.INCLUDE.fullmatch(line.strip())]
    assert later == [], f"{name}.lua: `-- include:` counts only on the first line"
    order = lua.resolve(name)
    assert order[-1] == name
    assert len(order) == len(set(order))
    for dep in lua.includes(body):
        assert dep in order[:-1]


def test_includes_come_once_each_in_order_and_a_cycle_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = {
        "a": "-- include: b, c\nA",
        "b": "-- include: c\nB",
        "c": "C",
        "x": "-- include: y\nX",
        "y": "-- include: x\nY",
    }
    monkeypatch.setattr(lua, "text", files.__getitem__)
    assert lua.resolve("a") == ["c", "b", "a"]
    with pytest.raises(lua.IncludeError, match="x -> y -> x"):
        lua.resolve("x")


def test_an_unknown_include_is_an_error() -> None:
    with pytest.raises(lua.IncludeError, match="no Lua script"):
        lua.text("no_such_script")


def test_no_script_spells_out_the_terminal_states() -> None:
    spelled = re.compile("|".join(f"['\"]{s.value}['\"]" for s in TERMINAL))
    for name in SCRIPTS:
        assert not spelled.search(code(lua.text(name))), (
            f"{name}.lua: use tq_ended(status) (`-- include: states`), not a list of states"
        )


def test_every_script_compiles_in_redis(r: Any) -> None:
    """SCRIPT LOAD compiles a script (a syntax error raises) and answers its SHA1."""
    for name in SCRIPTS:
        if not prelude(lua.text(name)):
            src = lua.source(name)
            assert r.script_load(src) == hashlib.sha1(src.encode()).hexdigest(), name


def test_tq_ended_is_jobstate_terminal(r: Any) -> None:
    states = [s.value for s in JobState]
    check = lua.source("states") + "\nlocal out = {}\n"
    check += "for i, s in ipairs(ARGV) do out[i] = tq_ended(s) and 1 or 0 end\nreturn out"
    ended = r.eval(check, 0, *states, "")
    assert ended == [int(JobState(s).terminal) for s in states] + [1]
