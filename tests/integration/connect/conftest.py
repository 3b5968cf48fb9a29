"""The connect tests' events receiver: a connected account's `events_url`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def events(receiver: Any) -> Iterator[Any]:
    """A second receiver: the connected account's `events_url`."""
    rec = type(receiver)()
    yield rec
    rec.server.shutdown()
