"""Pipeline expressions (JMESPath): bare null/true/false as literals, `references`, JMESPath
truthiness, and hostile text refused as ExpressionError (never RecursionError or worse)."""

from __future__ import annotations

import pytest

from connectors.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    EvaluationError,
    ExpressionError,
    compile_expr,
    truthy,
)

CONTACT = {
    "id": "7",
    "properties": {"email": "jane@acme.example", "firstname": "Jane", "null": "a field"},
    "tags": ["vip", "eu", "beta"],
    "items": [{"x": "a", "y": 1}, {"x": "b", "y": 2}, {"x": None, "y": 3}],
    "null": "root field named null",
    "true": 0,
}
NO_EMAIL = {"id": "8", "properties": {"email": None}, "tags": []}


def test_a_bare_null_compares_with_null_not_with_a_field_named_null():
    keep = compile_expr("properties.email != null")
    assert keep.search(CONTACT) is True
    assert keep.search(NO_EMAIL) is False
    assert keep.search({}) is False  # a missing field is null
    assert compile_expr("properties.email == null").search(NO_EMAIL) is True


def test_bare_true_and_false_are_literals_in_operand_positions():
    assert compile_expr("true").search(CONTACT) is True
    assert compile_expr("false").search(CONTACT) is False
    assert compile_expr("null").search(CONTACT) is None
    assert compile_expr("[null, true, false]").search({}) == [None, True, False]
    assert compile_expr("{a: true, b: null}").search({}) == {"a": True, "b": None}
    assert compile_expr("not_null(properties.phone, false)").search(CONTACT) is False
    assert compile_expr("!false && true").search({}) is True
    assert compile_expr("items[?x != null].y").search(CONTACT) == [1, 2]
    assert compile_expr("items[?true].y").search(CONTACT) == [1, 2, 3]


def test_in_a_path_or_quoted_null_is_still_a_field():
    assert compile_expr("properties.null").search(CONTACT) == "a field"
    assert compile_expr('"null"').search(CONTACT) == "root field named null"
    assert compile_expr('"true"').search(CONTACT) == 0
    assert compile_expr("null.x").search({"null": {"x": 1}}) == 1  # a path starting at `null`
    assert compile_expr("items[*].null").search({"items": [{"null": 5}]}) == [5]


def test_a_backtick_literal_works_as_jmespath_says():
    assert compile_expr("properties.email != `null`").search(CONTACT) is True
    assert compile_expr("length(tags) > `2`").search(CONTACT) is True
    assert compile_expr("length(tags) > `2`").search(NO_EMAIL) is False


def test_map_values_are_plain_jmespath():
    assert compile_expr("properties.email").search(CONTACT) == "jane@acme.example"
    assert compile_expr("tags[0]").search(CONTACT) == "vip"
    assert compile_expr("{email: properties.email, n: length(tags)}").search(CONTACT) == {
        "email": "jane@acme.example",
        "n": 3,
    }


@pytest.mark.parametrize(
    "text,refs",
    [
        ("properties.email != null", ["properties.email"]),
        ("length(tags) > `2`", ["tags"]),
        ("items[?x == 'a'].y", ["items"]),
        ("properties.email", ["properties.email"]),
        ("a.b[0].c", ["a.b"]),
        ("a[*].b", ["a"]),
        ("a[]", ["a"]),
        ("a.*", ["a"]),
        ("a[1:2]", ["a"]),
        ("@.a", ["a"]),
        ("a | b", ["a"]),
        ("{x: a.b, y: c, z: a.b}", ["a.b", "c"]),
        ("[a, b]", ["a", "b"]),
        ("a && b || !c", ["a", "b", "c"]),
        ("(a || b).c", ["a", "b"]),
        ("sort_by(items, &name)", ["items"]),
        ("contains(tags, 'vip') && properties.email != null", ["tags", "properties.email"]),
        ('"null".x', ["null.x"]),
        ("null", []),
        ('`{"a": 1}`', []),
        ("length(@)", []),
        ("'text'", []),
    ],
)
def test_references_are_the_root_paths_read(text, refs):
    expr = compile_expr(text)
    assert expr.references == refs
    expr.references.append("mutated")
    assert expr.references == refs  # a copy each time


