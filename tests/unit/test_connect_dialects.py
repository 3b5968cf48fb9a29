"""The connect dialects' pure parts, against published test vectors."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from connectors.authorize import DIALECTS, pkce_challenge, shopify_hmac_ok

# RFC 7636, appendix B
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
# A Shopify OAuth callback and its secret, as published with the shopify_oauth library docs
SHOPIFY = ("code=0907a61c0c8d55e99db179b68161bc00&hmac=700e2dadb827fcc8609e9d5ce208b2e9cdaab9df"
           "07390d2cbca10d7c328fc4bf&shop=some-shop.myshopify.com&state=0.6784241404160823"
           "&timestamp=1337178173")  # fmt: skip


def test_pkce_s256_matches_rfc_7636():
    assert pkce_challenge(VERIFIER) == CHALLENGE


def test_a_shopify_callback_verifies_with_its_secret_only():
    query = parse_qsl(SHOPIFY)
    assert shopify_hmac_ok(query, "hush")
    assert not shopify_hmac_ok(query, "hush2")
    tampered = [(k, "other-shop.myshopify.com" if k == "shop" else v) for k, v in query]
    assert not shopify_hmac_ok(tampered, "hush")
    assert not shopify_hmac_ok([(k, v) for k, v in query if k != "hmac"], "hush")


def test_dialects_say_scope_syntax_and_pkce_per_vendor():
    assert (DIALECTS["hubspot"].scope_separator, DIALECTS["hubspot"].pkce) == (" ", True)
    assert DIALECTS["salesforce"].base_url_from == "instance_url"
    assert (DIALECTS["shopify"].scope_separator, DIALECTS["shopify"].pkce) == (",", False)
    url = DIALECTS["salesforce"].authorize({"login_host": "test.salesforce.com"}, {"a": "b"})
    assert url == "https://test.salesforce.com/services/oauth2/authorize?a=b"


def test_stripe_connect_asks_one_scope_without_pkce_and_sends_its_secret_key_only():
    stripe = DIALECTS["stripe"]
    assert (stripe.pkce, stripe.scope_choices) == (False, ("read_only", "read_write"))
    assert stripe.code_form == ("grant_type", "code", "client_secret")
    assert stripe.keeps_refresh_token is False and stripe.base_url == "https://api.stripe.com"
    url = stripe.authorize({}, {"response_type": "code", "scope": "read_only"})
    assert url == "https://connect.stripe.com/oauth/authorize?response_type=code&scope=read_only"
    assert stripe.token_url == "https://connect.stripe.com/oauth/token"


@pytest.mark.parametrize(("answer", "want"), [
    ({"stripe_user_id": "acct_1A2b"}, "acct_1A2b"),
    ({"hub_id": 62515}, "hub:62515"),
    ({"ok": True, "team": {"id": "T0123", "name": "Acme"}}, "team:T0123"),
    ({"ok": True, "team": None, "enterprise": {"id": "E1"}}, None),
    ({"id": "https://login.salesforce.com/id/00D5g000004ABCD/0055g00000XYZ"},
     "org:00D5g000004ABCD"),
    ({"id": "https://test.salesforce.com/id/00Dxx/005yy/"}, "org:00Dxx"),
    ({"id": "https://evil.example/id/not-an-org/005yy"}, None),
    ({"hub_id": None, "id": 7}, None),
    ({}, None),
])  # fmt: skip
def test_the_vendor_account_a_token_answer_names(answer, want):
    from connectors.authorize import _vendor_account

    assert _vendor_account(answer) == want
