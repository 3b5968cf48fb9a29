"""Re-authorizing an account: new credentials in, its parked jobs resumed.

The surfaces' half of re-authorization; the workers' half (park, notify, resume, expire) is
`tasks/reauth.py`. Posting credentials to an active account simply rotates them: that is
what a tenant whose secret leaked, or who re-ran a consent flow, expects.
"""

from __future__ import annotations

from typing import Any

from app.kernel.registry import registry
from app.store import accounts, tokens
from app.store.accounts import BearerCredentials, OAuth2Credentials
from app.work.reauth import reactivate


def reauthorize(
    tenant_id: str, account_id: str, creds: OAuth2Credentials | BearerCredentials
) -> dict[str, Any]:
    """Store the new credentials (sealed, like at creation), set the account active, resume
    every job parked on it, and return the account view (never a secret)."""
    acc = accounts.load(account_id, tenant_id)
    accounts.check_credentials(acc["vendor"], creds, acc["base_url"])  # token_url rules too
    vendor = registry().vendors[acc["vendor"]]
    was_needs_reauth = tokens.status(account_id)["status"] == "needs_reauth"
    tokens.store_initial(account_id, creds, acc["base_url"], vendor.token_url)
    reactivate(account_id, was_needs_reauth=was_needs_reauth)
    return accounts.view(account_id, tenant_id)
