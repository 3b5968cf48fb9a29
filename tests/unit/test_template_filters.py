"""Template filters: `{{ path | filter | … }}` (and the older `{{path:int}}`), what each filter
makes of a value, `check` naming unknown filters, `references`, and failures as TemplateError."""

from __future__ import annotations

import pytest

from connectors.templates import FILTERS, TemplateError, check, domain, references, render

CTX = {
    "record": {
        "properties": {"email": "  Jane.Doe@ACME.example ", "website": "https://www.Globex.example/about"},
        "n": "12",
        "tags": ["a", "b"],
        "count": 3,
        "empty": "",
        "items": [{"name": " First "}, {"name": "Second"}],
        "word": "abc",
        "huge": 10**5000,
        "nested": [[[]]],
    }
}  # fmt: skip


def test_a_filter_applies_to_the_value_at_the_path():
    assert render("{{ record.properties.email | domain }}", CTX) == "acme.example"
    assert render("{{record.properties.website|domain}}", CTX) == "globex.example"
    assert render("{{ record.items[0].name | trim }}", CTX) == "First"


def test_filters_chain_left_to_right():
    assert render("{{ record.properties.email | trim | lower }}", CTX) == "jane.doe@acme.example"
    assert render("{{ record.properties.email | trim | upper }}", CTX) == "JANE.DOE@ACME.EXAMPLE"
    assert render("{{ record.n | int | str }}", CTX) == "12"
    assert render("{{ record.properties.email | domain | upper }}", CTX) == "ACME.EXAMPLE"


def test_the_older_conversion_syntax_still_works_and_can_be_followed_by_filters():
    assert render("{{record.n:int}}", CTX) == 12
    assert render("{{ record.tags:csv }}", CTX) == "a,b"
    assert render("{{record.empty:bool}}", CTX) is False
    assert render("{{record.n:int | str}}", CTX) == "12"
    assert render("{{record.tags:csv | upper}}", CTX) == "A,B"


def test_the_conversions_are_filters_too():
    assert render("{{ record.n | int }}", CTX) == 12
    assert render("{{ record.count | str }}", CTX) == "3"
    assert render("{{ record.tags | csv }}", CTX) == "a,b"
    assert render("{{ record.count | bool }}", CTX) is True
    assert render("{{ record.missing | bool }}", CTX) is False
    assert render("{{ record.missing | str }}", CTX) == ""
    assert render("{{ record.missing | int }}", CTX) is None


def test_a_whole_string_placeholder_keeps_the_type_and_a_partial_one_writes_text():
    assert render("{{ record.tags | csv }}", CTX) == "a,b"
    assert render("{{ record.n | int }}", CTX) == 12
    assert render("  {{ record.count | int }}  ", CTX) == 3
    assert render("n={{ record.n | int }}&d={{ record.properties.email | domain }}", CTX) == (
        "n=12&d=acme.example"
    )
    assert render("x{{ record.missing | domain }}y", CTX) == "xy"  # None writes nothing
    assert render({"q": ["{{ record.n | int }}", "{{record.word | upper}}"]}, CTX) == {
        "q": [12, "ABC"]
    }


def test_text_filters_pass_other_values_through():
    for name in ("lower", "upper", "trim"):
        assert render(f"{{{{ record.count | {name} }}}}", CTX) == 3
        assert render(f"{{{{ record.tags | {name} }}}}", CTX) == ["a", "b"]
        assert render(f"{{{{ record.missing | {name} }}}}", CTX) is None


