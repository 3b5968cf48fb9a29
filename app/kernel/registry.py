"""The tool registry this process serves: built-in connectors plus TOOLQUEUE_CONNECTORS_DIR."""

from __future__ import annotations

from functools import lru_cache

import connectors
from app.kernel.settings import get_settings


@lru_cache(maxsize=1)
def registry() -> connectors.Registry:
    return connectors.load(get_settings().connectors_dir)
