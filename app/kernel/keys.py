"""Redis key names, in one place so scripts and readers agree."""

P = "tq"


def tenant(tid: str) -> str:
    return f"{P}:tenant:{tid}"


def api_key(digest: str) -> str:
    return f"{P}:apikey:{digest}"


def tenant_keys(tid: str) -> str:
    return f"{P}:tenant:{tid}:keys"  # hash key_id -> the key's digest (its record's name)


def policy(level: str, ident: str) -> str:
    return f"{P}:policy:{level}:{ident}"  # string: JSON policy of a tenant, account or key


def approval_link(digest: str) -> str:
    return f"{P}:approval-link:{digest}"  # string: JSON {job_id, binding}; single use, TTL


def audit(tid: str) -> str:
    return f"{P}:tenant:{tid}:audit"  # stream: the tenant's audit log (append-only)


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
    return lease(step_work(jid))  # string: the token of the step running now (fencing)


def job_spool(jid: str, block: int) -> str:
    return f"{P}:job:{jid}:spool:{block}"


def job_preview(jid: str, block: int) -> str:
    return f"{P}:job:{jid}:preview:{block}"  # list: an approved job's preview block (spool's)


def job_seen(jid: str) -> str:
    return f"{P}:job:{jid}:seen"


def job_deliveries(jid: str) -> str:
    return f"{P}:job:{jid}:deliveries"


def job_events(jid: str) -> str:
    """channel: the job's state-log entries as they happen (long-polls wait on it). Named
    after the log key, so a Lua script holding the log key names it too (log.lua's
    `tq_events`)."""
    return f"{job_log(jid)}:events"


def idempotency(tid: str, digest: str) -> str:
    return f"{P}:idem:{tid}:{digest}"


def continuation(token_: str) -> str:
    return f"{P}:cont:{token_}"


METRICS = f"{P}:metrics"  # hash "name{labels}" -> total: the /metrics counters (HINCRBY)
JOBS_BY_STATE = f"{P}:metrics:jobs"  # hash unfinished state -> jobs in it now (a gauge)

# Pending work (app/dispatch.py): a job's next step, a webhook's next attempt, an account
# event's next attempt to one target. Members name the work; see the builders below.
# fair share of the bulk lane (app/dispatch/fairshare.py)
BULK_READY = f"{P}:bulk:ready"  # zset "job:seq" -> virtual start tag: bulk steps waiting
BULK_OWNER = f"{P}:bulk:owner"  # hash "job:seq" -> "tenant|concurrency limit"
BULK_VTIME = f"{P}:bulk:vtime"  # hash tenant -> its finish tag; "_V": the lane's virtual time
BULK_LEASES = f"{P}:bulk:leases"  # zset "job:seq" -> expiry: bulk steps running
BULK_RUNNING = f"{P}:bulk:running"  # hash tenant -> steps running; "_blocked:<tenant>": 1|0
DUE = f"{P}:due"  # zset member -> deadline: its task must have started (or, parked, be sent)
PENDING = f"{P}:pending"  # hash member -> "attempt:how:sends" (work/attempt in hand)
POKED = f"{P}:poked"  # hash member -> 1: news for a coordinator since its run began


def step_work(jid: str) -> str:
    return f"step:{jid}"  # member: the job's next step (attempt = the step number)


def webhook_work(jid: str) -> str:
    return f"hook:{jid}"  # member: the ended job's webhook (attempt = delivery attempt)


def event_work(event_id: str, target: str) -> str:
    return f"event:{event_id}:{target}"  # member: an account event to one target


def lease(member: str) -> str:
    return f"{P}:lease:{member}"  # string: token of the worker running that work now


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


def tenant_dead_letters(tid: str) -> str:
    return f"{P}:tenant:{tid}:dead_letters"  # hash job_id -> JSON: events whose delivery gave up


def vendor_ref(vendor: str, ref: str) -> str:
    # hash tenant_id -> account_id: the accounts claiming the ref a vendor's payload names
    return f"{P}:vendor-ref-claims:{vendor}:{ref}"


def vendor_event_seen(aid: str, event_id: str) -> str:
    return f"{P}:account:{aid}:vendor-event:{event_id}"  # string: dedupe of inbound deliveries


def vendor_events(aid: str) -> str:
    return f"{P}:account:{aid}:vendor-events"  # list: the account's normalised inbound events


