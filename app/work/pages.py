"""A step's page loop: fetch from the cursor, spool what fits, commit page by page.

Each page's records and the cursor past them are committed in one fenced write, so a worker
killed at any instant loses at most the page in flight, and no record is spooled twice."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from enum import Enum
from typing import Any

from app.kernel.states import JobState
from app.store import spool
from app.store.jobstore import WriteResult
from app.work import vendorwait
from app.work.context import StepContext
from app.work.progress import Progress, packer_for
from connectors.base import Page
from connectors.errors import PaginationLoop
from connectors.http import VendorHttp


class Outcome(Enum):
    CONTINUE = "continue"  # the step ran out of pages or time: the next step carries on
    ENDED = "ended"  # the job ended, waits, or another worker took over


class PageLoop:
    """Up to `pages_per_step` pages (or `step_budget_s`) of one step."""

    def __init__(self, step: StepContext, tool: Any, http: VendorHttp, args: Any) -> None:
        self.step = step
        self.tool = tool
        self.http = http
        self.args = args
        self.job = step.job
        self.at = Progress.of(step.job)
        self.packer = packer_for(step.job, step.settings.block_limit)

    def run(self) -> Outcome:
        max_pages = self.job.get("max_pages") or 0
        pages, seconds = self.step.limits()
        deadline = time.monotonic() + seconds
        for _ in range(pages):
            if time.monotonic() > deadline:
                break
            if max_pages and self.at.pages >= max_pages and self.at.cursor["page"] is not None:
                self.step.finish_truncated(
                    self.at.cursor, reason=f"page budget of {max_pages} reached"
                )
                return Outcome.ENDED
            if not self.next_page():
                return Outcome.ENDED
        return Outcome.CONTINUE

    def next_page(self) -> bool:
        """Fetch, spool and commit one page; False when the job ended or waits."""
        page: Page = self.tool.fetch(self.http, self.args, self.at.cursor["page"])
        nxt = page.next_cursor
        if page.wait_s is not None:  # the vendor is still working on an async export
            self.wait_vendor(page, page.wait_s)
            return False
        if nxt is not None and nxt == self.at.cursor["page"]:
            raise PaginationLoop(nxt)
        skip = self.at.cursor["skip"]
        texts = spool.encode_records(page.records[skip:], self.job.get("fields"))
        placed, n = self.packer.place_many(texts)
        self.at.records += n
        self.at.nbytes += sum(map(len, texts[:n]))
        if n < len(texts):
            self.overflow(page, texts[n], skip + n, placed)
            return False
        self.at.pages += 1
        self.at.cursor = {"page": nxt, "skip": 0}
        written = self.commit(placed, self.at, seen=nxt)
        if written == WriteResult.SEEN:
            raise PaginationLoop(nxt)
        if not written:
            return False  # cancelled, or another worker took over
        if nxt is None:
            self.step.finish(JobState.SUCCEEDED)
            return False
        return True

    def overflow(
        self, page: Page, text: bytes, placed_upto: int, placed: dict[int, list[bytes]]
    ) -> None:
        """A record fit no allowed block: it is too large alone, or the cap fell in the page."""
        if not self.packer.fits_alone(text):
            rid = self.tool.record_id(page.records[placed_upto])
            self.commit(placed, self.at)
            max_bytes = self.job["max_bytes"]
            self.step.finish(
                JobState.FAILED,
                {
                    "code": "record_too_large",
                    "message": f"record {rid} alone is {len(text)} bytes, over the "
                    f"{max_bytes}-byte cap; project fewer fields with `fields`",
                    "record_id": rid,
                },
            )
            return
        # every allowed block is full; the page was fetched, even if the cap fell in it
        cursor = {"page": self.at.cursor["page"], "skip": placed_upto}
        self.commit(placed, replace(self.at, cursor=cursor, pages=self.at.pages + 1))
        self.step.finish_truncated(cursor)

    def commit(self, placed: dict[int, list[bytes]], at: Progress, seen: Any = None) -> int:
        """Spool a page's records and move the cursor; a cursor seen before is a loop (-1)."""
        fields = at.fields(self.packer)
        digest = "" if seen is None else hashlib.sha1(spool.dumps(seen).encode()).hexdigest()
        runs = {block: [spool.run(records)] for block, records in placed.items()}
        written = self.step.write(fields, spool=runs, seen=digest)
        if written == WriteResult.WRITTEN:
            tally = self.step.tally
            tally.add("pages_fetched", n=at.pages - self.job["pages"])
            tally.add("records_fetched", n=at.records - self.job["records"])
            tally.add("spool_bytes", n=at.nbytes - self.job["bytes"])
            self.job.update(fields)
        return written

    def wait_vendor(self, page: Page, wait_s: float) -> None:
        """Save where the vendor's job stands and look again later (`app.work.vendorwait`)."""
        cursor = {"page": page.next_cursor, "skip": 0}
        if self.commit({}, replace(self.at, cursor=cursor)) == 1:
            vendorwait.wait(self.step, page, wait_s)
