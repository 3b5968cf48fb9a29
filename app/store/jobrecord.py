"""A job's record: the fields of its Redis hash, typed as `jobstore.decode` returns them.

A TypedDict, not a class: the record is read and written as a hash field by field (fenced
Lua writes change a few fields at a time), and mypy checks every field name and type at each
of its many readers. Counters absent from the hash read as 0, times and JSON fields as None.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from app.kernel.states import JobState


class Checkpoint(TypedDict):
    """Where paging stands (app.work.progress): committed with each page's records."""

    cursor: dict[str, Any] | None  # the vendor's page cursor, and how many of its records
    pages: int  # are spooled already (`skip`)
    records: int
    bytes: int
    block: int  # the spool's current block, its bytes and records
    block_bytes: int
    block_records: int
    blocks: int


class JobRecord(Checkpoint):
    # set when the job is created (app.services.jobs.enqueue)
    tenant_id: str
    account_id: str
    tool: str
    args: dict[str, Any]
    max_bytes: int  # the result's cap, bytes
    delivery: str  # "inline" (one result) or "blocks" (numbered blocks under the cap each)
    status: JobState
    created_at: float
    updated_at: float
    seq: int  # the step that runs next; a message for another step is stale
    reserve: int  # bytes of the cap kept for the result's envelope
    max_pages: int  # 0: no page budget
    fields: list[str] | None  # the projection, None: whole records
    callback_url: NotRequired[str]
    idempotency_key: NotRequired[str]
    continued_from: NotRequired[str]  # the continuation this job carries on from
    # waits and retries
    attempts: int  # consecutive transient failures
    limited: int  # consecutive rate-limit refusals
    waited_s: float | None  # on vendor rate limits, in all
    retry_waited_s: float | None  # on transient failures, in all
    vendor_waited_s: float | None  # on an async vendor job, in all
    retry_at: float | None  # when a waiting job runs again
    started_at: float | None
    finished_at: float | None
    # the end
    error: dict[str, Any] | None  # {"code", "message", ...} of a failed or parked job
    truncated: bool  # the cap or the page budget ended it; `continuation` carries on
    continuation: NotRequired[str]
    webhook_delivered: NotRequired[str]  # "1" once its callback_url acknowledged the webhook
    prev_cursor: Any
    # a write job's summary (app.work.writeloop): operations done, records per outcome
    writes: dict[str, int] | None
    # consent (app.work.approval): the key that started it, a preview's summary per action,
    # the approval's state, reason, binding and decision; a dry run previews and ends
    lane: NotRequired[str]  # app.dispatch.lanes: interactive, then bulk once it shows itself long
    key_id: NotRequired[str]
    args_digest: NotRequired[str]
    dry_run: bool
    previewing: bool  # its write tool runs `preview`, not `send` (a dry run; not yet approved)
    preview: dict[str, int] | None
    approval: dict[str, Any] | None
    # a pipeline's stage job (app.work.pipelinerun): the pipeline, the stage's index and
    # kind (source, enrich, sink) and the block it works on
    pipeline: NotRequired[str]
    pstage: NotRequired[str]
    pkind: NotRequired[str]
    pblock: NotRequired[str]


JSON_FIELDS = (
    "args", "fields", "cursor", "error", "prev_cursor", "writes", "preview", "approval"
)  # fmt: skip
BOOL_FIELDS = ("truncated", "dry_run", "previewing")
INT_FIELDS = (
    "seq",
    "pages",
    "records",
    "bytes",
    "block",
    "block_bytes",
    "block_records",
    "blocks",
    "max_bytes",
    "attempts",
    "max_pages",
    "limited",
    "reserve",
)
FLOAT_FIELDS = (
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "retry_at",
    "waited_s",
    "retry_waited_s",
    "vendor_waited_s",
)
