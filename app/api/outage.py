"""While Redis is unreachable every route answers 503 `store_unavailable` with `Retry-After`,
never a plain-text 500, and soon: the API's Redis clients give up after a bounded wait
(`app.redis.API`, switched on when the app starts serving).

FastAPI's exception handlers (`app.api.errors`) map what a route or dependency raises; this
outermost layer maps what they do not reach (middleware, the MCP endpoint, an exception
group), as long as the response has not started.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api import errors
from app.kernel import celery, redis
from app.kernel.errors import StoreUnavailable

log = logging.getLogger("toolqueue.api")


def is_store_error(exc: BaseException) -> bool:
    """Redis unreachable or not answering; a group of nothing but such errors too."""
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(redis.STORE_ERRORS)[1] is None
    return isinstance(exc, redis.STORE_ERRORS)


class StoreOutage:
    """Pure ASGI, outermost (inside Starlette's own ServerErrorMiddleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            redis.use(redis.API)  # before any request makes a client
            celery.fail_fast()
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started or not is_store_error(exc):
                raise
            log.warning("%s %s: store unavailable (%r)", scope["method"], scope["path"], exc)
            await errors.response(StoreUnavailable())(scope, receive, send)
