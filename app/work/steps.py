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

import hashlib
import logging
import random
import time
from functools import partial
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app import dispatch
from app.kernel import keys
from app.kernel.errors import InvalidInput
from app.kernel.leases import Lease
from app.kernel.metrics import Tally
from app.kernel.redis import get_redis
from app.kernel.registry import registry
from app.kernel.settings import get_settings
from app.kernel.ssrf import check_public_url, connect_check
from app.kernel.states import TERMINAL
from app.store import accounts, spool, tokens
from app.store.budget import Budget
from app.store.jobstore import load, write
from app.work import reauth, signals
from connectors.errors import (
    AuthRejected,
    ConnectorError,
    PaginationLoop,
    RateLimited,
    Transient,
    VendorError,
)
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
RESUMING = frozenset({"waiting_rate_limit", "waiting_vendor"})  # waits a step ends by starting


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

    def __init__(self, job_id: str, job: dict[str, Any], lease: Lease) -> None:
        self.id = job_id
        self.job = job
        self._lease = lease
        self.lease = lease.token  # every write is fenced on it
        self.seq = job["seq"]
        self.settings = get_settings()
        self.tally = Tally()  # /metrics counts of this step, flushed once when it ends
        self.account: dict[str, str] = {}

    def write(self, fields: dict[str, Any], **kw: Any) -> int:
        written = write(self.id, fields, lease=self.lease, seq=self.seq, **kw)
        if written == 1 and kw.get("status"):
            self.tally.add("job_transitions", {"state": kw["status"]})
        return written

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.tally.flush()  # one round trip per step, whatever the step's outcome

    def _run(self) -> None:
        job = self.job
        tool = registry().tools[job["tool"]]
        if job["status"] != "running":
            extra = {} if job.get("started_at") else {"started_at": time.time()}
            if not self.write(
                {**extra, "retry_at": None},
                status="running",
                reason=f"step {self.seq} started",
                quiet=job["status"] in RESUMING,  # the wait's own entry says until when
            ):
                return
            job.update(extra)
        budget: Budget | None = None
        vendor_name = "unknown"  # the refusal counter's label (never the account id)
        try:
            account = self.account = accounts.load(job["account_id"])
            vendor_name = account["vendor"]
            vendor = registry().vendors[account["vendor"]]
            budget = Budget(job["account_id"], vendor.budget)
            http = VendorHttp(
                vendor,
                account["base_url"],
                self.token_source(job["account_id"]),
                timeout=self.settings.http_timeout_s,
                gate=budget,
                url_guard=partial(check_public_url, field="download_url"),
                time_zone=account.get("time_zone"),
            )
            args = tool.args.model_validate(job["args"])
            outcome = self.fetch_pages(tool, http, args)
        except RateLimited as exc:
            if exc.budget:
                self.tally.add("budget_deferrals")
            else:
                self.tally.add("vendor_refusals", {"vendor": vendor_name})
            self.defer_rate_limit(exc)
            return
        except Transient as exc:
            self.retry_transient(str(exc), exc.status)
            return
        except AuthRejected as exc:
            # only new credentials help: park at the checkpoint (and mark the account, also
            # when the refusal was of a freshly refreshed token) instead of failing
            reauth.park(
                self.id,
                job,
                lease=self.lease,
                message=exc.message,
                token_version=getattr(self, "token_version", None),
            )
            return
        except ConnectorError as exc:
            self.finish("failed", {"code": exc.code, "message": exc.message})
            return
        except SoftTimeLimitExceeded:
            outcome = "continue"  # every page so far is committed; carry on in a new step
        except REDIS_DOWN:
            raise  # not the job's fault: run_step requeues the step
        except Exception as exc:  # a bug must end the job visibly, not loop forever
            log.exception("job %s step %s crashed", self.id, self.seq)
            self.finish("failed", {"code": "internal_error", "message": type(exc).__name__})
            return
        finally:
            if budget:
                budget.flush()  # the last response's report, for the account's other jobs
        if outcome == "continue":
            self.advance(0.0, fields={"attempts": 0, "limited": 0})

    def token_source(self, account_id: str) -> Any:
        """The account's token, read once per step and again when it falls due for a refresh
        (a step may outlive a short-lived token); a forced refresh (after a 401) replaces it.

        A refresh that happened meanwhile (this step's, or a sibling's it waited for) goes into
        the job's state log, so the job's history explains its token churn. The token record's
        version is kept as `token_version`: a later refusal marks the account needs_reauth only
        if its credentials are still the ones this step used, not ones posted since.
        """
        cached: list[str] = []
        due = [0.0]  # when the cached token enters its refresh buffer (0: never)
        key = keys.token(account_id)
        r = get_redis()
        self.token_version: str | None = None

        def token(force: bool) -> str:
            if force or not cached or (due[0] and time.time() >= due[0]):
                count, self.token_version = r.hmget(key, "refresh_count", "version")
                cached[:] = [tokens.get_access_token(account_id, force=force)]
                after, self.token_version, expires_at, lifetime = r.hmget(
                    key, "refresh_count", "version", "expires_at", "lifetime_s"
                )
                # a step may outlive a short-lived token: look again from the earliest the
                # (jittered) buffer can start; get_access_token refreshes once it really has
                buffer = self.settings.token_refresh_buffer_s + tokens.JITTER_S
                if lifetime and float(lifetime) > 0:
                    buffer = min(buffer, float(lifetime) / 3)
                due[0] = float(expires_at) - buffer if expires_at and float(expires_at) else 0.0
                if int(after or 0) > int(count or 0):
                    why = "after the vendor refused it" if force else "ahead of its expiry"
                    left = float(expires_at or 0) - time.time()
                    self.write(
                        {},
                        reason=f"access token refreshed {why} (refresh #{after}; the new one "
                        f"expires in {left:.0f}s)",
                    )
            return cached[0]

        return token

    def fetch_pages(self, tool: Any, http: VendorHttp, args: Any) -> str:
        """Returns 'continue' when the step ran out of pages; otherwise the job ended."""
        job = self.job
        fields = job.get("fields")
        cursor = job["cursor"] or {"page": None, "skip": 0}
        packer = spool.Packer(
            budget=job["max_bytes"] - job["reserve"],
            block=job["block"],
            block_bytes=job["block_bytes"] or 2,
            block_records=job["block_records"],
            max_blocks=self.settings.block_limit if job["delivery"] == "blocks" else 1,
        )
        pages, records, nbytes = job["pages"], job["records"], job["bytes"]
        max_pages = job.get("max_pages") or 0
        deadline = time.monotonic() + self.settings.step_budget_s
        for _ in range(self.settings.pages_per_step):
            if time.monotonic() > deadline:
                break
            if max_pages and pages >= max_pages and cursor["page"] is not None:
                self.finish_truncated(cursor, reason=f"page budget of {max_pages} reached")
                return "ended"
            page = tool.fetch(http, args, cursor["page"])
            nxt = page.next_cursor
            if page.wait_s is not None:  # the vendor is still working on an async export
                self.wait_vendor(page, packer, pages, records, nbytes)
                return "ended"
            if nxt is not None and nxt == cursor["page"]:
                raise PaginationLoop(nxt)
            skip = cursor["skip"]
            texts = spool.encode_records(page.records[skip:], fields)
            placed, n = packer.place_many(texts)
            records += n
            nbytes += sum(map(len, texts[:n]))
            if n < len(texts):
                text = texts[n]
                if not packer.fits_alone(text):
                    rid = tool.record_id(page.records[skip + n])
                    self.commit(placed, packer, cursor, pages, records, nbytes)
                    self.finish(
                        "failed",
                        {
                            "code": "record_too_large",
                            "message": f"record {rid} alone is {len(text)} bytes, "
                            f"over the {job['max_bytes']}-byte cap; project fewer fields "
                            "with `fields`",
                            "record_id": rid,
                        },
                    )
                    return "ended"
                # every allowed block is full; the page was fetched, even if the cap fell in it
                cursor = {"page": cursor["page"], "skip": skip + n}
                self.commit(placed, packer, cursor, pages + 1, records, nbytes)
                self.finish_truncated(cursor)
                return "ended"
            pages += 1
            cursor = {"page": nxt, "skip": 0}
            written = self.commit(placed, packer, cursor, pages, records, nbytes, seen=nxt)
            if written == -1:
                raise PaginationLoop(nxt)
            if not written:
                return "ended"  # cancelled, or another worker took over
            if nxt is None:
                self.finish("succeeded")
                return "ended"
        return "continue"

    def commit(
        self,
        placed: dict[int, list[bytes]],
        packer: spool.Packer,
        cursor: dict[str, Any],
        pages: int,
        records: int,
        nbytes: int,
        seen: Any = None,
    ) -> int:
        """Spool a page's records and move the cursor; a cursor seen before is a loop (-1)."""
        fields = {
            "cursor": cursor,
            "pages": pages,
            "records": records,
            "bytes": nbytes,
            "block": packer.block,
            "block_bytes": packer.block_bytes,
            "block_records": packer.block_records,
            "blocks": packer.block + 1,
        }
        digest = "" if seen is None else hashlib.sha1(spool.dumps(seen).encode()).hexdigest()
        runs = {block: [spool.run(records)] for block, records in placed.items()}
        written = self.write(fields, spool=runs, seen=digest)
        if written == 1:
            self.tally.add("pages_fetched", n=pages - self.job["pages"])
            self.tally.add("records_fetched", n=records - self.job["records"])
            self.tally.add("spool_bytes", n=nbytes - self.job["bytes"])
            self.job.update(fields)
        return written

    def wait_vendor(
        self, page: Any, packer: spool.Packer, pages: int, records: int, nbytes: int
    ) -> None:
        """Save where the vendor's job stands and look again later; nobody waits meanwhile.

        When the vendor announces the end by webhook (the page names what to await, and the
        account has a vendor webhook secret), the next look is only the fallback: the
        webhook resumes the job at once (`app.work.signals`)."""
        cursor = {"page": page.next_cursor, "skip": 0}
        if self.commit({}, packer, cursor, pages, records, nbytes) != 1:
            return
        note = f"{page.note}; " if page.note else ""
        waited = self.job.get("vendor_waited_s") or 0.0
        limit = self.settings.vendor_wait_max_s
        if waited >= limit:  # a vendor job stuck in a running state is not polled forever
            message = (
                f"the vendor's job did not finish within {limit:.0f}s "
                f"(TOOLQUEUE_VENDOR_WAIT_MAX_S); last seen: {page.note or 'still working'}"
            )
            self.finish("failed", {"code": "vendor_timeout", "message": message})
            return
        wait, why = page.wait_s, f"vendor still working: next look in {page.wait_s:.1f}s"
        signalled = page.await_ref and self.account.get("webhook_secret")
        if signalled:
            fallback = float(
                self.account.get("webhook_fallback_s") or self.settings.vendor_webhook_fallback_s
            )
            wait = max(wait, fallback)
            why = f"waiting for the vendor's webhook (polling fallback in {wait:.1f}s)"
        wait = min(wait, max(limit - waited, 0.0))  # the last look falls on the limit
        self.advance(
            wait,
            fields={"vendor_waited_s": waited + wait},
            status="waiting_vendor",
            reason=note + why,
        )
        account_id = self.job["account_id"]
        if signalled and signals.await_signal(account_id, page.await_ref, self.id, wait):
            signals.resume(self.id, "the vendor's webhook came first")

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
        self.finish("succeeded", truncated=True, continuation=continuation, reason=reason)

    def finish(
        self,
        status: str,
        error: dict[str, Any] | None = None,
        *,
        truncated: bool = False,
        continuation: str | None = None,
        reason: str = "",
    ) -> None:
        fields = {"finished_at": time.time(), "truncated": truncated, "retry_at": None}
        if continuation:
            fields["continuation"] = continuation
        if error:
            fields["error"] = error
        if error:
            reason = error["message"]
        elif truncated:
            reason = f"{reason or 'cap reached'}; continuation issued"
        else:
            reason = "all pages fetched"
        if self.write(fields, status=status, reason=reason) == 1 and self.job.get("callback_url"):
            dispatch.send(keys.webhook_work(self.id), 0)  # pending since the write

    def advance(
        self,
        countdown: float,
        *,
        fields: dict[str, Any] | None = None,
        status: str | None = None,
        reason: str = "",
    ) -> None:
        """Hand the job to its next step, now or later; park it if later is too late."""
        fields = dict(fields or {})
        fields["seq"] = self.seq + 1
        if countdown > 0:
            fields["retry_at"] = time.time() + countdown
        work = dispatch.plan(countdown)
        if not self.write(fields, status=status, reason=reason, next_step=(self.seq + 1, work)):
            return
        # Let go first, so the next step never finds this step's lease still held.
        self._lease.release()
        dispatch.send(keys.step_work(self.id), self.seq + 1, work)

    def defer_rate_limit(self, exc: RateLimited) -> None:
        job = self.job
        if exc.budget and exc.retry_after is not None:
            # pacing, not a refusal: wake when the slot frees (a little jitter spreads the
            # jobs sharing the account); not counted against the job's waiting budget
            delay = exc.retry_after + random.uniform(0, min(0.02, 0.1 * exc.retry_after))
            self.advance(
                delay,
                status="waiting_rate_limit",
                reason=f"account budget spent: next request in {delay:.2f}s",
            )
            return
        if exc.retry_after is not None:
            delay = exc.retry_after + random.uniform(0, min(1.0, 0.1 * exc.retry_after + 0.05))
        else:  # the vendor gave no timing: full-jitter exponential backoff
            delay = self.backoff(job["limited"])
        waited = (job.get("waited_s") or 0) + delay
        if waited > self.settings.rate_limit_max_wait_s:
            self.finish(
                "failed",
                {
                    "code": "rate_limit_budget_exhausted",
                    "message": f"waited {waited:.0f}s on rate limits, over the "
                    f"{self.settings.rate_limit_max_wait_s:.0f}s budget",
                },
            )
            return
        policy = f" ({exc.policy})" if exc.policy else ""
        self.advance(
            delay,
            fields={"waited_s": waited, "limited": job["limited"] + 1},
            status="waiting_rate_limit",
            reason=f"vendor rate limit{policy}: retry in {delay:.2f}s",
        )

    def retry_transient(self, message: str, status: int | None) -> None:
        """Consecutive failures are capped by attempts, a job's whole life by total wait."""
        s = self.settings
        attempts = self.job["attempts"] + 1
        delay = self.backoff(attempts)
        waited = (self.job.get("retry_waited_s") or 0.0) + delay
        if attempts > s.retry_max_attempts or waited > s.retry_max_wait_s:
            spent = (
                f"gave up after {attempts - 1} retries"
                if attempts > s.retry_max_attempts
                else f"retries would wait over {s.retry_max_wait_s:g}s in all"
            )
            self.finish(
                "failed",
                {
                    "code": "retry_budget_exhausted",
                    "message": f"{message}; {spent}"
                    + (f" (last upstream status {status})" if status else ""),
                },
            )
            return
        self.advance(
            delay,
            fields={"attempts": attempts, "retry_waited_s": waited},
            reason=f"{message}; retry {attempts} in {delay:.2f}s",
        )

    def backoff(self, attempt: int) -> float:
        """Capped exponential backoff with full jitter."""
        s = self.settings
        return random.uniform(0, min(s.retry_backoff_cap_s, s.retry_backoff_base_s * 2**attempt))
