"""A job runs as a chain of short steps; each step is one Celery task message.

A step takes the job's lease, fetches at most `pages_per_step` pages from the stored
cursor, and after each page appends the projected records to the spool and saves the
cursor in one fenced Redis script. Then it advances the job's step number and enqueues
the next step. A worker killed at any instant loses at most the page in flight; the
redelivered message re-fetches from the cursor, so no record is spooled twice.

Waits are never slept: every hand-over makes the next step pending work with a deadline
(`app.dispatch`): short waits are countdowns (always below the broker's visibility timeout),
longer ones are parked until beat's sweep sends them. The same sweep sends a step again
whose message was lost, or whose worker died (its lease, renewed while it runs, lapsed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app import dispatch
from app.dispatch import lanes
from app.dispatch.lanes import Lane
from app.kernel import keys
from app.kernel.errors import InvalidInput
from app.kernel.leases import Lease
from app.kernel.metrics import Tally
from app.kernel.registry import registry
from app.kernel.settings import get_settings
from app.kernel.ssrf import check_public_url, connect_check
from app.kernel.states import TERMINAL, JobState
from app.store import accounts, spool
from app.store.budget import Budget
from app.store.jobrecord import JobRecord
from app.store.jobstore import WriteResult, load, write
from app.work import approval, failures
from app.work.enrichloop import EnrichLoop
from app.work.pages import Outcome, PageLoop
from app.work.tokensource import TokenSource
from app.work.writeloop import WriteLoop
from connectors.errors import VendorError
from connectors.http import VendorHttp, guard_addresses

log = logging.getLogger("toolqueue.steps")


_vendor_check = connect_check("vendor_host")


def _vendor_addresses(host: str, port: int) -> list[str]:
    """The SSRF rules at connect time for every vendor host (an account's base URL checked at
    registration may resolve elsewhere since; a download link's storage host): a refusal
    fails the job like a vendor error, before any request."""
    try:
        return _vendor_check(host, port)
    except InvalidInput as exc:
        raise VendorError("address_refused", exc.message) from None


guard_addresses(_vendor_addresses)

REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)
# the waits a step ends by starting
RESUMING = frozenset({JobState.WAITING_RATE_LIMIT, JobState.WAITING_VENDOR})


def run(job_id: str, seq: int) -> None:
    """Run step `seq` if it is still the job's pending step and no other worker runs it (a
    copy sent again by the sweep, or redelivered by the broker, then does nothing)."""
    job = load(job_id)
    if job is None or job["status"] in TERMINAL:
        dispatch.settle(keys.step_work(job_id), seq)  # nothing left to run (it expired)
        return
    if job["seq"] != seq:
        return  # a stale copy: the job has moved on
    lease = Lease(keys.step_work(job_id), get_settings().step_lease_s)
    if not lease.acquire():
        return  # another worker runs it; should it die, its lease lapses and the sweep resends
    with lease:
        # Re-read under the lease: the snapshot above may predate the previous step's last
        # commit and hand-over (it released the lease after them).
        job = load(job_id)
        if job is None or job["status"] in TERMINAL or job["seq"] != seq:
            return
        Step(job_id, job, lease).run()


class Step:
    """One step of one job, run by the lease holder."""

    def __init__(self, job_id: str, job: JobRecord, lease: Lease) -> None:
        self.id = job_id
        self.job = job
        self._lease = lease
        self.lease = lease.token  # every write is fenced on it
        self.seq = job["seq"]
        self.settings = get_settings()
        self.tally = Tally()  # /metrics counts of this step, flushed once when it ends
        self.account: dict[str, str] = {}
        self.vendor_name = "unknown"  # the refusal counter's label (never the account id)
        self.budget: Budget | None = None
        self.token: TokenSource | None = None

    def limits(self) -> tuple[int, float]:
        """Pages and seconds this step may take: an interactive step hands over once the job
        shows itself long (then it moves to the bulk lane), a bulk step after the usual."""
        s = self.settings
        if self.job.get("lane") == Lane.BULK:
            return s.pages_per_step, min(s.step_budget_s, s.bulk_step_budget_s)
        return min(s.pages_per_step, s.bulk_after_pages), min(s.step_budget_s, s.bulk_after_s)

    @property
    def token_version(self) -> str | None:
        """The token record's version this step used (None before it read one)."""
        return self.token.version if self.token else None

    def write(self, fields: Mapping[str, object], **kw: Any) -> int:
        written = write(self.id, dict(fields), lease=self.lease, seq=self.seq, **kw)
        if written == WriteResult.WRITTEN and kw.get("status"):
            self.tally.add("job_transitions", {"state": kw["status"]})
        return written

    def run(self) -> None:
        try:
            if self.job["status"] == JobState.AWAITING_APPROVAL:
                approval.tend(self)  # tell, wait or expire: no vendor call
            elif self._start():
                self._fetch()
        finally:
            self.tally.flush()  # one round trip per step, whatever the step's outcome

    def _start(self) -> bool:
        """The job is running from here on; False if this step lost it meanwhile."""
        job = self.job
        if job["status"] == JobState.RUNNING:
            return True
        started = job["started_at"] or time.time()
        if not self.write(
            {"retry_at": None} if job["started_at"] else {"started_at": started, "retry_at": None},
            status=JobState.RUNNING,
            reason=f"step {self.seq} started",
            quiet=job["status"] in RESUMING,  # the wait's own entry says until when
        ):
            return False
        job["started_at"] = started
        return True

    def _fetch(self) -> None:
        try:
            outcome = self._pages()
        except SoftTimeLimitExceeded:
            outcome = Outcome.CONTINUE  # every page so far is committed; go on in a new step
        except REDIS_DOWN:
            raise  # not the job's fault: run_step requeues the step
        except Exception as exc:
            failures.handle(self, exc)
            return
        finally:
            if self.budget:
                self.budget.flush()  # the last response's report, for the account's other jobs
        if outcome is Outcome.CONTINUE:
            self.advance(0.0, fields={"attempts": 0, "limited": 0})

    def _pages(self) -> Outcome:
        job = self.job
        tool = registry().tools[job["tool"]]
        account = self.account = accounts.load(job["account_id"])
        self.vendor_name = account["vendor"]
        vendor = registry().vendors[account["vendor"]]
        self.budget = Budget(job["account_id"], accounts.rate_policy(account, vendor))
        self.token = TokenSource(job["account_id"], lambda reason: self.write({}, reason=reason))
        http = VendorHttp(
            vendor,
            account["base_url"],
            self.token,
            timeout=self.settings.http_timeout_s,
            gate=self.budget,
            url_guard=partial(check_public_url, field="download_url"),
            time_zone=account.get("time_zone"),
        )
        if job.get("pkind") == "enrich":
            return EnrichLoop(self, tool, http).run()
        if tool.write is not None:
            return WriteLoop(self, tool, http, job["args"]).run()
        return PageLoop(self, tool, http, tool.args.model_validate(job["args"])).run()

    def finish_truncated(self, cursor: dict[str, Any], reason: str = "") -> None:
        job = self.job
        continuation = spool.save_continuation(
            {
                "tenant_id": job["tenant_id"],
                "account_id": job["account_id"],
                "tool": job["tool"],
                "args": job["args"],
                "fields": job.get("fields"),
                "max_bytes": job["max_bytes"],
                "delivery": job["delivery"],
                "max_pages": job.get("max_pages") or None,
                "cursor": cursor,
            }
        )
        self.finish(JobState.SUCCEEDED, truncated=True, continuation=continuation, reason=reason)

    def finish(
        self,
        status: str,
        error: dict[str, Any] | None = None,
        *,
        truncated: bool = False,
        continuation: str | None = None,
        reason: str = "",
        audit: dict[str, Any] | None = None,
    ) -> None:
        """End the job; `audit` (an entry's kind and details) is logged for the tenant with it."""
        fields: dict[str, Any] = {
            "finished_at": time.time(),
            "truncated": truncated,
            "retry_at": None,
        }
        if continuation:
            fields["continuation"] = continuation
        if error:
            fields["error"] = error
            reason = error["message"]
        elif truncated:
            reason = f"{reason or 'cap reached'}; continuation issued"
        else:
            reason = reason or "all pages fetched"
        written = self.write(fields, status=status, reason=reason, audit=self._audit(audit))
        if written == WriteResult.WRITTEN and self.job.get("callback_url"):
            dispatch.send(keys.webhook_work(self.id), 0)  # pending since the write
        if written == WriteResult.WRITTEN:
            self.tell_pipeline()

    def _audit(self, audit: dict[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
        """The tenant's audit entry for `audit` (its kind and details) about this job."""
        if audit is None:
            return None
        job = self.job
        about = {
            "key_id": job.get("key_id") or "tenant",
            "job_id": self.id,
            "tool": job["tool"],
            "account_id": job["account_id"],
            "args_digest": job.get("args_digest"),
        }
        return job["tenant_id"], {**about, **audit}

    def advance(
        self,
        countdown: float,
        *,
        fields: dict[str, Any] | None = None,
        status: str | None = None,
        reason: str = "",
        audit: dict[str, Any] | None = None,
    ) -> None:
        """Hand the job to its next step, now or later; park it if later is too late."""
        fields = dict(fields or {})
        fields["seq"] = self.seq + 1
        job = self.job
        lane = lanes.next_step(job, self.settings)
        if lane != job.get("lane"):
            fields["lane"] = lane  # long after all: the next steps share the bulk lane
        if countdown > 0:
            fields["retry_at"] = time.time() + countdown
        work = dispatch.plan(countdown)
        nxt = (self.seq + 1, work)
        if not self.write(
            fields, status=status, reason=reason, next_step=nxt, audit=self._audit(audit)
        ):
            return
        # Let go first, so the next step never finds this step's lease still held.
        self._lease.release()
        dispatch.send(keys.step_work(self.id), self.seq + 1, work, lane=lane)
        self.tell_pipeline()

    def tell_pipeline(self) -> None:
        """A pipeline's stage job wakes its coordinator after each step: new blocks, or the end."""
        pid = self.job.get("pipeline")
        if pid:
            dispatch.poke(keys.pipeline_work(pid))
