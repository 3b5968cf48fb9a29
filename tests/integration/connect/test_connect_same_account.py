"""Re-authorizing must grant the same vendor account: a person who signs in to another
HubSpot portal (another `hub_id`), another Salesforce org, or grants a Jira user's sites
without the one the account reaches, ends the session with `account_mismatch`, and nothing
of the account changes (its tokens, its parked job); the same portal then reconnects it."""

from __future__ import annotations

import pytest
from connectkit import Browser, oauth_app, sealed_tokens, session

from app.kernel import keys


def reconnect(api, vendor, account):
    made = session(api, vendor, account_id=account).json()
    return made, Browser().connect(made["connect_url"])


def test_another_hubspot_portal_does_not_replace_the_accounts_portal(api, fresh_sandbox, r):
    oauth_app(api, fresh_sandbox, "hubspot")
    account = Browser().connect(session(api, "hubspot").json()["connect_url"])["account_id"]
    assert r.hget(keys.account(account), "vendor_account_id") == "hub:62515"
    before = sealed_tokens(r, account)

    fresh_sandbox.config(hubspot_hub_id=777)  # the person signs in to another portal
    made, back = reconnect(api, "hubspot", account)

    assert back["error"] == "account_mismatch" and "account_id" not in back
    view = api.get(f"/v1/connect/sessions/{made['session_id']}").json()
    assert (view["status"], view["error"]) == ("failed", "account_mismatch")
    assert sealed_tokens(r, account) == before  # nothing of the other portal was stored
    assert r.hget(keys.account(account), "vendor_account_id") == "hub:62515"

    fresh_sandbox.config(hubspot_hub_id=62515)
    _, again = reconnect(api, "hubspot", account)
    assert again == {"account_id": account, "status": "reactivated"}
    assert sealed_tokens(r, account)["access_token"] != before["access_token"]


def test_another_salesforce_org_is_refused_and_the_same_org_reconnects(api, fresh_sandbox, r):
    oauth_app(api, fresh_sandbox, "salesforce")
    account = Browser().connect(session(api, "salesforce").json()["connect_url"])["account_id"]
    org = r.hget(keys.account(account), "vendor_account_id")
    assert org and org.startswith("org:00D")
    _, same = reconnect(api, "salesforce", account)
    assert same == {"account_id": account, "status": "reactivated"}

    oauth_app(api, fresh_sandbox, "salesforce")  # a new app: the sandbox grants another org
    _, back = reconnect(api, "salesforce", account)
    assert back["error"] == "account_mismatch"
    assert r.hget(keys.account(account), "vendor_account_id") == org


@pytest.mark.parametrize("site", ["acme", None])
def test_a_jira_reconnect_keeps_the_site_the_account_reaches(api, fresh_sandbox, r, site):
    from sandbox.jira.oauth import CLOUD_ID, OTHER_CLOUD_ID

    base = f"{fresh_sandbox.url}/jira/ex/{{cloudid}}"
    oauth_app(api, fresh_sandbox, "jira", base_url=base)
    made = session(api, "jira", **({"site": site} if site else {})).json()
    account = Browser().connect(made["connect_url"])["account_id"]
    cloud = OTHER_CLOUD_ID if site else CLOUD_ID
    assert r.hget(keys.account(account), "vendor_account_id") == f"site:{cloud}"

    _, back = reconnect(api, "jira", account)  # no site asked: the account's own is kept

    assert back == {"account_id": account, "status": "reactivated"}
    assert api.get(f"/v1/accounts/{account}").json()["base_url"].endswith(cloud)


def test_a_slack_account_keeps_its_workspace_and_reconnects(api, fresh_sandbox, r):
    from sandbox.slack.reads import TEAM_ID

    oauth_app(api, fresh_sandbox, "slack")
    account = Browser().connect(session(api, "slack").json()["connect_url"])["account_id"]
    assert r.hget(keys.account(account), "vendor_account_id") == f"team:{TEAM_ID}"

    _, back = reconnect(api, "slack", account)

    assert back == {"account_id": account, "status": "reactivated"}
