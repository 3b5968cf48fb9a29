"""Where a job's paging stands, as one value: what a step commits with each page."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.store import spool
from app.store.jobrecord import Checkpoint, JobRecord

FIRST_PAGE: dict[str, Any] = {"page": None, "skip": 0}


@dataclass
class Progress:
    """The cursor (the vendor's page cursor and how many of its records are already spooled)
    and the running totals; the packer adds where the spool's blocks stand."""

    cursor: dict[str, Any] = field(default_factory=lambda: dict(FIRST_PAGE))
    pages: int = 0
    records: int = 0
    nbytes: int = 0

    @classmethod
    def of(cls, job: JobRecord) -> Progress:
        return cls(job["cursor"] or dict(FIRST_PAGE), job["pages"], job["records"], job["bytes"])

    def fields(self, packer: spool.Packer) -> Checkpoint:
        """The job record's fields for this progress (jobstore.write)."""
        return {
            "cursor": self.cursor,
            "pages": self.pages,
            "records": self.records,
            "bytes": self.nbytes,
            "block": packer.block,
            "block_bytes": packer.block_bytes,
            "block_records": packer.block_records,
            "blocks": packer.block + 1,
        }


def packer_for(job: JobRecord, block_limit: int) -> spool.Packer:
    """The spool's packer where the job's last commit left it."""
    return spool.Packer(
        budget=job["max_bytes"] - job["reserve"],
        block=job["block"],
        block_bytes=job["block_bytes"] or 2,
        block_records=job["block_records"],
        max_blocks=block_limit if job["delivery"] == "blocks" else 1,
    )
