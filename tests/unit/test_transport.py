"""The one vendor-call pipeline (connectors/transport.py), with canned answers and no
network: refresh once on a 401 or a vendor's 401 in disguise, a second refusal is final, and
the account's budget is asked before every send."""

from __future__ import annotations

import pytest
from fakes import canned

from app.kernel.registry import registry
from connectors import ratelimit
from connectors.errors import AuthRejected, ConnectorError, RateLimited
from connectors.transport import auth_flow, send_authorized


class Tokens:
    def __init__(self) -> None:
        self.asked: list[bool] = []

    def __call__(self, force: bool) -> str:
        self.asked.append(force)
        return f"t{len(self.asked)}"


class Gate:
    def __init__(self, waits: list[float]) -> None:
        self.waits = waits

    def take(self) -> float:
        return self.waits.pop(0) if self.waits else 0.0

    def observe(self, rate: ratelimit.RateLimit) -> None: ...

    def flush(self) -> None: ...


def drive(vendor: str, answers: list, gate: Gate | None = None) -> tuple[list, Tokens, object]:
    sent: list[dict[str, str]] = []
    tokens = Tokens()

    def send(auth: dict[str, str]) -> object:
        sent.append(auth)
        return answers.pop(0)

    v = registry().vendors[vendor]
    try:
        outcome: object = send_authorized(send, auth_flow(v, tokens), gate)
    except (ConnectorError, RateLimited) as exc:
        outcome = exc
    return sent, tokens, outcome


def test_an_accepted_token_is_sent_once_and_never_refreshed():
    sent, tokens, resp = drive("hubspot", [canned(200, {"results": []})])
    assert sent == [{"Authorization": "Bearer t1"}] and tokens.asked == [False]
    assert resp.status_code == 200


def test_a_401_refreshes_once_and_sends_again_with_the_new_token():
    sent, tokens, resp = drive("hubspot", [canned(401), canned(200, {"results": []})])
    assert tokens.asked == [False, True]
    assert sent == [{"Authorization": "Bearer t1"}, {"Authorization": "Bearer t2"}]
    assert resp.status_code == 200


def test_a_refused_fresh_token_is_final_after_exactly_two_sends():
    sent, tokens, outcome = drive("hubspot", [canned(401), canned(401), canned(200)])
    assert isinstance(outcome, AuthRejected) and "freshly refreshed" in outcome.message
    assert len(sent) == 2 and tokens.asked == [False, True]


def test_slacks_invalid_auth_in_a_200_is_a_401_in_disguise():
    bad = canned(200, {"ok": False, "error": "invalid_auth"})
    sent, tokens, resp = drive("slack", [bad, canned(200, {"ok": True, "members": []})])
    assert tokens.asked == [False, True] and resp.json()["ok"] is True
    _, _, outcome = drive("slack", [bad, canned(200, {"ok": False, "error": "invalid_auth"})])
    assert isinstance(outcome, AuthRejected) and "invalid_auth" in outcome.message


def test_a_spent_budget_refuses_before_anything_is_sent():
    sent, tokens, outcome = drive("hubspot", [canned(200)], Gate([1.5]))
    assert isinstance(outcome, RateLimited) and outcome.budget and outcome.retry_after == 1.5
    assert sent == []


@pytest.mark.parametrize("status", [403, 429, 500])
def test_other_refusals_are_not_retried_by_the_flow(status):
    """They come back (or raise the vendor's verdict) for the caller: no refresh, no resend."""
    sent, tokens, outcome = drive("hubspot", [canned(status), canned(200)])
    assert len(sent) == 1 and tokens.asked == [False]
    assert getattr(outcome, "status_code", getattr(outcome, "status", None)) == status
