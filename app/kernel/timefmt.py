"""Timestamps as the API shows them."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_iso(ts: float | None = None) -> str:
    """Fixed-width UTC timestamps (the spool's size reserve relies on the width)."""
    dt = datetime.fromtimestamp(time.time() if ts is None else ts, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
