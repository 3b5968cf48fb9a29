"""The GraphQL cost bucket and the answers that report it (``extensions.cost``).

The bucket holds ``rate_budgets["shopify.graphql"]`` points (default 25 × the REST bucket,
i.e. 1000 for 40) and refills in one window (1000 → 50/s). A query reserves its requested
cost up front and is refunded the difference to its actual cost. When the bucket cannot
cover a request: HTTP 200 ``THROTTLED`` (429 with ``rate_budgets["shopify.graphql_429"] =
1``); a request larger than the bucket is ``MAX_COST_EXCEEDED``. Refusals are free.
"""

from __future__ import annotations

import math
import time
from typing import Any

from fastapi.responses import JSONResponse

from sandbox.shopify.http import NAME, json_response
from sandbox.state import SandboxState

GRAPHQL_PER_REST = 25  # GraphQL bucket = 25 × REST bucket by default (1000 vs 40)
GRAPHQL_BUCKET = "shopify:graphql-bucket"  # key in state.windows: [available, t]
GRAPHQL_KEY = "shopify.graphql"  # rate_budgets key: GraphQL bucket size
GRAPHQL_429_KEY = "shopify.graphql_429"  # rate_budgets key: 1 → throttle with HTTP 429
RATE_DOC = "https://shopify.dev/api/usage/rate-limits"


def limits(state: SandboxState) -> tuple[float, float]:
    """(bucket size, points restored per second)."""
    cfg = state.config
    maximum = float(cfg.rate_budgets.get(GRAPHQL_KEY, GRAPHQL_PER_REST * cfg.budget(NAME)))
    return maximum, maximum / (cfg.rate_window_ms / 1000)


def take(state: SandboxState, cost: float) -> tuple[bool, float]:
    """Reserve ``cost`` points if available: (accepted, currently available after)."""
    maximum, restore = limits(state)
    now = time.monotonic()
    with state.lock:
        bucket = state.windows[GRAPHQL_BUCKET]
        if not bucket:
            bucket.extend((maximum, now))
        available = min(maximum, bucket[0] + (now - bucket[1]) * restore)
        accepted = available >= cost
        if accepted:
            available -= cost
        else:
            state.rate_limited += 1
        bucket[0], bucket[1] = available, now
    return accepted, available


def refund(state: SandboxState, points: float) -> float:
    maximum, _ = limits(state)
    with state.lock:
        bucket = state.windows[GRAPHQL_BUCKET]
        bucket[0] = min(maximum, bucket[0] + points)
        return bucket[0]


def cost(
    state: SandboxState, requested: float, actual: float | None, available: float
) -> dict[str, Any]:
    maximum, restore = limits(state)
    return {
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {
            "maximumAvailable": maximum,
            "currentlyAvailable": math.floor(available),
            "restoreRate": restore,
        },
    }


def errors(
    *found: dict[str, Any], extensions: dict[str, Any] | None = None, status: int = 200
) -> JSONResponse:
    """A GraphQL error answer (HTTP 200 unless ``status`` says otherwise)."""
    body: dict[str, Any] = {"errors": list(found)}
    if extensions:
        body["extensions"] = extensions
    return json_response(body, status)


def answer(
    state: SandboxState, key: str, value: Any, points: float, available: float
) -> JSONResponse:
    """``{"data": {key: value}}`` with the cost of a fixed-price field."""
    return json_response(
        {"data": {key: value}, "extensions": {"cost": cost(state, points, points, available)}}
    )


def _too_costly(
    state: SandboxState, requested: float, maximum: float
) -> tuple[JSONResponse, float]:
    _, available = take(state, 0)
    refused = errors(
        {
            "message": f"Query cost is {requested:.0f}, which exceeds the single query "
            f"max cost limit ({maximum:.0f}).",
            "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": maximum},
        },
        extensions={"cost": cost(state, requested, None, available)},
    )
    return refused, available


def charge(state: SandboxState, requested: float) -> tuple[JSONResponse | None, float]:
    """Reserve ``requested`` points: (None, available after) or (the refusal, available)."""
    maximum, _ = limits(state)
    if requested > maximum:
        return _too_costly(state, requested, maximum)
    accepted, available = take(state, requested)
    if accepted:
        return None, available
    status = 429 if state.config.rate_budgets.get(GRAPHQL_429_KEY) else 200
    throttled = errors(
        {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": RATE_DOC}},
        extensions={"cost": cost(state, requested, None, available)},
        status=status,
    )
    return throttled, available
