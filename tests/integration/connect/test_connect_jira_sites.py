"""A Jira user who grants several Atlassian sites: the session's `site` picks the one the
account reaches (its cloud id in the base URL); without it, the first; a site the user did
not grant ends the session with `site_not_granted`, and `site` on another vendor is a 422."""

from __future__ import annotations

import pytest
from connectkit import Browser, oauth_app, session

from sandbox.jira.oauth import CLOUD_ID, OTHER_CLOUD_ID


@pytest.fixture
def jira_app(api, fresh_sandbox):
    """Jira's app with a base URL that shows the cloud id chosen."""
    base = f"{fresh_sandbox.url}/jira/ex/{{cloudid}}"
    return oauth_app(api, fresh_sandbox, "jira", base_url=base)


@pytest.mark.parametrize(("site", "cloud"), [("acme", OTHER_CLOUD_ID),
                                             ("acme.atlassian.net", OTHER_CLOUD_ID),
                                             ("sandbox", CLOUD_ID), (None, CLOUD_ID)])  # fmt: skip
def test_the_session_site_picks_the_cloud_id(api, fresh_sandbox, jira_app, site, cloud):
    made = session(api, "jira", **({"site": site} if site else {}))
    assert made.status_code == 201, made.text

    back = Browser().connect(made.json()["connect_url"])

    assert back["status"] == "connected", back
    view = api.get(f"/v1/accounts/{back['account_id']}").json()
    assert view["base_url"] == f"{fresh_sandbox.url}/jira/ex/{cloud}"


def test_a_site_not_granted_ends_the_session_and_makes_no_account(api, fresh_sandbox, jira_app):
    made = session(api, "jira", site="elsewhere").json()

    back = Browser().connect(made["connect_url"])

    assert back["error"] == "site_not_granted" and "account_id" not in back
    assert "sandbox.atlassian.net" in back["error_description"]
    view = api.get(f"/v1/connect/sessions/{made['session_id']}").json()
    assert (view["status"], view["error"], view["account_id"]) == ("failed", "site_not_granted",
                                                                    None)  # fmt: skip


def test_site_is_for_jira_sessions_and_must_be_a_host(api, fresh_sandbox, jira_app):
    oauth_app(api, fresh_sandbox, "hubspot")
    other = session(api, "hubspot", site="acme")
    assert other.status_code == 422 and other.json()["error"] == "site_not_supported"
    for bad in ("https://acme.atlassian.net", "acme/../x", "a" * 300, "ACME"):
        resp = session(api, "jira", site=bad)
        assert resp.status_code == 422, (bad, resp.text)
