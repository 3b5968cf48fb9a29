"""The tenant's audit log: every write operation's outcome, approval, rejection and policy
change, append-only.

A Redis stream per tenant: entries get time-ordered ids, cannot be edited in place (no API
here changes or deletes one), and are trimmed by age (`audit_retention_s`, default 90 days)
with `MINID` on each append, so the log keeps what the retention says and no more.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from app.kernel import keys
from app.kernel.errors import InvalidInput
from app.kernel.redis import get_redis
from app.kernel.settings import get_settings
from app.kernel.timefmt import now_iso

PAGE_MAX = 500


def append(tenant_id: str, kind: str, *, key_id: str, **fields: Any) -> str:
    """One entry: what happened (`kind`), who did it (`key_id`) and its details."""
    now = time.time()
    keep_from = int((now - get_settings().audit_retention_s) * 1000)
    entry = {"kind": kind, "key_id": key_id, "at": now_iso(now), **fields}
    r = get_redis()
    with r.pipeline(transaction=False) as p:
        p.xadd(
            keys.audit(tenant_id), {"e": orjson.dumps(entry)}, minid=keep_from, approximate=False
        )
        p.expire(keys.audit(tenant_id), int(get_settings().audit_retention_s) + 60)
        entry_id = p.execute()[0]
    return str(entry_id)


def page(tenant_id: str, after: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Entries oldest first, after the entry id `after` (a page's `next`)."""
    limit = max(1, min(limit, PAGE_MAX))
    if after is not None and not _is_id(after):
        raise InvalidInput(
            "`after` must be an entry id from a page's `next`", code="invalid_cursor"
        )
    start = f"({after}" if after else "-"
    rows = get_redis().xrange(keys.audit(tenant_id), start, "+", count=limit + 1)
    entries = [{**orjson.loads(f["e"]), "id": i} for i, f in rows[:limit]]
    out: dict[str, Any] = {"entries": entries}
    if len(rows) > limit:
        out["next"] = entries[-1]["id"]
    return out


def _is_id(value: str) -> bool:
    ms, _, seq = value.partition("-")
    return ms.isdigit() and seq.isdigit() and len(value) < 40
