"""Encryption at rest for credentials and webhook secrets (Fernet, with key rotation)."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, MultiFernet

from app.settings import get_settings


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in get_settings().fernet_keys()])


def seal(value: Any) -> str:
    """Encrypt a JSON-able value with the first key."""
    return _fernet().encrypt(json.dumps(value).encode()).decode()


def unseal(token: str) -> Any:
    """Decrypt with any configured key (old keys keep reading during rotation)."""
    return json.loads(_fernet().decrypt(token.encode()))


def digest(secret: str) -> str:
    """Stable lookup hash of a high-entropy secret (API keys are random, so no salt needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()
