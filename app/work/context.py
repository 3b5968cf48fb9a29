"""What a step's parts (page loop, vendor waits, failure handlers) may use of the step.

A Protocol that `app.work.steps.Step` satisfies, so those parts depend on this small
surface instead of importing the runner that imports them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from app.kernel.metrics import Tally
from app.kernel.settings import Settings
from app.store.jobrecord import JobRecord


class StepContext(Protocol):
    id: str  # the job's id
    job: JobRecord  # as this step last wrote it
    seq: int
    lease: str  # the token every write is fenced on
    settings: Settings
    tally: Tally
    account: dict[str, str]
    vendor_name: str

    @property
    def token_version(self) -> str | None: ...

    def limits(self) -> tuple[int, float]: ...

    def write(self, fields: Mapping[str, object], **kw: Any) -> int: ...

    def finish(
        self,
        status: str,
        error: dict[str, Any] | None = None,
        *,
        truncated: bool = False,
        continuation: str | None = None,
        reason: str = "",
        audit: dict[str, Any] | None = None,
    ) -> None: ...

    def finish_truncated(self, cursor: dict[str, Any], reason: str = "") -> None: ...

    def advance(
        self,
        countdown: float,
        *,
        fields: dict[str, Any] | None = None,
        status: str | None = None,
        reason: str = "",
        audit: dict[str, Any] | None = None,
    ) -> None: ...
