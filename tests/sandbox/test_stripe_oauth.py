"""The sandbox's Stripe Connect OAuth: consent page, the token endpoint that knows a platform
by its secret key, Stripe's answer, its OAuth-shaped refusals, and the `token_faults` knob."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl, urlsplit

REDIRECT = "https://app.example/cb"
KEY = "sk_test_platform-secret"


def consent(client: Any, decision: str = "approve", scope: str = "read_only") -> dict[str, str]:
    query = {"client_id": "ca_1", "redirect_uri": REDIRECT, "scope": scope, "state": "st-1",
             "response_type": "code"}  # fmt: skip
    page = client.get("/stripe/oauth/authorize", params=query)
    assert page.status_code == 200 and 'id="approve"' in page.text and 'id="deny"' in page.text
    assert KEY not in page.text
    resp = client.post("/stripe/oauth/authorize", data={**query, "decision": decision},
                       follow_redirects=False)  # fmt: skip
    assert resp.status_code == 302
    return dict(parse_qsl(urlsplit(resp.headers["location"]).query))


def token(client: Any, **form: str) -> Any:
    """POST the form to Stripe's token endpoint (the key as `client_secret` unless given)."""
    return client.post("/stripe/oauth/token", data={"client_secret": KEY, **form})


def platform(make_client: Any, mint: Any) -> Any:
    client = make_client()
    mint(client, "stripe", client_id="ca_1", client_secret=KEY)
    return client


def test_a_code_becomes_a_secret_key_of_the_connected_account_once(make_client, mint):
    client = platform(make_client, mint)
    code = consent(client, scope="read_write")["code"]

    resp = token(client, grant_type="authorization_code", code=code)
    again = token(client, grant_type="authorization_code", code=code)

    body = resp.json()
    assert resp.status_code == 200, body
    assert set(body) == {"access_token", "livemode", "refresh_token", "scope",
                         "stripe_publishable_key", "stripe_user_id", "token_type"}  # fmt: skip
    assert (body["scope"], body["token_type"], body["livemode"]) == ("read_write", "bearer", False)
    assert body["stripe_user_id"].startswith("acct_")
    assert body["stripe_publishable_key"].startswith("pk_test_")
    listed = client.get("/stripe/v1/customers",
                        headers={"Authorization": f"Bearer {body['access_token']}"})  # fmt: skip
    assert listed.status_code == 200 and listed.json()["object"] == "list"
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant" and again.json()["error_description"]


def test_the_key_may_come_as_basic_auth_and_a_refresh_token_mints_a_new_token(make_client, mint):
    client = platform(make_client, mint)
    basic = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    code = consent(client)["code"]

    first = client.post("/stripe/oauth/token", headers={"Authorization": basic},
                        data={"grant_type": "authorization_code", "code": code})  # fmt: skip
    refreshed = client.post("/stripe/oauth/token", headers={"Authorization": basic},
                            data={"grant_type": "refresh_token",
                                  "refresh_token": first.json()["refresh_token"]})  # fmt: skip

    assert first.status_code == 200, first.text
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["access_token"] != first.json()["access_token"]


def test_refusals_are_oauth_shaped(make_client, mint):
    client = platform(make_client, mint)
    code = consent(client)["code"]

    unknown = token(client, grant_type="authorization_code", code=code, client_secret="sk_x")
    grant = token(client, grant_type="password")
    bad_refresh = token(client, grant_type="refresh_token", refresh_token="rt_no")

    assert unknown.status_code == 401 and unknown.json()["error"] == "invalid_client"
    assert "sk_x" not in unknown.text  # the key is masked, as Stripe masks it
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    assert bad_refresh.status_code == 400 and bad_refresh.json()["error"] == "invalid_grant"


def test_deny_redirects_with_access_denied_and_a_description(make_client, mint):
    client = platform(make_client, mint)

    back = consent(client, decision="deny")

    assert back == {"error": "access_denied", "error_description": "The user denied your request",
                    "state": "st-1"}  # fmt: skip


def test_token_faults_answer_503_once_each_then_the_code_still_works(make_client, mint):
    client = platform(make_client, mint)
    code = consent(client)["code"]
    assert client.post("/_sandbox/config", json={"token_faults": 1}).status_code == 200

    faulted = token(client, grant_type="authorization_code", code=code)
    after = token(client, grant_type="authorization_code", code=code)

    assert faulted.status_code == 503 and faulted.json()["error"]["type"] == "api_error"
    assert after.status_code == 200, after.text
    assert client.get("/_sandbox/config").json()["token_faults"] == 0
