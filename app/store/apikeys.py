"""API keys: each names its tenant, and may be scoped (what it may do, to which tools and
accounts). Stored by digest only; the key itself is shown once, when it is made.

Scopes: `read` (read tools, jobs), `write` (write tools), `approve` (approve or reject
jobs awaiting approval), `admin` (keys, policy, the audit log). A tenant's first key holds
them all. `tools` are shell-style patterns (`hubspot.*`); None means every tool, and so for
`accounts`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

import orjson

from app.kernel import keys
from app.kernel.crypto import digest
from app.kernel.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from app.kernel.redis import get_redis

SCOPES = ("read", "write", "approve", "admin")


@dataclass(frozen=True)
class Principal:
    """Who calls: a key of a tenant, and what it may do."""

    tenant_id: str
    key_id: str
    scopes: frozenset[str] = frozenset(SCOPES)
    tools: tuple[str, ...] | None = None
    accounts: tuple[str, ...] | None = None

    def may_use(self, tool: str, *, writes: bool) -> bool:
        """May this key see and call `tool` (a write tool needs `write`, a read `read`)?"""
        if ("write" if writes else "read") not in self.scopes:
            return False
        return self.tools is None or any(fnmatchcase(tool, p) for p in self.tools)

    def may_act_on(self, account_id: str) -> bool:
        return self.accounts is None or account_id in self.accounts

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(
                f"this API key lacks the `{scope}` scope "
                f"(it has: {', '.join(sorted(self.scopes)) or 'none'})",
                code="scope_missing",
                scope=scope,
            )

    def view(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "scopes": sorted(self.scopes),
            "tools": list(self.tools) if self.tools is not None else None,
            "accounts": list(self.accounts) if self.accounts is not None else None,
        }


def full(tenant_id: str) -> Principal:
    """The tenant itself, for trusted in-process callers (the demo, the CLI on the host)."""
    return Principal(tenant_id, "tenant")


def create(
    tenant_id: str,
    *,
    name: str = "",
    scopes: Iterable[str] = SCOPES,
    tools: Iterable[str] | None = None,
    accounts: Iterable[str] | None = None,
) -> dict[str, object]:
    """A new key of the tenant; the only time the key itself is returned."""
    wanted = sorted(set(scopes))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown or not wanted:
        raise InvalidInput(
            f"scopes must be some of {', '.join(SCOPES)} (got {unknown or 'none'})",
            code="invalid_scopes",
        )
    api_key = "tq_" + secrets.token_urlsafe(32)
    key_id = "key_" + secrets.token_hex(8)
    record: dict[str, str] = {
        "tenant_id": tenant_id,
        "key_id": key_id,
        "name": name[:100],
        "scopes": ",".join(wanted),
        "tools": _json(tools),
        "accounts": _json(accounts),
        "created_at": str(time.time()),
    }
    d = digest(api_key)
    r = get_redis()
    with r.pipeline() as p:
        p.hset(keys.api_key(d), mapping=record)
        p.hset(keys.tenant_keys(tenant_id), key_id, d)
        p.execute()
    return {"api_key": api_key, **_principal(record).view(), "name": record["name"]}


def authenticate(api_key: str) -> Principal:
    raw = get_redis().hgetall(keys.api_key(digest(api_key))) if api_key else {}
    if not raw:
        raise Unauthorized("missing or unknown API key: send `Authorization: Bearer <api_key>`")
    return _principal(raw)


def list_keys(tenant_id: str) -> list[dict[str, object]]:
    r = get_redis()
    out = []
    for _, d in sorted(r.hgetall(keys.tenant_keys(tenant_id)).items()):
        raw = r.hgetall(keys.api_key(d))
        if raw:
            out.append({**_principal(raw).view(), "name": raw.get("name", "")})
    return out


def revoke(tenant_id: str, key_id: str, by: Principal) -> None:
    if key_id == by.key_id:
        raise Forbidden("a key cannot revoke itself: use another admin key", code="self_revoke")
    r = get_redis()
    d = r.hget(keys.tenant_keys(tenant_id), key_id)
    if not d:
        raise NotFound(f"key {key_id!r} not found", code="key_not_found")
    with r.pipeline() as p:
        p.delete(keys.api_key(d))
        p.hdel(keys.tenant_keys(tenant_id), key_id)
        p.execute()


def exists(tenant_id: str, key_id: str) -> bool:
    return bool(get_redis().hexists(keys.tenant_keys(tenant_id), key_id))


def by_id(tenant_id: str, key_id: str) -> Principal | None:
    """The key `key_id` of the tenant as it stands now (None: revoked); "tenant" is the
    tenant itself (`full`). Work that outlives a request (a pipeline's stage jobs) acts
    with the key that started it, and stops when it is revoked."""
    if key_id == "tenant":
        return full(tenant_id)
    r = get_redis()
    d = r.hget(keys.tenant_keys(tenant_id), key_id)
    raw = r.hgetall(keys.api_key(d)) if d else {}
    return _principal(raw) if raw else None


def _json(values: Iterable[str] | None) -> str:
    if values is None:
        return ""
    items = [str(v) for v in values]
    if not items or any(not v or len(v) > 200 for v in items):
        raise InvalidInput(
            "tools and accounts lists need 1-200 character entries", code="invalid_key"
        )
    return orjson.dumps(items).decode()


def _principal(raw: dict[str, str]) -> Principal:
    def listed(field: str) -> tuple[str, ...] | None:
        return tuple(orjson.loads(raw[field])) if raw.get(field) else None

    return Principal(
        raw["tenant_id"],
        raw["key_id"],
        frozenset(s for s in raw.get("scopes", "").split(",") if s),
        listed("tools"),
        listed("accounts"),
    )
