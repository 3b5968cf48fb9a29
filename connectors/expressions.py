"""JMESPath expressions a pipeline's stages are written in (`filter`, `map` values), made safe
for tenant input and forgiving of the one mistake everyone makes.

In JMESPath a bare `null`, `true` or `false` is a *field* of that name (a literal needs
backticks), so `properties.email != null` would compare against a field nobody has and keep
every record. `compile_expr` reads such a bare word in an operand position as the literal it
was meant to be; inside a path (`a.null`), or quoted (`"null"`), it stays a field.

Compiling refuses, as `ExpressionError` with the position and what is wrong: bad syntax, an
unknown function or a wrong number of arguments, text over `MAX_LENGTH` characters or nested
deeper than `MAX_DEPTH`, and text that is not valid Unicode (a lone surrogate). Evaluating
never raises anything but `EvaluationError` (an `ExpressionError`): a function given the wrong
type, data too deep to walk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jmespath import exceptions, functions, lexer, parser, visitor

MAX_LENGTH = 1000  # characters of expression text
MAX_DEPTH = 32  # brackets, parentheses and braces open at once; also bounds the parsed tree
_TREE_DEPTH = 4 * MAX_DEPTH  # parsed nodes from the root to a leaf (a path adds one a step)
BARE_LITERALS: dict[str, Any] = {"null": None, "true": True, "false": False}
_OPENERS = {"lparen", "lbracket", "lbrace", "filter"}
_CLOSERS = {"rparen", "rbracket", "rbrace"}
# where a child of a node is read against the record the node is read against (the root, at
# the top): indexes of the children that are, per node type (all: every child)
_SAME_CONTEXT: dict[str, tuple[int, ...] | None] = {
    "comparator": None,
    "and_expression": None,
    "or_expression": None,
    "not_expression": None,
    "function_expression": None,
    "multi_select_list": None,
    "multi_select_dict": None,
    "key_val_pair": None,
    "pipe": (0,),
    "projection": (0,),
    "value_projection": (0,),
    "filter_projection": (0,),
    "flatten": (0,),
    "index_expression": (0,),
    "subexpression": (0,),
}
# where a bare null/true/false is an operand (a value), not a step of a path
_OPERAND_PARENTS = {
    "comparator",
    "and_expression",
    "or_expression",
    "not_expression",
    "function_expression",
    "multi_select_list",
    "key_val_pair",
}
Node = dict[str, Any]


class ExpressionError(ValueError):
    """An expression refused: bad syntax, too long or deep, or invalid text. `position` is the
    0-based character offset the problem was found at, when there is one."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.position = position


class EvaluationError(ExpressionError):
    """A compiled expression failed on one record (a function given the wrong type)."""


@dataclass(frozen=True)
class Expr:
    """A compiled expression: `search(record)` evaluates it, `references` lists the dotted
    paths it reads from the record's root (for static checks against a source's fields)."""

    text: str
    _tree: Any = field(repr=False, compare=False)  # the parsed tree (a dict of nodes)
    _references: tuple[str, ...] = field(repr=False, compare=False)

    @property
    def references(self) -> list[str]:
        return list(self._references)

    def search(self, record: Any) -> Any:
        """The expression's value for `record`; every failure is an `EvaluationError`."""
        try:
            return visitor.TreeInterpreter().visit(self._tree, record)
        except exceptions.JMESPathError as exc:
            raise EvaluationError(f"{_short(self.text)} failed on this record: {exc}") from None
        except RecursionError:
            raise EvaluationError(f"{_short(self.text)}: the record is nested too deeply") from None


def _short(text: str, at_most: int = 80) -> str:
    """An expression as an error message quotes it: long ones cut."""
    return repr(text if len(text) <= at_most else text[: at_most - 1] + "…")


def truthy(value: Any) -> bool:
    """JMESPath's truth: false, null, "", [] and {} are false; everything else (0 too) true."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict | tuple):
        return len(value) > 0
    return True


def compile_expr(text: str) -> Expr:
    """Compile `text` (see the module docstring for what is refused and what is rewritten);
    the same text compiles once per process."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression is text, not {type(text).__name__}")
    return _compile(text)