@pytest.mark.parametrize(
    "value,expected",
    [
        ("jane@Acme.Example", "acme.example"),
        ("  jane@acme.example  ", "acme.example"),
        ("a@b@c.example", "c.example"),  # the part after the last @
        ("Jane Doe <jane@acme.example>", "acme.example"),
        ("https://www.Acme.example/x?y#z", "acme.example"),
        ("http://user:pw@shop.acme.example:8443/", "shop.acme.example"),
        ("acme.example", "acme.example"),
        ("WWW.Acme.Example", "acme.example"),
        ("www.acme.example:8080/path", "acme.example"),
        ("acme.example.", "acme.example"),
        ("josé@Société.fr", "société.fr"),
        ("jane@", None),
        ("jane", None),
        ("localhost", None),
        ("not a domain", None),
        ("http://[::1]/", None),
        ("http://[unclosed/", None),
        ("", None),
        (None, None),
        (42, None),
        (["jane@acme.example"], None),
        ("a_b.example", None),
        ("-acme.example", None),
        ("a" * 64 + ".example", None),
    ],
)
def test_domain(value, expected):
    assert domain(value) == expected
    assert render("{{ record.v | domain }}", {"record": {"v": value}}) == expected


def test_an_unknown_filter_is_a_template_error_naming_it():
    with pytest.raises(TemplateError, match="unknown filter 'slugify'"):
        render("{{ record.word | slugify }}", CTX)


@pytest.mark.parametrize(
    "template",
    [
        "{{ record.word | int }}",  # not a number
        "{{ record.tags | int }}",  # a list
        "{{ record.huge | str }}",  # over Python's int-to-text digit limit
        "x={{ record.word | int }}",
    ],
)
def test_a_failing_filter_is_a_template_error_and_nothing_else(template):
    with pytest.raises(TemplateError) as raised:
        render(template, CTX)
    assert type(raised.value) is TemplateError and "filter" in str(raised.value)


def test_every_filter_survives_any_plain_value():
    """Whatever JSON data a record holds, a filter gives a value or a TemplateError."""
    values = [None, True, False, 0, -1, 2.5, float("nan"), float("inf"), "", "x", "\ud800",
              "jane@\ud800.example", [], [1, None], {}, {"a": 1}, 10**5000]  # fmt: skip
    outcomes = set()
    for name in FILTERS:
        for value in values:
            try:
                render(f"{{{{ record.v | {name} }}}}", {"record": {"v": value}})
                outcomes.add("value")
            except TemplateError:
                outcomes.add("TemplateError")
            except Exception as exc:  # noqa: BLE001 - exactly what must not happen
                outcomes.add(f"{name}({value!r:.20}) raised {type(exc).__name__}")
    assert outcomes == {"value", "TemplateError"}


def test_check_reports_unknown_filters_and_keeps_its_other_checks():
    assert check("{{ record.a | domain | lower }}", {"record"}) == []
    assert check("{{ record.a:int | trim }}", {"record"}) == []
    problems = check({"x": ["{{ record.a | nope }}", "{{ record.b | lower | shout }}"]}, {"record"})
    assert len(problems) == 2
    assert "unknown filter 'nope'" in problems[0] and "unknown filter 'shout'" in problems[1]
    assert "must start with" in check("{{ env.HOME | lower }}", {"record"})[0]
    assert "malformed" in check("{{ record.a | }}", {"record"})[0]
    assert "malformed" in check("{{ record.a | lower() }}", {"record"})[0]
    assert check("{{ record.__class__ | lower }}", {"record"})


def test_references_lists_every_path_once_in_order():
    template = {
        "email": "{{ record.properties.email | domain }}",
        "q": ["{{args.limit:int}}", "n={{ record.items[0].name }}&e={{record.properties.email}}"],
        "plain": "no placeholders",
        "n": 7,
    }
    assert references(template) == ["record.properties.email", "args.limit", "record.items.0.name"]
    assert references("{{ a.b | lower }} {{a.b}}") == ["a.b"]
    assert references(["text", 1, None, {}]) == []


def test_filters_cannot_reach_python():
    for template in ("{{ record.word | __class__ }}", "{{ record.word | upper() }}",
                     "{{ record.word | getattr }}"):  # fmt: skip
        try:
            out = render(template, CTX)
        except TemplateError:
            continue
        assert out == template  # not a placeholder at all: left as text
