"""The account budget's script against the session's real Redis, in-process: what it admits,
what it learns from responses and how long it says to wait."""

from __future__ import annotations

import time
import uuid

import pytest

from app.kernel import keys
from app.store.budget import Budget
from connectors.base import RatePolicy
from connectors.ratelimit import RateLimit

ROLLING = RatePolicy(3, 1.0)


@pytest.fixture
def account(redis_server) -> str:
    return f"acc_budget_{uuid.uuid4().hex[:8]}"


def sent(budget: Budget, n: int) -> list[float]:
    """Take n slots, answering each with nothing to report; the waits of the refused ones."""
    waits = []
    for _ in range(n):
        waits.append(budget.take())
        budget.observe(RateLimit())
    return waits


def test_admits_the_limit_then_names_the_wait_until_the_oldest_leaves(account):
    b = Budget(account, ROLLING)
    assert sent(b, 3) == [0.0, 0.0, 0.0]
    wait = b.take()
    assert 0.9 < wait <= 1.01  # the window and its 10 ms margin
    assert b.limit == 3
    time.sleep(wait)  # the test itself waits; a worker would reschedule
    assert b.take() == 0.0


def test_every_holder_of_the_account_shares_it(account):
    assert sent(Budget(account, ROLLING), 2) == [0.0, 0.0]
    other = Budget(account, ROLLING)
    assert other.take() == 0.0
    assert other.take() > 0.9
    assert Budget(f"{account}-else", ROLLING).take() == 0.0  # another account: its own


def test_stated_window_replaces_the_seed(account, r):
    b = Budget(account, RatePolicy(100, 10.0))
    assert b.take() == 0.0
    b.observe(RateLimit(limit=2, remaining=1, reset_after=0.5, window=0.5, window_limit=2))
    assert b.take() == 0.0
    assert 0.4 < b.take() <= 0.51
    assert r.hgetall(keys.budget(account)) == {"limit": "2", "window": "0.5"}


def test_remaining_below_what_the_log_explains_adds_phantoms(account):
    """Another app spent the account: the vendor's `remaining` tells, the log catches up."""
    b = Budget(account, RatePolicy(10, 1.0))
    assert b.take() == 0.0
    b.observe(RateLimit(limit=10, remaining=2))  # 8 in the window, we sent 1
    assert sent(b, 3)[:2] == [0.0, 0.0]  # 2 left
    assert b.take() > 0.9


def test_remaining_of_another_window_adds_no_phantoms(account):
    b = Budget(account, RatePolicy(10, 1.0))
    assert b.take() == 0.0
    b.observe(RateLimit(limit=250000, remaining=5))  # the daily window, plenty left for now
    assert sent(b, 9) == [0.0] * 9


def test_refusal_closes_it_for_everyone_until_the_named_instant(account):
    b = Budget(account, None)  # no documented policy: unlimited, but refusals still count
    assert sent(b, 50) == [0.0] * 50
    assert b.take() == 0.0
    b.observe(RateLimit(retry_after=2.0, limited=True))
    b.flush()
    assert 1.9 < Budget(account, None).take() <= 2.0


def test_remaining_zero_without_a_stated_window_waits_for_the_reset(account):
    b = Budget(account, RatePolicy(5000, 3600.0, fixed=True))
    assert b.take() == 0.0
    b.observe(RateLimit(limit=2, remaining=0, reset_after=1.5))
    assert 1.4 < b.take() <= 1.5


def test_fixed_window_forgets_its_requests_at_the_reset(account):
    b = Budget(account, RatePolicy(2, 3600.0, fixed=True))
    assert b.take() == 0.0
    b.observe(RateLimit(limit=2, remaining=1, reset_after=0.3))
    assert b.take() == 0.0
    wait = b.take()
    assert 0.2 < wait <= 0.3  # the reset, not the hour the seed would say
    time.sleep(wait + 0.06)  # past the reset and its margin
    assert b.take() == 0.0


def test_a_request_counts_from_its_answer_not_its_send(account, r):
    b = Budget(account, ROLLING)
    assert b.take() == 0.0
    (sent_id, sent_at), = r.zrange(keys.budget_log(account), 0, -1, withscores=True)
    time.sleep(0.2)  # the vendor took its time answering
    b.observe(RateLimit())
    b.flush()
    assert r.zscore(keys.budget_log(account), sent_id) >= sent_at + 0.2


def test_remaining_zero_with_no_reset_pauses_before_asking_again(account):
    """Jira says `remaining: 0` on a 200 and names no reset: a sure refusal is not worth a
    request, so the budget closes for a moment."""
    b = Budget(account, None)
    assert b.take() == 0.0
    b.observe(RateLimit(limit=5, remaining=0))
    assert 0.9 < b.take() <= 1.0
