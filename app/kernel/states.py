"""A job's states, in one place: the Python code and the Lua scripts both take "terminal" from
here (`lua_prelude`), so no copy of the list can drift."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    """`queued → running → succeeded | completed_with_errors | failed | cancelled`; the others
    are resting states."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING_RATE_LIMIT = "waiting_rate_limit"  # until a known instant (`retry_at`)
    WAITING_VENDOR = "waiting_vendor"  # an async vendor job runs; a webhook or a poll resumes
    NEEDS_REAUTH = "needs_reauth"  # parked until the account is re-authorized
    # a write that policy holds for a person: previewed, nothing sent; approve/reject/expiry
    AWAITING_APPROVAL = "awaiting_approval"
    SUCCEEDED = "succeeded"
    # a write job ran every operation and the vendor rejected some records (not all): never
    # to be read as success; the result lists the rejected ones with the vendor's reasons
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {JobState.SUCCEEDED, JobState.COMPLETED_WITH_ERRORS, JobState.FAILED, JobState.CANCELLED}
)
UNFINISHED = tuple(s for s in JobState if s not in TERMINAL)


def lua_prelude() -> str:
    """`tq_ended(status)` for Lua scripts: true for a terminal status (or no status at all).
    Scripts take it with `-- include: states` (app/kernel/lua), never a copy of the list."""
    ended = ", ".join(f"['{s.value}'] = true" for s in sorted(TERMINAL))
    return (
        "-- Prelude, generated from app/kernel/states.py (JobState): tq_ended(s), true for a\n"
        "-- terminal status, or none at all (nil or '').\n"
        f"local TQ_ENDED = {{{ended}}}\n"
        "local function tq_ended(s) return not s or s == '' or TQ_ENDED[s] == true end\n"
    )
