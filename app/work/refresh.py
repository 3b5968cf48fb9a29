"""Tokens refreshed ahead of expiry, so no job meets an expired one (beat, every 30 s)."""

from __future__ import annotations

import logging

from app.kernel.settings import get_settings
from app.store import tokens
from app.work.reauth import mark_and_notify
from connectors.errors import AuthRejected, Transient

log = logging.getLogger("toolqueue.refresh")


def refresh_expiring() -> int:
    """Refresh, through the same locked path, every token about to expire; a refusal marks
    the account at once (the tenant hears of it now, not when a job next needs the account)."""
    refreshed = 0
    for account_id in tokens.expiring(horizon_s=get_settings().token_refresh_horizon_s):
        try:
            tokens.get_access_token(account_id)
            refreshed += 1
        except AuthRejected as exc:
            mark_and_notify(account_id, exc.message)
            log.warning("proactive refresh of %s refused: account needs_reauth", account_id)
        except Transient as exc:
            log.warning("proactive refresh of %s failed: %s", account_id, type(exc).__name__)
    return refreshed
