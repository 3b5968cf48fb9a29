"""Spec templates reach plain data only: no attributes, calls or Python internals."""

from __future__ import annotations

import pytest

from connectors.templates import TemplateError, check, render

CTX = {"args": {"team": "eng", "limit": 50, "tags": ["a", "b"], "flag": ""}}


def test_whole_placeholder_keeps_type_and_partial_interpolates():
    assert render("{{args.limit}}", CTX) == 50
    assert render("team={{args.team}}&n={{args.limit}}", CTX) == "team=eng&n=50"
    assert render("{{args.tags:csv}}", CTX) == "a,b"
    assert render("{{args.flag:bool}}", CTX) is False
    assert render("{{args.missing}}", CTX) is None
    assert render({"q": ["{{args.team}}", 1]}, CTX) == {"q": ["eng", 1]}


@pytest.mark.parametrize("template", [
    "{{args.__class__}}", "{{args.team.__class__.__mro__}}", "{{__import__}}",
    "{{args.team.upper}}", "{{ args.team() }}", "{{args['team']}}",
])
def test_templates_cannot_reach_python(template):
    try:
        out = render(template, CTX)
    except TemplateError:
        return
    # Anything that rendered is plain data or nothing: never a Python object or callable.
    assert out is None or out == template or isinstance(out, str) and "class" not in out


def test_check_names_unknown_roots_and_bad_placeholders():
    assert check("{{args.x}}", {"args"}) == []
    assert "must start with" in check("{{env.HOME}}", {"args"})[0]
    assert "malformed" in check("{{args.x", {"args"})[0]
    assert check({"a": ["{{args.__dict__}}"]}, {"args"})
