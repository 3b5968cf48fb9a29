"""Write policy: per tenant, overridable per account and per API key.

For write tools `writes`, for destructive ones `destructive`: `allow` (run), `approve` (a
person approves a preview first) or `deny`. `approve_above`: a write of more records than
this needs approval whatever the rest says. `self_approve`: the key that started a job may
approve it (by default another key must). Each level sets only what it overrides; the
effective policy is defaults ← tenant ← account ← key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.kernel import keys
from app.kernel.redis import get_redis

Rule = Literal["allow", "approve", "deny"]
Level = Literal["tenant", "account", "key"]
LEVELS: tuple[Level, ...] = ("tenant", "account", "key")


class Policy(BaseModel):
    """One level's policy: what it sets (None: what the level above says)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    writes: Rule | None = Field(None, description="Write tools: allow, approve or deny")
    destructive: Rule | None = Field(
        None, description="Tools that delete or overwrite: allow, approve or deny"
    )
    approve_above: int | None = Field(
        None, ge=0, le=10_000_000, description="Writes of more records than this need approval"
    )
    self_approve: bool | None = Field(
        None, description="May the key that started a job approve it (default: no)"
    )


DEFAULT = Policy(writes="allow", destructive="approve", approve_above=None, self_approve=False)


@dataclass(frozen=True)
class Decision:
    rule: Rule
    reason: str  # which line of the policy decided, as a person reads it


def load(level: Level, ident: str) -> Policy:
    raw = get_redis().get(keys.policy(level, ident))
    return Policy.model_validate_json(raw) if raw else Policy()


def save(level: Level, ident: str, policy: Policy) -> Policy:
    """Replace the level's policy (an empty one removes it)."""
    key = keys.policy(level, ident)
    if policy.model_dump(exclude_none=True):
        get_redis().set(key, policy.model_dump_json(exclude_none=True))
    else:
        get_redis().delete(key)
    return policy


def effective(tenant_id: str, account_id: str, key_id: str) -> Policy:
    merged = DEFAULT.model_dump()
    for level, ident in zip(LEVELS, (tenant_id, account_id, key_id), strict=True):
        merged.update(load(level, ident).model_dump(exclude_none=True))
    return Policy(**merged)


def decide(policy: Policy, *, destructive: bool, records: int) -> Decision:
    """allow, approve or deny a write of `records` records by a tool that is (or is not)
    destructive; the strictest applicable line wins."""
    line = "destructive" if destructive else "writes"
    rule: Rule = (policy.destructive if destructive else policy.writes) or "allow"
    if rule == "deny":
        return Decision("deny", f"policy `{line}: deny`")
    if rule == "approve":
        return Decision("approve", f"policy `{line}: approve`")
    limit = policy.approve_above
    if limit is not None and records > limit:
        return Decision("approve", f"{records} records is above policy `approve_above: {limit}`")
    return Decision("allow", f"policy `{line}: allow`")
