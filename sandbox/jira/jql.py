"""A tiny JQL subset: ``project``, ``status``, ``statusCategory`` with ``=``, ``!=``, ``IN``,
``NOT IN``, combined with ``AND``/``OR``/``NOT``/parentheses, evaluated to the set of issue
residues that match. Clauses on other known fields (and history operators) are accepted and
ignored; unknown fields and syntax errors raise ``JqlError`` in Jira's words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.jira.data import (
    CATEGORIES,
    ISSUE_PROJECTS,
    KNOWN_FIELDS,
    PROJECTS,
    RESIDUES,
    STATUSES,
    project_id,
)


class JqlError(Exception):
    pass


@dataclass
class Tok:
    kind: str  # word | string | op | ( | ) | , | eof
    text: str
    pos: int  # 0-based character offset


_OPS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
_WORD = re.compile(r"[^\s()=!~<>,\"']+")


def _quoted(jql: str, i: int) -> tuple[Tok, int]:
    """The string opening at ``jql[i]`` (backslash escapes the quote), and the index after."""
    c = jql[i]
    end = i + 1
    while end < len(jql) and jql[end] != c:
        end += 2 if jql[end] == "\\" else 1
    if end >= len(jql):
        raise JqlError(
            f"Error in the JQL Query: The quoted string '{jql[i + 1 :]}' has not been "
            f"completed. (line 1, character {i + 1})"
        )
    return Tok("string", jql[i + 1 : end].replace("\\" + c, c), i), end + 1


def tokenize(jql: str) -> list[Tok]:
    toks: list[Tok] = []
    i = 0
    while i < len(jql):
        c = jql[i]
        if c.isspace():
            i += 1
        elif c in "\"'":
            tok, i = _quoted(jql, i)
            toks.append(tok)
        elif c in "(),":
            toks.append(Tok(c, c, i))
            i += 1
        elif op := next((o for o in _OPS if jql.startswith(o, i)), None):
            toks.append(Tok("op", op, i))
            i += len(op)
        else:
            m = _WORD.match(jql, i)
            if not m:
                raise JqlError(
                    f"Error in the JQL Query: The character '{c}' is a reserved JQL character. "
                    f"You must enclose it in a string or use the escape '\\u{ord(c):04x}' "
                    f"instead. (line 1, character {i + 1})"
                )
            toks.append(Tok("word", m.group(0), i))
            i = m.end()
    toks.append(Tok("eof", "EOF", len(jql)))
    return toks


ALL = frozenset({0, 1, 2, 3})


class Jql:
    """Recursive descent over the subset; evaluates to the set of residues that match."""

    def __init__(self, jql: str, project_exists: Callable[[str], bool]) -> None:
        self.jql = jql
        self.toks = tokenize(jql)
        self.i = 0
        self.project_exists = project_exists

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def kw(self, *words: str) -> bool:
        return self.tok.kind == "word" and self.tok.text.upper() in words

    def take(self) -> Tok:
        tok = self.tok
        self.i += 1
        return tok

    def where(self, tok: Tok) -> str:
        return f"(line 1, character {tok.pos + 1})"

    def parse(self) -> frozenset[int]:
        if self.tok.kind == "eof" or self.kw("ORDER"):
            raise JqlError(
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query."
            )
        result = self.or_()
        if self.kw("ORDER"):
            self.take()
            if not self.kw("BY"):
                raise JqlError(
                    f"Error in the JQL Query: Expecting 'BY' but got "
                    f"'{self.tok.text}'. {self.where(self.tok)}"
                )
            self.take()
            while True:
                self.field()
                if self.kw("ASC", "DESC"):
                    self.take()
                if self.tok.kind != ",":
                    break
                self.take()
        if self.tok.kind != "eof":
            raise JqlError(
                f"Error in the JQL Query: Expecting either 'OR' or 'AND' but got "
                f"'{self.tok.text}'. {self.where(self.tok)}"
            )
        return result

    def or_(self) -> frozenset[int]:
        result = self.and_()
        while self.kw("OR") or (self.tok.kind == "word" and self.tok.text == "||"):
            self.take()
            result = result | self.and_()
        return result

    def and_(self) -> frozenset[int]:
        result = self.not_()
        while self.kw("AND") or (self.tok.kind == "word" and self.tok.text == "&&"):
            self.take()
            result = result & self.not_()
        return result

    def not_(self) -> frozenset[int]:
        if self.kw("NOT"):
            self.take()
            return ALL - self.not_()
        if self.tok.kind == "(":
            self.take()
            result = self.or_()
            if self.tok.kind != ")":
                raise JqlError(
                    f"Error in the JQL Query: Expecting ')' but got "
                    f"'{self.tok.text}'. {self.where(self.tok)}"
                )
            self.take()
            return result
        return self.clause()

    def field(self) -> str:
        tok = self.tok
        if tok.kind not in ("word", "string") or self.kw("AND", "OR", "NOT", "ORDER"):
            raise JqlError(
                f"Error in the JQL Query: Expecting a field name but got "
                f"'{tok.text}'. {self.where(tok)}"
            )
        self.take()
        name = tok.text
        if name.lower() not in KNOWN_FIELDS and not re.fullmatch(r"cf\[\d+\]", name, re.I):
            raise JqlError(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        return name

    def clause(self) -> frozenset[int]:
        name = self.field()
        op_tok = self.tok
        if op_tok.kind == "op":
            op = self.take().text
        elif self.kw("IN", "IS", "WAS", "CHANGED"):
            op = self.take().text.upper()
            if op in ("IS", "WAS") and self.kw("NOT"):
                op += " NOT"
                self.take()
            if op.startswith("WAS") and self.kw("IN"):
                op += " IN"
                self.take()
        elif self.kw("NOT") and self.toks[self.i + 1].text.upper() == "IN":
            self.take()
            self.take()
            op = "NOT IN"
        else:
            raise JqlError(
                f"Error in the JQL Query: Expecting operator but got '{op_tok.text}'. The "
                "valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', "
                f"'NOT IN', 'IS' and 'IS NOT'. {self.where(op_tok)}"
            )
        values = [] if op == "CHANGED" else self.values(op.endswith("IN"))
        return self.evaluate(name.lower(), op, values)

    def values(self, is_list: bool) -> list[str]:
        if is_list:
            if self.tok.kind != "(":
                raise JqlError(
                    f"Error in the JQL Query: Expecting '(' but got "
                    f"'{self.tok.text}'. {self.where(self.tok)}"
                )
            self.take()
            out = [self.value()]
            while self.tok.kind == ",":
                self.take()
                out.append(self.value())
            if self.tok.kind != ")":
                raise JqlError(
                    f"Error in the JQL Query: Expecting ')' but got "
                    f"'{self.tok.text}'. {self.where(self.tok)}"
                )
            self.take()
            return out
        return [self.value()]

    def value(self) -> str:
        tok = self.tok
        if tok.kind not in ("word", "string") or (
            tok.kind == "word" and tok.text.upper() in ("AND", "OR", "ORDER")
        ):
            raise JqlError(
                "Error in the JQL Query: Expecting either a value, list or function but got "
                f"'{tok.text}'. You must surround '{tok.text}' in quotation marks to use it as "
                f"a value. {self.where(tok)}"
            )
        self.take()
        if tok.kind == "word" and self.tok.kind == "(":  # a function: currentUser(), now()
            depth = 0
            while True:
                t = self.take()
                depth += {"(": 1, ")": -1}.get(t.kind, 0)
                if t.kind == "eof":
                    raise JqlError(
                        f"Error in the JQL Query: Expecting ')' but got 'EOF'. {self.where(t)}"
                    )
                if depth == 0:
                    break
        return tok.text

    def evaluate(self, field: str, op: str, values: list[str]) -> frozenset[int]:
        if field not in ("project", "status", "statuscategory"):
            return ALL  # accepted and ignored by this sandbox
        if op.startswith("WAS") or op == "CHANGED":
            return ALL  # history operators: accepted, not evaluated by this sandbox
        if op in ("IS", "IS NOT"):
            return frozenset() if op == "IS" else ALL  # these fields are never empty
        if op not in ("=", "!=", "IN", "NOT IN"):
            raise JqlError(f"The operator '{op}' is not supported by the '{field}' field.")
        matched: set[int] = set()
        for v in values:
            matched |= self.residues(field, v)
        return ALL - matched if op in ("!=", "NOT IN") else frozenset(matched)

    def residues(self, field: str, value: str) -> set[int]:
        low = value.lower()
        if field == "project":
            for key, name in PROJECTS.items():
                if low in (key.lower(), name.lower(), project_id(ISSUE_PROJECTS.index(key) + 1)):
                    return set(RESIDUES[key])
            if self.project_exists(value):
                return set()
            raise JqlError(f"The value '{value}' does not exist for the field 'project'.")
        if field == "status":
            for name, (sid, res, _) in STATUSES.items():
                if low in (name, sid):
                    return set(res)
            raise JqlError(f"The value '{value}' does not exist for the field 'status'.")
        for key, (cid, ckey, _, cname) in CATEGORIES.items():
            if low in (key, ckey, cname.lower(), str(cid)):
                return {r for s in STATUSES.values() if s[2] == key for r in s[1]}
        raise JqlError(f"The value '{value}' does not exist for the field 'statusCategory'.")


def matches(residues: frozenset[int], volume: int) -> tuple[list[int], int]:
    """The allowed residues, sorted, and how many of issues 1..volume fall in them."""
    allowed = sorted(residues)
    return allowed, sum(max(0, (volume - 1 - r) // 4 + 1) for r in allowed)


def nth(allowed: list[int], k: int) -> int:
    """The issue number of the k-th (0-based) match."""
    return 4 * (k // len(allowed)) + allowed[k % len(allowed)] + 1