@lru_cache(maxsize=256)
def _compile(text: str) -> Expr:
    _check_text(text)
    _check_nesting(text)
    try:
        root = _Parser().tree(text)
    except exceptions.LexerError as exc:
        raise ExpressionError(_lexer_message(exc), exc.lexer_position) from None
    except exceptions.IncompleteExpressionError:
        raise ExpressionError(
            f"the expression ends too soon at position {len(text)}: an operand or a closing "
            "bracket is missing",
            len(text),
        ) from None
    except exceptions.ParseError as exc:
        raise ExpressionError(_parse_message(exc), exc.lex_position) from None
    except exceptions.JMESPathError as exc:  # EmptyExpressionError and the like
        raise ExpressionError(f"invalid expression: {exc}") from None
    except RecursionError:
        raise ExpressionError(f"nested too deeply (at most {MAX_DEPTH} levels)") from None
    _check_tree(root)
    root = _rewrite_bare_literals(root)
    return Expr(text, root, tuple(_references(root)))


# ---- refusals before parsing ----------------------------------------------------------------


def _check_text(text: str) -> None:
    if not text.strip():
        raise ExpressionError("the expression is empty")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(text)} characters long; at most {MAX_LENGTH} are allowed"
        )
    _check_unicode(text, "the expression", positioned=True)


def _check_unicode(text: str, what: str, *, positioned: bool = False) -> None:
    """Surrogate halves are not characters: no JSON encoder downstream could write them.
    `positioned`: `text` is the expression itself, so the offset is a position in it."""
    for i, ch in enumerate(text):
        if "\ud800" <= ch <= "\udfff":
            where = f" at position {i}" if positioned else ""
            raise ExpressionError(
                f"{what} holds a lone surrogate (U+{ord(ch):04X}){where}, which is not text",
                i if positioned else None,
            )


def _check_nesting(text: str) -> None:
    """Count open brackets over the tokens (a literal's own brackets are one token), so deep
    nesting is refused before the recursive parser meets it."""
    depth = 0
    try:
        for token in lexer.Lexer().tokenize(text):
            kind = token["type"]
            if kind in _OPENERS:
                depth += 1
                if depth > MAX_DEPTH:
                    raise ExpressionError(
                        f"nested too deeply at position {token['start']}: at most "
                        f"{MAX_DEPTH} brackets, parentheses and braces may be open at once",
                        token["start"],
                    )
            elif kind in _CLOSERS:
                depth -= 1
    except exceptions.LexerError as exc:
        raise ExpressionError(_lexer_message(exc), exc.lexer_position) from None
    except RecursionError:  # a JSON literal nested deeper than the interpreter recurses
        raise ExpressionError("a literal is nested too deeply") from None


def _lexer_message(exc: exceptions.LexerError) -> str:
    return f"invalid expression at position {exc.lexer_position}: {exc.message}"


def _parse_message(exc: exceptions.ParseError) -> str:
    got = f"{exc.token_value!r}" if exc.token_type != "EOF" else "the end"
    detail = exc.msg if exc.msg != "Invalid jmespath expression" else "unexpected token"
    return f"invalid expression at position {exc.lex_position}: {detail} (found {got})"


class _Parser(parser.Parser):
    """jmespath's parser, marking an unquoted `null`/`true`/`false` so the rewrite can tell it
    from a quoted field of the same name (the parsed tree alone cannot). Uncached: jmespath's
    own cache is shared by the process, and this tree is rewritten."""

    def _token_nud_unquoted_identifier(self, token: dict[str, Any]) -> Node:
        node: Node = {"type": "field", "children": [], "value": token["value"]}  # upstream's
        if token["value"] in BARE_LITERALS:
            node["bare"] = True
        return node

    def tree(self, text: str) -> Node:
        result = self._do_parse(text)  # type: ignore[attr-defined]  # upstream's uncached parse
        tree: Node = result.parsed
        return tree


# ---- the parsed tree ------------------------------------------------------------------------


def _children(node: Node) -> list[Node]:
    """The child nodes (a slice's children are its numbers, not nodes)."""
    return [c for c in node.get("children", ()) if isinstance(c, dict)]


