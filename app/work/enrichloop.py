"""An enrich stage's job step: one lookup per record of its block, answers cached per
pipeline, progress committed with the spooled output.

The job's input is the block's records (`keys.pipeline_input`); its cursor is the next
record's index. Each commit spools the records enriched since the last one and moves the
cursor in one fenced write, right after every vendor call (and every 200 cached answers),
so a worker killed anywhere repeats at most the lookup in flight, and lookups are reads: a
repeat changes nothing at the vendor. A lookup the vendor queues (Clearbit's 202) makes the job
wait in `waiting_vendor` and ask again. Spooled entries are `{"ok": record}`,
`{"dropped": 1}` or `{"rejected": {"record", "code", "message"}}`; the coordinator splits
them. A rate limit ends the step like any read's (a countdown, no sleep).
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import orjson
from pydantic import ValidationError

from app.kernel import keys
from app.kernel.redis import get_redis
from app.kernel.states import JobState
from app.store import pipelines, spool
from app.work import vendorwait
from app.work.context import StepContext
from app.work.pages import Outcome
from app.work.progress import packer_for
from connectors.base import Page, Tool
from connectors.errors import VendorError
from connectors.http import VendorHttp
from connectors.templates import TemplateError, render

COMMIT_EVERY = 200  # cached answers spooled per commit (every vendor call commits at once)


class EnrichLoop:
    def __init__(self, step: StepContext, tool: Tool, http: VendorHttp) -> None:
        self.step, self.tool, self.http = step, tool, http
        job = self.job = step.job
        spec = job["args"]
        self.template, self.into, self.on_missing = (
            spec["template"],
            spec["into"],
            spec["on_missing"],
        )
        self.pid = job.get("pipeline", "")
        self.records = pipelines.read_input(
            self.pid, int(job.get("pstage", "0")), job.get("pblock", "")
        )
        self.at = int((job["cursor"] or {}).get("rec", 0))
        self.packer = packer_for(job, step.settings.block_limit)
        self.memo: dict[str, Any] = {}
        self.calls = 0  # vendor calls this step
        self.counted = 0  # of them, committed to the job's `pages`

    def run(self) -> Outcome:
        pages, seconds = self.step.limits()
        deadline = time.monotonic() + seconds
        pending: list[Any] = []
        try:
            while self.at < len(self.records):
                if self.calls >= pages or time.monotonic() > deadline:
                    return Outcome.CONTINUE if self.commit(pending) else Outcome.ENDED
                try:
                    entry, called = self.one(self.records[self.at])
                except _Queued as queued:  # the vendor works on this lookup: ask again later
                    if self.commit(pending):
                        vendorwait.wait(self.step, queued.page, queued.page.wait_s or 60.0)
                    return Outcome.ENDED
                pending.append(entry)
                self.at += 1
                self.calls += called
                if called or len(pending) >= COMMIT_EVERY:
                    if not self.commit(pending):
                        return Outcome.ENDED
                    pending = []
        except Exception:
            self.commit(pending)  # what was looked up before the refusal stays done
            raise
        if self.commit(pending):
            n = len(self.records)
            self.step.finish(
                JobState.SUCCEEDED, reason=f"{n} records enriched ({self.calls} lookups this step)"
            )
        return Outcome.ENDED

    def one(self, record: Any) -> tuple[dict[str, Any], int]:
        """The record's entry, and whether a vendor call was made for it (1) or not (0)."""
        try:
            rendered = render(self.template, {"record": record})
            args = self.tool.args.model_validate_json(orjson.dumps(rendered), strict=True)
        except TemplateError as exc:
            return _rejected(record, "invalid_template", str(exc)), 0
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in ("args", *first["loc"]))
            return _rejected(record, "invalid_lookup", f"{where}: {first['msg']}"), 0
        digest = hashlib.sha256(
            orjson.dumps(
                [self.tool.name, args.model_dump(mode="json")], option=orjson.OPT_SORT_KEYS
            )
        ).hexdigest()
        answer, called = self.memo.get(digest), 0
        if answer is None:
            raw = get_redis().hget(keys.pipeline_cache(self.pid), digest)
            answer = orjson.loads(raw) if raw else None
        if answer is None:
            answer, called = self.look_up(args), 1
            self.remember(digest, answer)
        self.memo[digest] = answer
        return self.apply(record, answer), called

    def look_up(self, args: Any) -> dict[str, Any]:
        """`{"found": record | None}`, or `{"error": {...}}` when the vendor refused this one
        lookup (a 4xx: the record is rejected, the stage goes on)."""
        try:
            page = self.tool.fetch(self.http, args, None)
        except VendorError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                return {"error": {"code": exc.code, "message": exc.message[:300]}}
            raise
        if page.wait_s is not None:
            raise _Queued(page)  # Clearbit's 202: the lookup is queued, not empty
        return {"found": page.records[0] if page.records else None}

    def remember(self, digest: str, answer: dict[str, Any]) -> None:
        r = get_redis()
        key = keys.pipeline_cache(self.pid)
        with r.pipeline(transaction=False) as p:
            p.hset(key, digest, orjson.dumps(answer))
            p.expire(key, pipelines.ttl())
            p.execute()

    def apply(self, record: Any, answer: dict[str, Any]) -> dict[str, Any]:
        if "error" in answer:
            return _rejected(record, answer["error"]["code"], answer["error"]["message"])
        found = answer["found"]
        if found is None and self.on_missing == "drop":
            return {"dropped": 1}
        if found is None and self.on_missing == "reject":
            return _rejected(record, "not_found", f"{self.tool.name} found nothing for this record")
        return {"ok": {**record, self.into: found}}

    def commit(self, entries: list[Any]) -> bool:
        """Spool the entries and move the cursor, in one fenced write."""
        texts = spool.encode_records(entries, None)
        for i, text in enumerate(texts):
            if not self.packer.fits_alone(text):
                entry = _rejected(
                    entries[i].get("ok"), "record_too_large", "the enriched record is over the cap"
                )
                texts[i] = spool.encode_record(entry)
        placed, n = self.packer.place_many(texts)
        if n < len(texts):
            raise RuntimeError("enrich output over the block limit")
        job = self.job
        fields: dict[str, Any] = {
            "cursor": {"rec": self.at},
            "pages": job["pages"] + self.calls - self.counted,
            "records": job["records"] + n,
            "bytes": job["bytes"] + sum(map(len, texts)),
            "block": self.packer.block,
            "block_bytes": self.packer.block_bytes,
            "block_records": self.packer.block_records,
            "blocks": self.packer.block + 1,
        }
        runs = {block: [spool.run(records)] for block, records in placed.items()}
        if not self.step.write(fields, spool=runs):
            return False
        job.update(fields)  # type: ignore[typeddict-item]
        self.counted = self.calls
        return True


class _Queued(Exception):  # noqa: N818 - a signal, not a failure
    """The vendor accepted a lookup and answers it later (`Page.wait_s`)."""

    def __init__(self, page: Page) -> None:
        super().__init__("queued")
        self.page = page


def _rejected(record: Any, code: str, message: str) -> dict[str, Any]:
    return {"rejected": {"record": record, "code": code, "message": message[:300]}}
