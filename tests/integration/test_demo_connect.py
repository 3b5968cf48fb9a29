"""The demo's connect act against the test stack: it passes, and it fails when the end user
cannot finish (no account means no pass)."""

from __future__ import annotations

from app.cli.democonnect import act_connect
from app.client import Client


def test_the_connect_act_connects_an_account_that_reads_contacts(api, fresh_sandbox, workers):
    name, ok, evidence = act_connect(fresh_sandbox.url, Client(api.url, api.tenant["api_key"]))
    assert (name, ok) == ("connect an account", True), evidence
    assert "succeeded (100 contacts)" in evidence and "secret on no page" in evidence


def test_the_connect_act_fails_when_the_vendor_refuses_the_token_exchange(api, fresh_sandbox,
                                                                          workers):  # fmt: skip
    fresh_sandbox.config(token_faults=10)  # the token endpoint answers 503 for the next calls
    try:
        _, ok, evidence = act_connect(fresh_sandbox.url, Client(api.url, api.tenant["api_key"]))
    finally:
        fresh_sandbox.config(token_faults=0)
    assert ok is False and "account —" in evidence
