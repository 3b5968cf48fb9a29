"""The spool: records kept in Redis as compact JSON, packed into blocks under the byte cap.

Every body that carries records (the result, each export block, the webhook) is rendered
by `render`, and the packer guarantees it serializes to at most `max_bytes`: each block's
records get `max_bytes - reserve` bytes, where `reserve` is the worst-case size of
everything around them (the envelope with maximal counters, a continuation and an error,
wrapped in the webhook's event object; or a partial read's envelope, which adds `done`,
`progress`, a partial cursor and a running job's status).
"""

from __future__ import annotations

import json
import re
import secrets
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from operator import add
from typing import Any, cast

import orjson

from app.kernel import keys
from app.kernel.redis import get_redis
from app.kernel.settings import get_settings
from app.kernel.states import JobState
from app.kernel.timefmt import now_iso
from app.store.jobrecord import JobRecord

CONTINUATION_PREFIX = "tqc_"
CONTINUATION_LEN = len(CONTINUATION_PREFIX) + 43  # token_urlsafe(32)
ERROR_MESSAGE_MAX = 300
_BIG = 10**15
# a write job's summary (app.work.writeloop.Summary), every key a count
WRITE_COUNTS = (
    "ops", "done_ops", "records", "created", "updated", "unchanged", "deleted", "rejected",
    "reconciled",
)  # fmt: skip


PREVIEW_COUNTS = ("ops", "done_ops", "records", "create", "update", "unchanged", "delete", "reject")


def encode_record(value: Any) -> bytes:
    """A record as compact UTF-8 JSON, fast (orjson); exotic values fall back to `dumps`."""
    try:
        return orjson.dumps(value)
    except (orjson.JSONEncodeError, TypeError):
        return dumps(value).encode()


def encode_records(records: list[Any], fields: list[str] | None) -> list[bytes]:
    """`encode_record(project(r, fields))` of each record, in one pass: the per-record calls
    and the try block are a page's main Python overhead. Any exotic value: the slow path."""
    if fields:
        records = [project(r, fields) for r in records]
    try:
        return [orjson.dumps(r) for r in records]
    except (orjson.JSONEncodeError, TypeError):
        return [encode_record(r) for r in records]


def dumps(value: Any) -> str:
    """Compact JSON that always encodes to UTF-8: a lone surrogate from a vendor's JSON
    falls back to ASCII escapes (which decode to the same value)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:
        text = json.dumps(value, separators=(",", ":"))
    return text


def project(record: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Keep only the requested fields; dotted names reach into nested objects."""
    if not fields:
        return record
    out: dict[str, Any] = {}
    for name in fields:
        src: Any = record
        parts = name.split(".")
        for part in parts:
            if not isinstance(src, dict) or part not in src:
                break
            src = src[part]
        else:
            dst = out
            for part in parts[:-1]:
                dst = dst.setdefault(part, {})
            dst[parts[-1]] = src
    return out


PARTIAL_RE = re.compile(r"p:(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")


def partial_token(block: int, run: int) -> str:
    """A partial cursor: the position after `run` whole spool elements of `block`."""
    return f"p:{block}.{run}"


def parse_partial(token: str) -> tuple[int, int] | None:
    """(block, run) of a partial cursor, or None when it is not one."""
    m = PARTIAL_RE.fullmatch(token)
    return (int(m[1]), int(m[2])) if m else None


def envelope(
    job_id: str,
    job: JobRecord,
    *,
    block: int = 0,
    done: bool | None = None,
    partial: str | None = None,
) -> dict[str, Any]:
    """The result body minus its records. A partial read (`done` given) also carries `done`,
    the job's `progress` and, while there is more, the partial cursor `partial` as its
    `continuation`."""
    body: dict[str, Any] = {
        "job_id": job_id,
        "tool": job["tool"],
        "status": job["status"],
        "record_count": 0,
        "truncated": bool(job.get("truncated")),
        "pages_fetched": job.get("pages", 0),
        "started_at": now_iso(job["started_at"]) if job.get("started_at") else None,
        "finished_at": now_iso(job["finished_at"]) if job.get("finished_at") else None,
    }
    if job.get("truncated") and job.get("continuation"):
        body["continuation"] = job["continuation"]
    if job.get("writes"):
        body["writes"] = job["writes"]
    if job.get("dry_run"):  # the records are a preview: what the write would do
        body["dry_run"] = True
        body["preview"] = job.get("preview")
    if job.get("delivery") == "blocks":
        body.update(blocks=job.get("blocks", 1), block=block, total_records=job.get("records", 0))
    err = job.get("error")
    if err:
        code = re.sub(r"[^A-Za-z0-9_.:-]", "_", str(err["code"]))[:64]
        body["error"] = {"code": code, "message": str(err["message"])[:ERROR_MESSAGE_MAX]}
    if done is not None:
        body["done"] = done
        body["progress"] = {
            "pages": job.get("pages", 0),
            "records": job.get("records", 0),
            "bytes": job.get("bytes", 0),
            "blocks": job.get("blocks", 0) if job.get("records") else 0,
        }
        if partial is not None:
            body["continuation"] = partial
    return body


def render(env: dict[str, Any], records: list[str], count: int | None = None) -> bytes:
    """Envelope plus raw spooled records (or runs of them), without re-serializing them."""
    env = {**env, "record_count": len(records) if count is None else count}
    head = dumps(env)
    return (head[:-1] + ',"records":[' + ",".join(records) + "]}").encode()


