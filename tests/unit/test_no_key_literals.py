"""Tests and benchmarks name Redis keys through `app.kernel.keys`, never by spelling them: a
key renamed there cannot leave a test looking at a key nobody writes any more.

Only string literals count (found with `ast`, so comments may mention keys): one that starts
with the key prefix, or that quotes one inside embedded code (a Lua script)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from support import ROOT

from app.kernel import keys

PREFIX = f"{keys.P}:"
SCANNED = ("tests", "bench")
OWN_TESTS = {"test_keys.py"}  # the builders' own tests may spell what they build


def spelled_keys(source: str) -> Iterator[tuple[int, str]]:
    """(line, literal) of every string literal in `source` that spells a key."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if text.startswith(PREFIX) or f"'{PREFIX}" in text or f'"{PREFIX}' in text:
                yield node.lineno, text


def test_no_test_or_benchmark_spells_a_redis_key():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text[:60]!r}"
        for folder in SCANNED
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name not in OWN_TESTS
        for line, text in spelled_keys(path.read_text())
    ]
    assert found == [], "use the builders of app/kernel/keys.py:\n" + "\n".join(found)


def test_the_scan_finds_literals_but_not_comments_or_builders():
    source = "\n".join([
        f"a = '{PREFIX}job:1'",
        f"b = f'{PREFIX}job:{{x}}'",
        f"lua = \"redis.call('GET', '{PREFIX}x')\"",
        f"# a comment on {PREFIX}job:* is fine",
        "c = keys.job('1')",
        "d = 'plain text'",
    ])  # fmt: skip
    assert sorted(line for line, _ in spelled_keys(source)) == [1, 2, 3]
