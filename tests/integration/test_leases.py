"""Leases on a real Redis: held as long as the holder lives (renewed), lapsed soon after it
stops renewing, never released or renewed by anyone but the holder."""

from __future__ import annotations

import time

from app.kernel import keys
from app.kernel.leases import Lease


def test_a_held_lease_outlives_its_ttl_and_ends_on_release(r):
    lease = Lease("test:held", 0.3)
    assert lease.acquire()
    with lease:
        time.sleep(1.0)  # more than three lifetimes
        assert r.get(keys.lease("test:held")) == lease.token
        assert not Lease("test:held", 0.3).acquire()
    assert r.get(keys.lease("test:held")) is None


def test_a_lease_whose_holder_stops_renewing_lapses_within_its_ttl(r):
    lease = Lease("test:dead", 0.3)
    assert lease.acquire()  # acquired, never renewed: a holder killed at once
    time.sleep(0.45)
    assert r.get(keys.lease("test:dead")) is None
    assert Lease("test:dead", 0.3).acquire()


def test_only_the_holder_releases_or_renews(r):
    mine, theirs = Lease("test:fence", 5), Lease("test:fence", 5)
    assert mine.acquire()
    theirs.release()  # not theirs to let go
    assert r.get(keys.lease("test:fence")) == mine.token
    r.set(keys.lease("test:fence"), "someone-else", px=5000)  # lapsed and taken over meanwhile
    mine.release()
    assert r.get(keys.lease("test:fence")) == "someone-else"
    r.delete(keys.lease("test:fence"))


def test_holding_a_lease_keeps_its_works_deadline_within_one_lease(r):
    """A step's deadline may lie far ahead (a backed-off resend); once a worker holds its
    lease, the sweep must look no later than just after the lease would lapse."""
    r.zadd(keys.DUE, {"test:deadline": time.time() + 3600})
    lease = Lease("test:deadline", 0.3)
    assert lease.acquire()
    with lease:
        time.sleep(0.5)
        assert r.zscore(keys.DUE, "test:deadline") <= time.time() + 0.3 + 0.5 + 0.05
    r.zrem(keys.DUE, "test:deadline")
    assert Lease("test:never-pending", 0.3).acquire()  # no deadline is made up for it
    assert r.zscore(keys.DUE, "test:never-pending") is None

