"""GraphQL for the vendor doubles: one tokenizer and one parser into a selection tree.

Enough of the language for what vendors' clients send: one operation (``query``,
``mutation`` or ``subscription``; optional name; variable definitions, of which only the
names are kept; directives skipped), fields with aliases and arguments (each argument keeps
its first token: enough for scalars and variables; object and list literals, such as a
mutation's ``input: {id: "…", email: $email}``, are also kept whole, :func:`argument`
resolving their variables), inline fragments merged into their parent. Named fragment
spreads are recorded, never resolved; anything after the operation's selection set
(fragment definitions, further operations) is ignored. Errors read like graphql-ruby's
(Shopify's server), with 1-based positions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

OPERATIONS = ("query", "mutation", "subscription")


class GraphQLError(Exception):
    """A refused document; ``body`` is the error object as the server renders it."""

    def __init__(
        self,
        message: str,
        line: int = 0,
        column: int = 0,
        extensions: dict[str, Any] | None = None,
        path: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = {"message": message}
        if line:
            self.body["locations"] = [{"line": line, "column": column}]
        if path:
            self.body["path"] = path
        if extensions:
            self.body["extensions"] = extensions


@dataclass(frozen=True)
class Token:
    kind: str  # NAME, INT, FLOAT, STRING, VAR or the punctuator itself
    value: str
    line: int
    column: int


PUNCT_NAMES = {
    "{": "LCURLY",
    "}": "RCURLY",
    "(": "LPAREN",
    ")": "RPAREN",
    "[": "LBRACKET",
    "]": "RBRACKET",
    ":": "COLON",
    "=": "EQUALS",
    "!": "BANG",
    "@": "DIR_SIGN",
    "...": "ELLIPSIS",
    "|": "PIPE",
    "&": "AMP",
}
_TOKEN = re.compile(
    r'(?P<ws>[\s,\ufeff]+|#[^\n]*)|(?P<block>"""(?:[^"\\]|\\.|"(?!""))*""")'
    r'|(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<var>\$[_A-Za-z][_0-9A-Za-z]*)'
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>[_A-Za-z][_0-9A-Za-z]*)"
    r"|(?P<punct>\.\.\.|[{}()\[\]:=!@|&])"
)
_KINDS = {"block": "STRING", "string": "STRING", "var": "VAR", "name": "NAME"}
_CLOSERS = {"}": "{", ")": "(", "]": "["}


def parse_error(tok: Token, label: str | None = None) -> GraphQLError:
    """graphql-ruby's ``Parse error on "x" (KIND) at [line, column]``."""
    label = label or PUNCT_NAMES.get(tok.kind, tok.kind)
    return GraphQLError(
        f'Parse error on "{tok.value}" ({label}) at [{tok.line}, {tok.column}]',
        tok.line,
        tok.column,
    )


def _token(group: str, value: str, line: int, column: int) -> Token:
    if group == "punct":
        return Token(value, value, line, column)
    kind = _KINDS.get(group) or ("FLOAT" if "." in value else "INT")
    return Token(kind, value, line, column)


def _balance(tok: Token, open_brackets: list[Token]) -> None:
    """Bracket balance checked as tokens arrive, like a parser would."""
    if tok.kind in "{([":
        open_brackets.append(tok)
    elif tok.kind in _CLOSERS:
        if not open_brackets or open_brackets[-1].value != _CLOSERS[tok.kind]:
            raise parse_error(tok)
        open_brackets.pop()


def tokenize(text: str) -> list[Token]:
    """Tokens with 1-based positions; unbalanced brackets are a parse error."""
    tokens: list[Token] = []
    open_brackets: list[Token] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        col = pos - line_start + 1
        if m is None:
            raise GraphQLError(
                f'Parse error on "{text[pos]}" (error) at [{line}, {col}]', line, col
            )
        value = m.group()
        if m.lastgroup != "ws":
            tok = _token(m.lastgroup or "", value, line, col)
            if m.lastgroup == "punct":
                _balance(tok, open_brackets)
            tokens.append(tok)
        if newlines := value.count("\n"):
            line += newlines
            line_start = pos + value.rindex("\n") + 1
        pos = m.end()
    if open_brackets:
        raise GraphQLError("Unexpected end of document")
    return tokens


def skip_block(tokens: list[Token], i: int) -> int:
    """Index just past the bracket group opening at ``tokens[i]``."""
    depth = 0
    while i < len(tokens):
        if tokens[i].kind in ("{", "(", "["):
            depth += 1
        elif tokens[i].kind in ("}", ")", "]"):
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def arguments(tokens: list[Token], i: int) -> tuple[dict[str, Token], int]:
    """A field's `(name: value, …)` at tokens[i], if any: each argument's value token (the
    opening one of an object or list), and the index after the closing parenthesis."""
    args: dict[str, Token] = {}
    if i >= len(tokens) or tokens[i].kind != "(":
        return args, i
    end = skip_block(tokens, i)
    j = i + 1
    while j < end - 1:
        if tokens[j].kind == "NAME" and tokens[j + 1].kind == ":":
            value = tokens[j + 2]
            args[tokens[j].value] = value
            j = skip_block(tokens, j + 2) if value.kind in ("{", "[") else j + 3
        else:
            j += 1
    return args, end


@dataclass(frozen=True)
class Var:
    """A variable inside an object or list literal, resolved when the argument is read."""

    name: str


def _literal(tokens: list[Token], i: int) -> tuple[Any, int]:
    """The value literal at ``tokens[i]`` (objects and lists nested), and the index after."""
    tok = tokens[i]
    if tok.kind == "{":
        obj: dict[str, Any] = {}
        i += 1
        while tokens[i].kind != "}":
            if tokens[i].kind != "NAME" or tokens[i + 1].kind != ":":
                raise parse_error(tokens[i])
            obj[tokens[i].value], i = _literal(tokens, i + 2)
        return obj, i + 1
    if tok.kind == "[":
        items: list[Any] = []
        i += 1
        while tokens[i].kind != "]":
            item, i = _literal(tokens, i)
            items.append(item)
        return items, i + 1
    if tok.kind == "VAR":
        return Var(tok.value[1:]), i + 1
    literal = value(tok, {})
    return {"true": True, "false": False}.get(literal, literal), i + 1


def literals(args: dict[str, Token], tokens: list[Token]) -> dict[str, Any]:
    """The object and list literals among a field's arguments, parsed whole."""
    out: dict[str, Any] = {}
    for name, tok in args.items():
        if tok.kind in ("{", "["):
            out[name], _ = _literal(tokens, tokens.index(tok))
    return out


@dataclass(frozen=True)
class Sel:
    """One selected field: its response key (alias or name), name, arguments, sub-selection,
    its name token (where errors about it point), and its object/list literal arguments."""

    key: str
    name: str
    args: dict[str, Token]
    sub: dict[str, Sel] | None
    at: Token
    objects: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Document:
    """A one-operation document: its type, declared variables (without ``$``), the root
    selection, the root selection's first token, and the named fragment spreads met."""

    op: str
    declared: frozenset[str]
    root: dict[str, Sel]
    first: Token
    spreads: tuple[Token, ...]


class _Parser:
    """Recursive descent over selection sets; ``spreads`` collects ``...Name`` tokens."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.spreads: list[Token] = []

    def kind(self, i: int) -> str:
        return self.tokens[i].kind if i < len(self.tokens) else "EOF"

    def selection(self, i: int) -> tuple[dict[str, Sel], int]:
        """The selection set opening at ``tokens[i]`` (a ``{``): fields by key, index after."""
        out: dict[str, Sel] = {}
        i += 1
        while self.kind(i) not in ("}", "EOF"):
            if self.kind(i) == "...":
                i = self.fragment(i, out)
                continue
            sel, i = self.field(i)
            out[sel.key] = sel
        return out, i + 1

    def fragment(self, i: int, out: dict[str, Sel]) -> int:
        """``... on T { }`` / ``... { }`` merge into ``out``; ``...Name`` is recorded."""
        i += 1
        if self.kind(i) == "NAME" and self.tokens[i].value != "on":
            self.spreads.append(self.tokens[i - 1])
            return self.directives(i + 1)
        if self.kind(i) == "NAME":
            i += 2  # the type condition
        i = self.directives(i)
        if self.kind(i) != "{":
            raise parse_error(self.tokens[min(i, len(self.tokens) - 1)])
        sub, i = self.selection(i)
        out.update(sub)
        return i

    def field(self, i: int) -> tuple[Sel, int]:
        at = self.tokens[i]
        if at.kind != "NAME":
            raise parse_error(at)
        key, i = at.value, i + 1
        if self.kind(i) == ":":
            if self.kind(i + 1) != "NAME":
                raise parse_error(self.tokens[min(i + 1, len(self.tokens) - 1)])
            at, i = self.tokens[i + 1], i + 2
        args, i = arguments(self.tokens, i)
        i = self.directives(i)
        sub = None
        if self.kind(i) == "{":
            sub, i = self.selection(i)
        return Sel(key, at.value, args, sub, at, literals(args, self.tokens)), i

    def directives(self, i: int) -> int:
        while self.kind(i) == "@":
            i += 2
            if self.kind(i) == "(":
                i = skip_block(self.tokens, i)
        return i


def _operation(tokens: list[Token]) -> tuple[str, frozenset[str], int]:
    """(operation type, declared variables, index of the root ``{``)."""
    first = tokens[0]
    op, i, declared = "query", 0, frozenset[str]()
    if first.kind == "NAME":
        if first.value not in OPERATIONS:
            raise parse_error(first, "IDENTIFIER")
        op, i = first.value, 1
        if i < len(tokens) and tokens[i].kind == "NAME":
            i += 1
        if i < len(tokens) and tokens[i].kind == "(":
            end = skip_block(tokens, i)
            declared = frozenset(t.value[1:] for t in tokens[i:end] if t.kind == "VAR")
            i = end
    elif first.kind != "{":
        raise parse_error(first)
    while i < len(tokens) and tokens[i].kind != "{":
        i += 1  # directives on the operation
    if i + 1 >= len(tokens):
        raise parse_error(tokens[-1])
    return op, declared, i


def parse(text: str) -> Document:
    """The document's one operation (``GraphQLError`` says why it is refused)."""
    tokens = tokenize(text)
    if not tokens:
        raise GraphQLError("Unexpected end of document")
    op, declared, i = _operation(tokens)
    first = tokens[i + 1]
    if first.kind == "}":
        raise parse_error(first)
    parser = _Parser(tokens)
    root, _ = parser.selection(i)
    return Document(op, declared, root, first, tuple(parser.spreads))


def undeclared(sel: Sel, declared: frozenset[str], op: str) -> GraphQLError | None:
    """The error for the first of ``sel``'s variables the operation does not declare."""
    for tok in sel.args.values():
        if tok.kind == "VAR" and tok.value[1:] not in declared:
            return GraphQLError(
                f"Variable {tok.value} is used by anonymous {op} but not declared",
                tok.line,
                tok.column,
                {"code": "variableNotDefined", "variableName": tok.value[1:]},
            )
    return None


def block_string(raw: str) -> str:
    """GraphQL block string value: common indentation and blank edge lines removed."""
    lines = raw.replace('\\"""', '"""').splitlines()
    indents = [len(line) - len(line.lstrip()) for line in lines[1:] if line.strip()]
    cut = min(indents) if indents else 0
    lines = lines[:1] + [line[cut:] for line in lines[1:]]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def value(tok: Token | None, variables: dict[str, Any]) -> Any:
    """An argument's value: a variable's, an Int, a String; ``null`` is None, any other
    literal its source text (enums, booleans, floats; ``{``/``[`` for objects and lists)."""
    if tok is None:
        return None
    if tok.kind == "VAR":
        return variables.get(tok.value[1:])
    if tok.kind == "INT":
        return int(tok.value)
    if tok.kind == "STRING" and tok.value.startswith('"""'):
        return block_string(tok.value[3:-3])
    if tok.kind == "STRING":
        try:
            return json.loads(tok.value)
        except ValueError:
            return None
    return None if tok.value == "null" else tok.value


def _resolved(found: Any, variables: dict[str, Any]) -> Any:
    if isinstance(found, Var):
        return variables.get(found.name)
    if isinstance(found, dict):
        return {k: _resolved(v, variables) for k, v in found.items()}
    if isinstance(found, list):
        return [_resolved(v, variables) for v in found]
    return found


def argument(sel: Sel, name: str, variables: dict[str, Any]) -> Any:
    """Argument ``name``'s value: an object/list literal with its variables resolved, a
    variable's value, or a scalar literal (see :func:`value`); None when absent."""
    if name in sel.objects:
        return _resolved(sel.objects[name], variables)
    return value(sel.args.get(name), variables)


def string_value(tok: Token | None, variables: dict[str, Any]) -> Any:
    """An argument given as a String literal or a variable; None for any other literal."""
    if tok is None or tok.kind not in ("VAR", "STRING"):
        return None
    return value(tok, variables)


def project(node: dict[str, Any], sel: dict[str, Sel]) -> dict[str, Any]:
    """``node`` shaped by a selection: response keys, nested objects projected in turn."""
    out: dict[str, Any] = {}
    for s in sel.values():
        found = node.get(s.name)
        out[s.key] = project(found, s.sub) if isinstance(found, dict) and s.sub else found
    return out


def shape(field: Sel, payload: dict[str, Any]) -> dict[str, Any]:
    """A mutation's payload as selected (all of it when nothing is); ``userErrors`` lists
    projected entry by entry."""
    if not field.sub:
        return payload
    shaped: dict[str, Any] = {}
    for s in field.sub.values():
        found = payload.get(s.name)
        if s.name == "userErrors" and s.sub:
            found = [project(e, s.sub) for e in payload["userErrors"]]
        elif isinstance(found, dict) and s.sub:
            found = project(found, s.sub)
        shaped[s.key] = found
    return shaped


def connection_nodes(conn: Sel) -> dict[str, Sel] | None:
    """The node selection of a connection field: ``edges { node { … } }`` or ``nodes { … }``."""
    sub = conn.sub or {}
    edges = next((s for s in sub.values() if s.name == "edges"), None)
    if edges is not None and edges.sub:
        node = next((s for s in edges.sub.values() if s.name == "node"), None)
        if node is not None and node.sub is not None:
            return node.sub
    nodes = next((s for s in sub.values() if s.name == "nodes"), None)
    return nodes.sub if nodes is not None else None
