"""Leases: which worker runs a piece of work now, kept alive while it does.

A lease is a Redis string (SET NX PX) holding a random token. Its holder renews it from a
background thread every third of its life, so it outlives a step of any length but lapses
within one lifetime of the holder's death (a SIGKILL, the hard time limit): the sweep
(`app.dispatch.wake_due`) then sends the work again at once instead of waiting out the
broker's visibility timeout. Every write the holder makes is fenced on the token, so a holder
that stalled past its lease (and was replaced) can no longer change anything.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from types import TracebackType

from redis.exceptions import RedisError

from app.kernel import keys
from app.kernel.lua import source
from app.kernel.redis import run_script

log = logging.getLogger("toolqueue.leases")


LAPSE_SLACK_S = 0.5  # the sweep looks at held work this long after its lease would lapse


class Lease:
    """One attempt to hold the lease of `work` (a pending-work member, `app.dispatch`) for
    `ttl_s`, renewed while held (use as a context manager).

    Taking and renewing the lease also keeps the work's deadline no later than just after the
    lease would lapse, so the sweep notices a dead holder one lease after its death, whatever
    deadline the work had."""

    def __init__(self, work: str, ttl_s: float) -> None:
        self.key = keys.lease(work)
        self.work = work
        self.ttl_ms = max(int(ttl_s * 1000), 100)
        self.token = secrets.token_hex(8)  # a fencing id, not a credential
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        """True when the lease is ours; False when another holder has it."""
        return bool(run_script(source("lease_acquire"), [self.key, keys.DUE], self._argv()))

    def _argv(self) -> list[object]:
        lapse = time.time() + self.ttl_ms / 1000 + LAPSE_SLACK_S
        return [self.token, self.ttl_ms, self.work, lapse]

    def release(self) -> None:
        """Stop renewing and let go (only if still ours)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        run_script(source("lease_release"), [self.key], [self.token])

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._renew, name="lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _renew(self) -> None:
        script, period = source("lease_renew"), self.ttl_ms / 3000
        while not self._stop.wait(period):
            try:
                if not run_script(script, [self.key, keys.DUE], self._argv()):
                    log.warning("lease %s lapsed while held; its fenced writes will fail", self.key)
                    return
            except RedisError as exc:  # Redis away for a moment: the next renewal may land
                log.warning("lease %s not renewed: %s", self.key, type(exc).__name__)
