"""A job whose vendor works asynchronously (an export, a bulk query) waits without a worker.

When the vendor announces the end by webhook (the page names what to await, and the account
has a vendor webhook secret), the next look is only the fallback: the webhook resumes the job
at once (`app.work.signals`)."""

from __future__ import annotations

from app.kernel.states import JobState
from app.work import signals
from app.work.context import StepContext
from connectors.base import Page


def wait(step: StepContext, page: Page, wait_s: float) -> None:
    """Look again after the page's `wait_s` (or the webhook fallback), within the limit of
    `vendor_wait_max_s`: a vendor job stuck in a running state is not polled forever."""
    waited = step.job.get("vendor_waited_s") or 0.0
    limit = step.settings.vendor_wait_max_s
    if waited >= limit:
        message = (
            f"the vendor's job did not finish within {limit:.0f}s "
            f"(TOOLQUEUE_VENDOR_WAIT_MAX_S); last seen: {page.note or 'still working'}"
        )
        step.finish(JobState.FAILED, {"code": "vendor_timeout", "message": message})
        return
    why = f"vendor still working: next look in {wait_s:.1f}s"
    signalled = bool(page.await_ref and step.account.get("webhook_secret"))
    if signalled:
        wait_s = max(wait_s, _fallback_s(step))
        why = f"waiting for the vendor's webhook (polling fallback in {wait_s:.1f}s)"
    wait_s = min(wait_s, max(limit - waited, 0.0))  # the last look falls on the limit
    note = f"{page.note}; " if page.note else ""
    step.advance(
        wait_s,
        fields={"vendor_waited_s": waited + wait_s},
        status=JobState.WAITING_VENDOR,
        reason=note + why,
    )
    ref = page.await_ref
    if signalled and ref and signals.await_signal(step.job["account_id"], ref, step.id, wait_s):
        signals.resume(step.id, "the vendor's webhook came first")


def _fallback_s(step: StepContext) -> float:
    return float(step.account.get("webhook_fallback_s") or step.settings.vendor_webhook_fallback_s)
