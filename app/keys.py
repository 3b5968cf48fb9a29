"""Redis key names, in one place so scripts and readers agree."""

P = "tq"


def tenant(tid: str) -> str:
    return f"{P}:tenant:{tid}"


def api_key(digest: str) -> str:
    return f"{P}:apikey:{digest}"


def tenant_jobs(tid: str) -> str:
    return f"{P}:tenant:{tid}:jobs"


def account(aid: str) -> str:
    return f"{P}:account:{aid}"


def token(aid: str) -> str:
    return f"{P}:token:{aid}"


def budget(aid: str) -> str:
    return f"{P}:budget:{aid}"


def budget_log(aid: str) -> str:
    return f"{P}:budget:{aid}:sent"


def refresh_lock(aid: str) -> str:
    return f"{P}:refresh:{aid}"


def job(jid: str) -> str:
    return f"{P}:job:{jid}"


def job_log(jid: str) -> str:
    return f"{P}:job:{jid}:log"


def job_lease(jid: str) -> str:
    return f"{P}:job:{jid}:lease"


def job_spool(jid: str, block: int) -> str:
    return f"{P}:job:{jid}:spool:{block}"


def job_seen(jid: str) -> str:
    return f"{P}:job:{jid}:seen"


def job_deliveries(jid: str) -> str:
    return f"{P}:job:{jid}:deliveries"


def job_events(jid: str) -> str:
    return f"{P}:job:{jid}:events"


def idempotency(tid: str, digest: str) -> str:
    return f"{P}:idem:{tid}:{digest}"


def continuation(token_: str) -> str:
    return f"{P}:cont:{token_}"


JOBS_BY_STATE = f"{P}:metrics:jobs"  # hash unfinished state -> jobs in it now (a gauge)
PARKED = f"{P}:parked"  # zset job_id -> wake time (waits longer than a countdown may be)
UNSENT = f"{P}:jobs:unsent"  # zset job_id -> creation: recorded, first step not yet sent
TOKEN_EXPIRY = f"{P}:tokens:expiry"  # zset account_id -> access-token expiry (refreshable only)


def tenant_throttle(tid: str) -> str:
    return f"{P}:tenant:{tid}:throttle"  # hash: the tenant's API token bucket (tokens, at)


def account_parked(aid: str) -> str:
    return f"{P}:account:{aid}:parked"  # zset job_id -> park time: jobs waiting for re-auth


def account_deliveries(aid: str) -> str:
    return f"{P}:account:{aid}:deliveries"  # list: account-event delivery attempts (JSON)


def account_event(event_id: str) -> str:
    return f"{P}:event:{event_id}"  # string: one account event (tenant, account, signed body)


REAUTH_PARKED = f"{P}:reauth:parked"  # zset job_id -> park time, over every account (expiry)


WEBHOOKS_PARKED = f"{P}:webhooks:parked"  # zset JSON retry -> wake time (too long to count down)


def tenant_dead_letters(tid: str) -> str:
    return f"{P}:tenant:{tid}:dead_letters"  # hash job_id -> JSON: events whose delivery gave up


def vendor_ref(vendor: str, ref: str) -> str:
    return f"{P}:vendor-ref:{vendor}:{ref}"  # string: account_id a vendor's payload names


def vendor_event_seen(aid: str, event_id: str) -> str:
    return f"{P}:account:{aid}:vendor-event:{event_id}"  # string: dedupe of inbound deliveries


def vendor_events(aid: str) -> str:
    return f"{P}:account:{aid}:vendor-events"  # list: the account's normalised inbound events


def awaiting(aid: str, ref: str) -> str:
    return f"{P}:account:{aid}:await:{ref}"  # string: job waiting for the vendor's signal on ref


def signalled(aid: str, ref: str) -> str:
    return f"{P}:account:{aid}:signalled:{ref}"  # string: the signal came before the wait
