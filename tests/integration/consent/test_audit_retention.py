"""The audit log keeps what `audit_retention_s` says and no more: entries older than that are
trimmed as new ones arrive (MINID), on both append paths (the store's, and the job write's
Lua script)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from app.kernel.settings import get_settings
from app.store import audit
from app.store.jobstore import audit_argv


@pytest.fixture
def short_retention(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TOOLQUEUE_AUDIT_RETENTION_S", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("TOOLQUEUE_AUDIT_RETENTION_S")
    get_settings.cache_clear()


def test_old_entries_are_trimmed_as_new_ones_arrive(r: Any, short_retention: None) -> None:
    tenant = f"ten_retention_{time.time_ns()}"
    audit.append(tenant, "policy_changed", key_id="key_a")
    assert [e["kind"] for e in audit.page(tenant)["entries"]] == ["policy_changed"]
    time.sleep(1.2)
    audit.append(tenant, "key_created", key_id="key_a")
    assert [e["kind"] for e in audit.page(tenant)["entries"]] == ["key_created"]
    # the job write's path names the same cut-off
    _, keep_from, ttl = audit_argv({"kind": "write"}, time.time())
    assert ttl == 1 + 60
    assert abs(keep_from - (time.time() - 1) * 1000) < 500


def test_a_page_is_bounded_and_resumes_after_its_last_entry(r: Any) -> None:
    tenant = f"ten_pages_{time.time_ns()}"
    for n in range(7):
        audit.append(tenant, "key_created", key_id=f"key_{n}")
    first = audit.page(tenant, limit=5)
    rest = audit.page(tenant, first["next"], limit=5)
    assert [e["key_id"] for e in first["entries"] + rest["entries"]] == [
        f"key_{n}" for n in range(7)
    ]
    assert "next" not in rest
