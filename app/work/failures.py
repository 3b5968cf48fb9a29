"""What a step does when its vendor call fails: one small handler per kind of failure, in one
table (`handle`), first match wins. Waits are never slept: every handler ends the step by
handing the job to a later one, parking it, or ending it."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from app.kernel.states import JobState
from app.work import reauth
from app.work.context import StepContext
from connectors.errors import AuthRejected, ConnectorError, RateLimited, Transient

log = logging.getLogger("toolqueue.steps")


def on_rate_limited(step: StepContext, exc: RateLimited) -> None:
    if exc.budget:
        step.tally.add("budget_deferrals")
    else:
        step.tally.add("vendor_refusals", {"vendor": step.vendor_name})
    if exc.budget and exc.retry_after is not None:
        pace(step, exc.retry_after)
    else:
        defer(step, exc)


def on_transient(step: StepContext, exc: Transient) -> None:
    retry_transient(step, str(exc), exc.status)


def on_auth_rejected(step: StepContext, exc: AuthRejected) -> None:
    """Only new credentials help: park at the checkpoint (and mark the account, also when the
    refusal was of a freshly refreshed token) instead of failing."""
    reauth.park(
        step.id, step.job, lease=step.lease, message=exc.message, token_version=step.token_version
    )


def on_vendor_error(step: StepContext, exc: ConnectorError) -> None:
    step.finish(JobState.FAILED, {"code": exc.code, "message": exc.message})


def on_crash(step: StepContext, exc: Exception) -> None:
    """A bug must end the job visibly, not loop forever."""
    log.error("job %s step %s crashed", step.id, step.seq, exc_info=exc)
    step.finish(JobState.FAILED, {"code": "internal_error", "message": type(exc).__name__})


HANDLERS: tuple[tuple[type[Exception], Callable[[StepContext, Any], None]], ...] = (
    (RateLimited, on_rate_limited),
    (Transient, on_transient),
    (AuthRejected, on_auth_rejected),
    (ConnectorError, on_vendor_error),
)


def handle(step: StepContext, exc: Exception) -> None:
    for kind, handler in HANDLERS:
        if isinstance(exc, kind):
            handler(step, exc)
            return
    on_crash(step, exc)


def pace(step: StepContext, retry_after: float) -> None:
    """The account's own budget is spent: pacing, not a refusal. Wake when the slot frees (a
    little jitter spreads the jobs sharing the account); not counted against the job's
    waiting budget."""
    delay = retry_after + random.uniform(0, min(0.02, 0.1 * retry_after))
    step.advance(
        delay,
        status=JobState.WAITING_RATE_LIMIT,
        reason=f"account budget spent: next request in {delay:.2f}s",
    )


def defer(step: StepContext, exc: RateLimited) -> None:
    """The vendor refused: wait as it says (or back off), within `rate_limit_max_wait_s`."""
    job, limit = step.job, step.settings.rate_limit_max_wait_s
    if exc.retry_after is not None:
        delay = exc.retry_after + random.uniform(0, min(1.0, 0.1 * exc.retry_after + 0.05))
    else:  # the vendor gave no timing: full-jitter exponential backoff
        delay = backoff(step, job["limited"])
    waited = (job.get("waited_s") or 0) + delay
    if waited > limit:
        message = f"waited {waited:.0f}s on rate limits, over the {limit:.0f}s budget"
        step.finish(JobState.FAILED, {"code": "rate_limit_budget_exhausted", "message": message})
        return
    policy = f" ({exc.policy})" if exc.policy else ""
    step.advance(
        delay,
        fields={"waited_s": waited, "limited": job["limited"] + 1},
        status=JobState.WAITING_RATE_LIMIT,
        reason=f"vendor rate limit{policy}: retry in {delay:.2f}s",
    )


def retry_transient(step: StepContext, message: str, status: int | None) -> None:
    """Consecutive failures are capped by attempts, a job's whole life by total wait."""
    s = step.settings
    attempts = step.job["attempts"] + 1
    delay = backoff(step, attempts)
    waited = (step.job.get("retry_waited_s") or 0.0) + delay
    if attempts > s.retry_max_attempts or waited > s.retry_max_wait_s:
        spent = (
            f"gave up after {attempts - 1} retries"
            if attempts > s.retry_max_attempts
            else f"retries would wait over {s.retry_max_wait_s:g}s in all"
        )
        last = f" (last upstream status {status})" if status else ""
        message = f"{message}; {spent}{last}"
        step.finish(JobState.FAILED, {"code": "retry_budget_exhausted", "message": message})
        return
    step.advance(
        delay,
        fields={"attempts": attempts, "retry_waited_s": waited},
        reason=f"{message}; retry {attempts} in {delay:.2f}s",
    )


def backoff(step: StepContext, attempt: int) -> float:
    """Capped exponential backoff with full jitter."""
    s = step.settings
    return random.uniform(0, min(s.retry_backoff_cap_s, s.retry_backoff_base_s * 2**attempt))