def render_event(event_type: str, data: bytes, timestamp: str) -> bytes:
    return (
        ('{"type":' + dumps(event_type) + ',"timestamp":' + dumps(timestamp) + ',"data":').encode()
        + data
        + b"}"
    )


def reserve(job_id: str, tool: str, *, writes: bool = False) -> int:
    """Worst-case bytes around the records; depends only on the id's length and the tool
    (and whether it writes: a write's result carries its summary)."""
    return _reserve(len(job_id), tool, writes)


@lru_cache(maxsize=256)
def _reserve(id_len: int, tool: str, writes: bool) -> int:
    job_id = "x" * id_len
    worst: dict[str, Any] = {
        "tool": tool,
        # a partial read carries a running job's status, not only an ended one's
        "status": max([s.value for s in JobState], key=len),
        "truncated": True,
        "pages": _BIG,
        "started_at": 4.1e9,
        "finished_at": 4.1e9,
        "continuation": "c" * CONTINUATION_LEN,
        "delivery": "blocks",
        "blocks": _BIG,
        "records": _BIG,
        # a control character escapes to 6 bytes, the worst case per character
        "error": {"code": "x" * 64, "message": "\x00" * ERROR_MESSAGE_MAX},
    }
    worst["bytes"] = _BIG
    if writes:
        worst["writes"] = dict.fromkeys(WRITE_COUNTS, _BIG)
        worst["dry_run"] = True
        worst["preview"] = dict.fromkeys(PREVIEW_COUNTS, _BIG)
    # a result, a webhook, or a partial read (`done`, `progress` and a partial cursor)
    sizes = []
    for partial in (None, partial_token(_BIG, _BIG)):
        for done in (None, False):
            # the fields envelope reads, at their largest
            env = envelope(job_id, cast(JobRecord, worst), block=_BIG, done=done, partial=partial)
            body = (dumps({**env, "record_count": _BIG})[:-1] + ',"records":[]}').encode()
            sizes.append(len(render_event("delivery.exhausted", body, now_iso(0))))
    return max(sizes) + 32


@dataclass
class Packer:
    """Places records into blocks; pure, so the step can decide before it writes."""

    budget: int  # bytes available to the records of one block
    block: int = 0
    block_bytes: int = 2  # "[]"
    block_records: int = 0
    max_blocks: int = 1

    def fits_alone(self, record: str | bytes) -> bool:
        return _size(record) + 2 <= self.budget

    def place_many(self, records: list[bytes]) -> tuple[dict[int, list[bytes]], int]:
        """Place records in order as `place` would, up to the first that fits no allowed block
        (or not even alone): the records placed per block, and how many. One cumulative sum
        and a bisection per block, not a Python step per record."""
        # ends[j]: bytes of records[:j + 1] plus one comma each
        ends = list(map(add, accumulate(map(len, records)), range(1, len(records) + 1)))
        placed: dict[int, list[bytes]] = {}
        i = 0
        while i < len(records):
            start = ends[i - 1] if i else 0
            first = 0 if self.block_records else 1  # no comma before a block's first record
            k = bisect_right(ends, start + self.budget - self.block_bytes + first, i) - i
            if k:  # the next k records fit the current block
                placed.setdefault(self.block, []).extend(records[i : i + k])
                self.block_bytes += ends[i + k - 1] - start - first
                self.block_records += k
                i += k
            elif self.fits_alone(records[i]) and self.block + 1 < self.max_blocks:
                self.block += 1
                self.block_bytes, self.block_records = 2, 0
            else:
                break
        return placed, i

    def place(self, record: str | bytes) -> int | None:
        """The block one record goes into, or None when no allowed block takes it."""
        placed, n = self.place_many([record if isinstance(record, bytes) else record.encode()])
        return next(iter(placed)) if n else None


def _size(record: str | bytes) -> int:
    """UTF-8 bytes of a serialized record."""
    return len(record) if isinstance(record, bytes) else len(record.encode())


def run(records: list[bytes]) -> bytes:
    """One spool element: the records a page put into a block, as `<count>:<r1>,<r2>,…`
    (one element per page, not per record, keeps the worker's Redis write cheap)."""
    return b"%d:" % len(records) + b",".join(records)


def read_block(job_id: str, block: int, start: int = 0) -> tuple[int, list[str]]:
    """A block's record count and its runs of comma-joined records, in order (from run
    `start`: a partial read resumes after the runs it returned)."""
    return read_runs(keys.job_spool(job_id, block), start)


def read_runs(key: str, start: int = 0) -> tuple[int, list[str]]:
    """`read_block` of any list of spool runs (an approved job's preview moved aside)."""
    count, runs = 0, []
    for element in get_redis().lrange(key, start, -1):
        n, _, joined = element.partition(":")
        count += int(n)
        runs.append(joined)
    return count, runs


def save_continuation(state: dict[str, Any]) -> str:
    token = CONTINUATION_PREFIX + secrets.token_urlsafe(32)
    get_redis().set(keys.continuation(token), dumps(state), ex=get_settings().continuation_ttl_s)
    return token


def load_continuation(token: str) -> dict[str, Any] | None:
    raw = (
        get_redis().get(keys.continuation(token)) if token.startswith(CONTINUATION_PREFIX) else None
    )
    return json.loads(raw) if raw else None
