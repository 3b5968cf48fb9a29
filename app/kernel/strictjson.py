"""Request arguments are validated strictly, as the JSON they arrived as: no coercion of a
bool or a numeric string to an int (`"limit": "10"`, `"max_pages": true` are refused, not
guessed at), while what JSON has no type for still parses from its string form (ISO dates).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any) -> M:
    """`model` from JSON-shaped `data` (a parsed body), in pydantic's strict JSON mode. Raises
    ValidationError; a lone surrogate in a string is one too (it is not valid JSON text)."""
    return model.model_validate_json(json.dumps(data), strict=True)