def _walk(root: Node) -> Iterator[tuple[Node, int]]:
    """Every node with its depth, iteratively (a tree is never recursed into blindly)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        stack.extend((child, depth + 1) for child in _children(node))


def _check_tree(root: Node) -> None:
    """Depth, names of functions and their arity, and the text of names and literals."""
    table = functions.Functions.FUNCTION_TABLE
    for node, depth in _walk(root):
        if depth > _TREE_DEPTH:
            raise ExpressionError(
                f"nested too deeply: its parsed form is over {_TREE_DEPTH} levels deep (each "
                "chained `|`, comparison, `!` or projection adds one)"
            )
        kind = node.get("type")
        if kind == "function_expression":
            _check_call(node["value"], len(_children(node)), table)
        elif kind in ("field", "key_val_pair") and isinstance(node.get("value"), str):
            _check_unicode(node["value"], f"the name {node['value']!r}")
        elif kind == "literal":
            _check_literal(node["value"])


def _check_call(name: str, given: int, table: dict[str, Any]) -> None:
    spec = table.get(name)
    if spec is None:
        known = ", ".join(sorted(table))
        raise ExpressionError(f"unknown function {name}(); known: {known}")
    signature = spec["signature"]
    variadic = bool(signature) and signature[-1].get("variadic")
    if (given < len(signature)) if variadic else (given != len(signature)):
        wanted = f"at least {len(signature)}" if variadic else str(len(signature))
        raise ExpressionError(f"{name}() takes {wanted} argument(s), {given} given")


def _check_literal(value: Any) -> None:
    """Every string in a literal (a JSON literal may hold `\\ud800`) is real text."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_unicode(item, "a literal")
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


def _rewrite_bare_literals(root: Node) -> Node:
    """Bare null/true/false in an operand position (or the whole expression) as literals."""
    if root.get("bare"):
        return _literal(root["value"])
    for node, _ in _walk(root):
        kids = node.get("children", [])
        for i, child in enumerate(kids):
            if isinstance(child, dict) and child.get("bare") and _is_operand(node, i):
                kids[i] = _literal(child["value"])
    return root


def _is_operand(parent: Node, index: int) -> bool:
    """A filter's condition (its third child) is an operand too: `items[?true]`."""
    kind = parent.get("type")
    return kind in _OPERAND_PARENTS or (kind == "filter_projection" and index == 2)


def _literal(word: str) -> Node:
    return {"type": "literal", "value": BARE_LITERALS[word], "children": []}


# ---- references -----------------------------------------------------------------------------


def _references(root: Node) -> list[str]:
    """Dotted paths read from the root, in order of appearance, each once. A path stops at its
    first index, slice or projection (`a.b[0].c` reads `a.b`); what a projection, filter or
    `&expr` reads of each element, or the right side of a pipe, is not read from the root."""
    found: list[str] = []
    stack = [root]
    while stack:
        node = stack.pop()
        path = _path(node)
        if path is not None:
            if path and path not in found:
                found.append(path)
            continue
        same = _SAME_CONTEXT.get(node.get("type", ""), ())
        kids = _children(node)
        picked = kids if same is None else [kids[i] for i in same if i < len(kids)]
        stack.extend(reversed(picked))
    return found


def _path(node: Node) -> str | None:
    """The dotted path a field or a subexpression chain names from where it is read ("" for
    `@`); None when the node is no path (its operands are then walked instead). A chain's
    first index, slice or other step ends the path there."""
    kind = node.get("type")
    if kind == "field":
        return str(node["value"])
    if kind == "current":
        return ""
    if kind != "subexpression":
        return None
    chain = _flatten_chain(node)
    if chain[0].get("type") not in ("field", "current", "index_expression"):
        return None  # `(a || b).c`: what the parenthesis reads is read from here
    steps: list[str] = []
    for step in chain:
        kind = step.get("type")
        if kind == "field":
            steps.append(str(step["value"]))
            continue
        if kind == "current" and not steps:
            continue
        if kind == "index_expression":  # `b[0]`: the path reaches `b`
            head = _children(step)[:1]
            inner = _path(head[0]) if head else None
            if inner:
                steps.append(inner)
        break
    return ".".join(steps)


def _flatten_chain(node: Node) -> list[Node]:
    """`a.b.c` as the steps a, b, c however the parser nested its subexpressions."""
    steps: list[Node] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if item.get("type") == "subexpression":
            stack.extend(reversed(_children(item)))
        else:
            steps.append(item)
    return steps