def awaiting(aid: str, ref: str) -> str:
    return f"{P}:account:{aid}:await:{ref}"  # string: job waiting for the vendor's signal on ref


def signalled(aid: str, ref: str) -> str:
    return f"{P}:account:{aid}:signalled:{ref}"  # string: the signal came before the wait


# Pipelines (app/services/pipelines.py, app/store/pipelines.py): one id wires a source job,
# stage jobs per block and a sink job per block.
def pipeline(pid: str) -> str:
    return f"{P}:pipeline:{pid}"  # hash: the record (definition, state, counts, stage cursors)


def pipeline_queue(pid: str, stage: int) -> str:
    return f"{P}:pipeline:{pid}:queue:{stage}"  # list: block ids waiting for a job stage


def pipeline_input(pid: str, stage: int, block: str) -> str:
    return f"{P}:pipeline:{pid}:input:{stage}:{block}"  # string: JSON records entering a stage


def pipeline_entered(pid: str, stage: int) -> str:
    return f"{P}:pipeline:{pid}:entered:{stage}"  # list: every block id that entered a stage


def pipeline_rejected(pid: str) -> str:
    return f"{P}:pipeline:{pid}:rejected"  # list: JSON {stage, block, record, error, at}


def pipeline_cache(pid: str) -> str:
    return f"{P}:pipeline:{pid}:cache"  # hash lookup digest -> JSON: an enrich stage's answers


def pipeline_log(pid: str) -> str:
    return f"{P}:pipeline:{pid}:log"  # list: JSON state-log entries


def pipeline_deliveries(pid: str) -> str:
    return f"{P}:pipeline:{pid}:deliveries"  # list: JSON attempts of its ending webhook


def tenant_pipelines(tid: str) -> str:
    return f"{P}:tenant:{tid}:pipelines"  # zset pipeline id -> created at


def pipeline_work(pid: str) -> str:
    return f"pipe:{pid}"  # member: the pipeline's coordinator (attempt = its tick number)


# MCP sign-in with OAuth (app/store/oauth.py): toolqueue as the authorization server of /mcp.
# Codes and tokens are looked up by digest; the secrets themselves are never stored.


def oauth_client(client_id: str) -> str:
    # hash: a client registration (RFC 7591): `doc` its JSON without the secret, `sealed_secret`;
    # TTL. (A string of the whole JSON before sealing: the store migrates one when it reads it.)
    return f"{P}:oauth:client:{client_id}"


def oauth_clients() -> str:
    return f"{P}:oauth:clients"  # zset: registered client ids by expiry (epoch s), for the cap


def oauth_limit(kind: str, digest: str) -> str:
    # hash: a token bucket (tokens, at) of the authorization server's limits
    # (app/mcp/oauthlimits.py), by kind (register, token, signin) and the digest of who spends
    # it (a client IP, a client_id); PEXPIRE: until it is full again
    return f"{P}:oauth:limit:{kind}:{digest}"


def oauth_signin_lock(digest: str) -> str:
    return f"{P}:oauth:signin-lock:{digest}"  # string: an IP out of failed sign-ins; PX: its wait


def oauth_request(rid: str) -> str:
    return f"{P}:oauth:request:{rid}"  # string: JSON authorize request awaiting sign-in; TTL


def oauth_code(digest: str) -> str:
    return f"{P}:oauth:code:{digest}"  # string: JSON grant of a code; single use, TTL


def oauth_access(digest: str) -> str:
    return f"{P}:oauth:access:{digest}"  # string: JSON grant of an access token; TTL


def oauth_refresh(digest: str) -> str:
    return f"{P}:oauth:refresh:{digest}"  # string: JSON grant of a refresh token; rotated, TTL


# Connect (app/store/oauthapps.py, app/store/connect.py): a tenant's OAuth app per vendor, and
# the sessions its end users follow to the vendor.


def oauth_app(tid: str, vendor: str) -> str:
    return f"{P}:tenant:{tid}:oauth-app:{vendor}"  # hash: client_id, sealed secret, scopes…


def connect_session(digest: str) -> str:
    return f"{P}:connect:{digest}"  # hash: a connect session by its link token's digest; TTL


def connect_state(state: str) -> str:
    return f"{P}:connect-state:{state}"  # string: session digest; TTL (the claim: single use)


def connect_session_id(session_id: str) -> str:
    return f"{P}:connect-id:{session_id}"  # string: session digest, for its status; TTL