@pytest.mark.parametrize(
    "value,expected",
    [(False, False), (None, False), ("", False), ([], False), ({}, False), (True, True),
     (0, True), (0.0, True), ("0", True), ("false", True), ([None], True), ({"a": None}, True),
     (-1, True)],
)  # fmt: skip
def test_truthy_is_jmespaths_truth(value, expected):
    assert truthy(value) is expected
    # the same truth jmespath itself applies: `!` of the value
    assert compile_expr("!v").search({"v": value}) is (not expected)


@pytest.mark.parametrize(
    "text,where,what",
    [
        ("a.", 2, "Expecting"),
        ("a ==", 4, "ends too soon"),
        ("a = b", 2, "Unknown token '='"),
        ('a["x', 2, "Unclosed"),
        ("a[?x == 'a'", None, "ends too soon"),
        ("foo(a)", None, "unknown function foo()"),
        ("length(a, b)", None, "length() takes 1 argument"),
        ("max_by(a)", None, "max_by() takes 2 argument"),
        ("", None, "empty"),
        ("   ", None, "empty"),
    ],
)
def test_syntax_errors_say_where_and_what(text, where, what):
    with pytest.raises(ExpressionError) as refused:
        compile_expr(text)
    assert what in str(refused.value)
    if where is not None:
        assert refused.value.position == where and f"position {where}" in str(refused.value)
    assert isinstance(refused.value, ValueError)


def test_ten_thousand_nested_parentheses_are_refused_cleanly():
    for text in ("(" * 10_000 + "a" + ")" * 10_000, "(" * 10_000, "[" * 10_000):
        with pytest.raises(ExpressionError, match="characters long"):
            compile_expr(text)


def test_nesting_within_the_length_limit_is_refused_before_the_parser_recurses():
    deep = "(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(ExpressionError, match="nested too deeply") as refused:
        compile_expr(deep)
    assert refused.value.position == MAX_DEPTH
    assert compile_expr("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH).search({"a": 1}) == 1
    for text in ("!" * 900 + "a", "a | " * 240 + "a", "a == " * 190 + "a",
                 "a[*]." * 190 + "a", "{a: " * 40 + "b" + "}" * 40, "[?" * 300):  # fmt: skip
        assert len(text) <= MAX_LENGTH
        with pytest.raises(ExpressionError):
            compile_expr(text)


def test_overlong_text_is_refused():
    assert compile_expr("a" * MAX_LENGTH).search({"a" * MAX_LENGTH: 1}) == 1
    with pytest.raises(ExpressionError, match=f"at most {MAX_LENGTH}"):
        compile_expr("a" * (MAX_LENGTH + 1))


@pytest.mark.parametrize(
    "text",
    ["\ud800", "a == '\udfff'", '"\\ud800"', "`\"\\ud83d\"`", "{\"\\udc00\": a}",
     "a == `{\"k\": [\"\\ud800\"]}`"],
)  # fmt: skip
def test_lone_surrogates_are_refused_as_not_text(text):
    with pytest.raises(ExpressionError, match="lone surrogate"):
        compile_expr(text)


def test_huge_numbers_compile_and_compare():
    assert compile_expr("a > `1e999`").search({"a": 10**400}) is False  # 1e999 is infinity
    big = "1" + "0" * 300
    assert compile_expr(f"a == `{big}`").search({"a": int(big)}) is True
    assert compile_expr("a < `-1e999`").search({"a": -(10**400)}) is False
    assert compile_expr(f"length(to_string(a)) > `{big}`").search({"a": 1}) is False


def test_a_runtime_type_error_is_an_evaluation_error():
    expr = compile_expr("length(count)")
    assert expr.search({"count": [1, 2]}) == 2
    with pytest.raises(EvaluationError, match="length"):
        expr.search({"count": 5})
    with pytest.raises(ExpressionError):  # an EvaluationError is an ExpressionError
        compile_expr("sort_by(items, &x)").search(CONTACT)


def test_data_too_deep_to_walk_is_an_evaluation_error():
    deep: list = []
    cursor = deep
    for _ in range(100_000):
        cursor.append([])
        cursor = cursor[0]
    with pytest.raises(EvaluationError, match="nested too deeply"):
        compile_expr("to_string(@)").search(deep)


def test_compiling_is_cached_and_not_text_is_refused():
    assert compile_expr("a.b") is compile_expr("a.b")
    with pytest.raises(ExpressionError, match="not int"):
        compile_expr(5)  # type: ignore[arg-type]
    with pytest.raises(ExpressionError, match="not list"):
        compile_expr(["a"])  # type: ignore[arg-type]
