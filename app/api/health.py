"""/healthz: 200 only when Redis and at least one worker answer."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.kernel.celery import app as celery_app
from app.kernel.errors import StoreUnavailable
from app.kernel.redis import get_redis

router = APIRouter(tags=["health"])
_cache: dict[str, float | list[str]] = {"at": 0.0, "workers": []}


def _workers() -> list[str]:
    """Celery's broadcast ping, cached briefly so health probes cannot flood the broker."""
    if time.monotonic() - float(_cache["at"]) > 2.0:  # type: ignore[arg-type]
        replies = celery_app.control.ping(timeout=1.0) or []
        _cache["workers"] = sorted(name for reply in replies for name in reply)
        _cache["at"] = time.monotonic()
    return list(_cache["workers"])  # type: ignore[arg-type]


@router.get("/healthz", summary="Liveness of Redis and the workers")
def healthz() -> JSONResponse:
    try:
        get_redis().ping()
        redis_ok = True
    except Exception:
        redis_ok = False
    workers = _workers() if redis_ok else []
    ok = redis_ok and bool(workers)
    body: dict[str, object] = {"ok": ok, "redis": redis_ok, "workers": workers}
    outage = None if redis_ok else StoreUnavailable()  # the 503 every route gives meanwhile
    if outage is not None:
        body.update(outage.body())
    headers = dict(outage.headers) if outage is not None else None
    return JSONResponse(body, status_code=200 if ok else 503, headers=headers)
