"""`toolqueue approvals show`'s reading of preview records (parsing only: the records are the
shape connectors.writes.PreviewItem.record() gives)."""

from __future__ import annotations

from app.cli.consent import diff
from app.cli.watch import preview_counts
from connectors.writes import PreviewItem, diffed, would_reject


def lines(item: PreviewItem) -> list[str]:
    return list(diff(item.record()))


def test_an_update_shows_each_field_current_then_proposed_nested_fields_dotted() -> None:
    current = {"properties": {"firstname": "Ada", "lastname": "L"}, "archived": False}
    proposed = {"properties": {"firstname": "Grace", "lastname": "L"}}
    item = PreviewItem(3, "update", "42", {"properties": current["properties"]}, proposed)
    assert lines(item) == [
        "#3  update  42",
        '    properties.firstname: "Ada" → "Grace"',
        '    properties.lastname: "L" → "L"  (unchanged)',
    ]
    assert lines(diffed(0, "7", {"name": "a", "x": 1}, {"name": "b"})) == [
        "#0  update  7",
        '    name: "a" → "b"',
    ]


def test_creates_deletes_and_rejects_read_plainly() -> None:
    create = PreviewItem(0, "create", None, proposed={"email": "e@x.example", "tags": ["a"]})
    assert lines(create) == [
        "#0  create  (new)",
        '    email: (none) → "e@x.example"',
        '    tags: (none) → ["a"]',
    ]
    delete = PreviewItem(1, "delete", "9", current={"email": "old@x.example"})
    assert lines(delete) == ["#1  delete  9", '    email: "old@x.example" → (deleted)']
    assert lines(would_reject(2, "not_found", "no contact 5", "5")) == [
        "#2  reject  5",
        "    not_found: no contact 5",
    ]


def test_preview_counts_name_the_non_zero_actions() -> None:
    summary = {"ops": 2, "done_ops": 2, "records": 3, "create": 1, "update": 2, "delete": 0}
    assert preview_counts(summary) == "1 create, 2 update of 3 records"
    assert preview_counts({"ops": 1, "records": 1, "unchanged": 0}) == "1 records"
    assert preview_counts(None) == ""
