"""The OAuth token lifecycle against real Redis, real processes and the sandbox on loopback:
a refresh storm across processes, short-lived tokens inside a long job, a lock holder killed
mid-refresh, transient and permanent token-endpoint failures, a sibling's rotation winning
over a reuse refusal, key rotation, and no secret in any worker log."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import requests
from support import HOME, ROOT, wait_until

SECRETS: set[str] = {"csecret"}  # every credential these tests saw; none may reach a log


@pytest.fixture
def sb(fresh_sandbox: Any) -> Any:
    """`fresh_sandbox` whose token knobs are put back afterwards (a reset keeps the config)."""
    rotate = fresh_sandbox.config()["rotate_refresh_tokens"]
    yield fresh_sandbox
    fresh_sandbox.config(token_latency_ms=0, token_faults=0, rotate_refresh_tokens=rotate)


def stats(sb: Any) -> dict[str, Any]:
    return requests.get(f"{sb.url}/_sandbox/stats", timeout=5).json()


def refresh_calls(sb: Any, vendor: str = "hubspot") -> int:
    return stats(sb)["refresh_calls"][vendor]


def stored(r: Any, account: str) -> dict[str, Any]:
    """The account's unsealed secret; its credentials join SECRETS."""
    from app.kernel import keys
    from app.kernel.crypto import unseal

    secret = unseal(r.hget(keys.token(account), "sealed"))
    SECRETS.update(v for k, v in secret.items() if k in ("access_token", "refresh_token"))
    return secret


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def works(sb: Any, token: str) -> bool:
    """The token is accepted by the sandbox's HubSpot API."""
    resp = requests.get(f"{sb.url}/hubspot/crm/v3/objects/contacts",
                        headers={"Authorization": f"Bearer {token}"}, timeout=5)
    return resp.status_code == 200


def lock_key(account: str) -> str:
    from app.kernel import keys

    return "lock:" + keys.refresh_lock(account)


# One process of the storm: N threads call get_access_token at once when told to go, and
# print what each got (a digest, never the token) and how long it waited.
STORM = r"""
import hashlib, json, sys, threading, time
from app.kernel.redis import get_redis
from app.store.tokens import get_access_token

account, n = sys.argv[1], int(sys.argv[2])
get_redis().ping()
print("ready", flush=True)
sys.stdin.readline()
out = []

def call():
    t0 = time.perf_counter()
    try:
        token = get_access_token(account)
        out.append({"sha": hashlib.sha256(token.encode()).hexdigest(),
                    "ms": (time.perf_counter() - t0) * 1000})
    except Exception as exc:
        out.append({"error": repr(exc)})

threads = [threading.Thread(target=call) for _ in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(out), flush=True)
"""


def test_refresh_storm_across_processes_refreshes_once(api, sb, r):
    sb.config(token_latency_ms=200)  # every caller arrives while the one refresh is in flight
    account = api.account(sb, expires_in=1)
    old = stored(r, account)["access_token"]
    procs = [
        subprocess.Popen([sys.executable, "-c", STORM, account, "8"], cwd=ROOT, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(8)
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
    before = refresh_calls(sb)
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    results: list[dict[str, Any]] = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        results += json.loads(out.splitlines()[-1])

    assert len(results) == 64
    assert [x for x in results if "error" in x] == []
    new = stored(r, account)["access_token"]
    assert {x["sha"] for x in results} == {sha(new)} and new != old
    assert refresh_calls(sb) - before == 1
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["refresh_count"] == 1 and view["last_refresh_outcome"] == "ok"
    assert works(sb, new)


def test_long_job_outlives_many_short_lived_tokens(api, sb, r):
    """200 pages at 40 ms each with 3 s tokens: refreshed ahead of every expiry, never by a
    401, at most once per (TTL - buffer) where the buffer is capped at a third of the TTL."""
    ttl = 3
    sb.config(hubspot_contacts=2000, token_ttl_s=ttl, latency_ms=40,
              rotate_refresh_tokens={"hubspot": True})
    account = api.account(sb)
    job = api.call(account_id=account, args={"limit": 10}, fields=["id"])
    done = api.wait(job["job_id"], timeout=180)
    assert done["status"] == "succeeded", done
    assert done["progress"]["pages"] == 200
    ids = [x["id"] for x in api.result(job["job_id"])["records"]]
    assert ids == [str(i) for i in range(1, 2001)]

    log = sb.requests()
    calls = [e for e in log if e["kind"] == "api"]
    tokens = [e for e in log if e["kind"] == "token"]
    assert [e["status"] for e in calls if e["status"] == 401] == []
    assert len(calls) == 200  # no page was fetched twice (no 401 retry)
    assert all(e["status"] == 200 for e in tokens)
    duration = calls[-1]["t"] - tokens[0]["t"]
    assert duration > 3 * ttl, f"the job must outlive several tokens; it took {duration:.1f}s"
    # the first refresh replaces the minted token (lifetime unknown: full buffer); then each
    # token lives ttl and is refreshed when a third of it is left, on the next step's start
    assert duration / ttl <= len(tokens) <= duration / (ttl * 2 / 3) + 2, (len(tokens), duration)
    assert stats(sb)["refresh_reuse"]["hubspot"] == 0
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "active" and view["refresh_count"] == len(tokens)
    assert works(sb, stored(r, account)["access_token"])


HOLD = r"""
import sys
from app.store.tokens import get_access_token
get_access_token(sys.argv[1])
"""


def test_one_step_that_outlives_its_token_refreshes_mid_step(api, sb, r):
    """A step (3 pages at 600 ms here) lasts longer than the 1 s token it started with: the
    step looks at the token again once it falls due, instead of meeting the vendor's 401."""
    sb.config(hubspot_contacts=600, token_ttl_s=1, latency_ms=600)
    account = api.account(sb, expires_in=1)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "succeeded", done
    calls = [e for e in sb.requests() if e["kind"] == "api"]
    assert [e["status"] for e in calls] == [200] * 6  # no 401, no page fetched twice
    refreshes = [h for h in done["history"] if "token refreshed" in h["reason"]]
    assert refreshes and all("ahead of its expiry" in h["reason"] for h in refreshes)
    # more than one per step start: some came mid-step (alike entries in a row are one, counted)
    assert sum(h.get("count", 1) for h in refreshes) >= 2


def test_lock_holder_killed_mid_refresh(api, sb, r):
    from app.store.tokens import get_access_token

    account = api.account(sb, expires_in=1)
    sb.config(token_latency_ms=30_000)
    before = refresh_calls(sb)
    holder = subprocess.Popen(  # its lock expires 2 + 3 s after its last renewal
        [sys.executable, "-c", HOLD, account], cwd=ROOT, stderr=subprocess.DEVNULL,
        env={**os.environ, "TOOLQUEUE_TOKEN_REFRESH_TIMEOUT_S": "2"},
    )
    try:
        wait_until(lambda: refresh_calls(sb) > before, 20)  # its call is in flight
        assert r.exists(lock_key(account))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    sb.config(token_latency_ms=0)
    left = r.pttl(lock_key(account)) / 1000
    assert 0 < left <= 5

    t0 = time.monotonic()
    token = get_access_token(account)  # waits in 1 s slices, retrying the lock each time
    waited = time.monotonic() - t0
    assert left - 0.5 <= waited <= left + 2.5, (left, waited)
    assert works(sb, token)
    assert token == stored(r, account)["access_token"]
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "active" and view["last_refresh_outcome"] == "ok"
    assert refresh_calls(sb) - before == 2


def test_token_endpoint_503s_are_retried_by_the_job(api, sb, r):
    account = api.account(sb, expires_in=1)
    sb.config(token_faults=3)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    done = api.wait(job["job_id"], timeout=60)
    assert done["status"] == "succeeded", done
    assert len(api.result(job["job_id"])["records"]) == 1000
    tokens = [e["status"] for e in sb.requests() if e["kind"] == "token"]
    assert tokens == [503, 503, 503, 200]
    retries = [h for h in done["history"] if "token endpoint answered 503" in h["reason"]]
    assert sum(h.get("count", 1) for h in retries) == 3, done["history"]
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "active" and view["last_refresh_outcome"] == "ok"
    stored(r, account)


def test_token_endpoint_timeout_is_transient_and_recovers(api, sb, r, monkeypatch):
    from app.kernel.settings import get_settings
    from app.store.tokens import get_access_token
    from connectors.errors import Transient

    account = api.account(sb, expires_in=1)  # HubSpot keeps its refresh token: a late
    sb.config(token_latency_ms=1500)  # answer to the abandoned call invalidates nothing
    monkeypatch.setattr(get_settings(), "token_refresh_timeout_s", 0.5)
    t0 = time.monotonic()
    with pytest.raises(Transient):
        get_access_token(account)
    assert time.monotonic() - t0 < 1.4  # one call, given up at the timeout: no sleep, no retry
    assert refresh_calls(sb) == 1
    assert not r.exists(lock_key(account))
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "active" and view["last_refresh_outcome"] == "transient_error"

    sb.config(token_latency_ms=0)
    token = get_access_token(account)
    assert works(sb, token) and token == stored(r, account)["access_token"]
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["last_refresh_outcome"] == "ok" and view["refresh_count"] == 1


@pytest.mark.parametrize("why", ["revoked", "reused"])
def test_permanent_refusal_is_never_retried(api, sb, r, why):
    from app.store.tokens import get_access_token
    from connectors.errors import AuthRejected

    sb.config(rotate_refresh_tokens={"hubspot": True})
    account = api.account(sb, expires_in=1)
    if why == "revoked":
        requests.post(f"{sb.url}/_sandbox/revoke", json={"vendor": "hubspot"},
                      timeout=5).raise_for_status()
    else:  # another client used (and so rotated out) our refresh token behind our back
        secret = stored(r, account)
        resp = requests.post(f"{sb.url}/hubspot/oauth/v1/token", timeout=5, data={
            "grant_type": "refresh_token", "refresh_token": secret["refresh_token"],
            "client_id": "cid", "client_secret": "csecret"})
        assert resp.status_code == 200
        SECRETS.update((resp.json()["access_token"], resp.json()["refresh_token"]))
    before = refresh_calls(sb)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    done = api.wait(job["job_id"], states=("needs_reauth", "failed", "succeeded"))
    assert done["status"] == "needs_reauth", done
    time.sleep(1.0)  # room for a retry that must not come
    assert refresh_calls(sb) - before == 1
    assert stats(sb)["refresh_reuse"]["hubspot"] == (1 if why == "reused" else 0)
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "needs_reauth" and view["last_refresh_outcome"] == "rejected"
    with pytest.raises(AuthRejected):
        get_access_token(account)
    assert refresh_calls(sb) - before == 1  # refused without asking the vendor again


def test_sibling_rotation_wins_over_a_reuse_refusal(api, sb, r, monkeypatch):
    """A sibling (say, one whose lock expired while it stalled) rotates the refresh token a
    moment before our call with the same token lands: the vendor calls it reuse, and the
    re-read finds the sibling's newer version instead of marking the account needs_reauth."""
    from app.kernel import keys
    from app.kernel.crypto import unseal
    from app.store import tokens
    from connectors import oauth

    sb.config(rotate_refresh_tokens={"hubspot": True})
    account = api.account(sb, expires_in=1)
    real = oauth.refresh
    sibling: list[str] = []

    def racing(*args: Any, **kw: Any) -> Any:
        monkeypatch.setattr(oauth, "refresh", real)
        t = r.hgetall(keys.token(account))
        sibling.append(tokens._refresh(account, t, unseal(t["sealed"])))
        return real(*args, **kw)  # the now rotated-out refresh token: invalid_grant

    monkeypatch.setattr(oauth, "refresh", racing)
    token = tokens.get_access_token(account)
    assert sibling and token == sibling[0]
    s = stats(sb)
    assert s["refresh_calls"]["hubspot"] == 2 and s["refresh_reuse"]["hubspot"] == 1
    view = api.get(f"/v1/accounts/{account}").json()
    assert view["status"] == "active" and view["last_refresh_outcome"] == "ok"
    assert view["refresh_count"] == 1
    assert works(sb, token) and stored(r, account)["access_token"] == token


TOKEN_PATHS = {
    "github": "/login/oauth/access_token",  # every answer a 200, errors included
    "hubspot": "/oauth/v1/token",  # BAD_REFRESH_TOKEN in a 400
    "jira": "/oauth/token",
    "salesforce": "/services/oauth2/token",  # no expires_in; issued_at in ms
    "shopify": "/admin/oauth/access_token",
    "slack": "/api/oauth.v2.access",  # ok:false in a 200
    "zendesk": "/oauth/tokens",
}


@pytest.mark.parametrize("vendor", sorted(TOKEN_PATHS))
def test_refresh_grant_speaks_every_vendor_dialect(sb, vendor):
    """connectors.oauth against each sandbox token endpoint: the grant, rotation, a reused
    or revoked refresh token and a bad client are permanent, a 503 is transient."""
    from connectors import oauth
    from connectors.errors import AuthRejected, Transient

    url = f"{sb.url}/{vendor}{TOKEN_PATHS[vendor]}"
    minted = sb.mint(vendor)
    SECRETS.update((minted["access_token"], minted["refresh_token"]))
    rotates = sb.config()["rotate_refresh_tokens"][vendor]
    grant = oauth.refresh(url, minted["refresh_token"], "cid", "csecret")
    SECRETS.update(x for x in (grant.access_token, grant.refresh_token) if x)
    if vendor == "salesforce":
        assert grant.expires_in is None and abs(grant.issued_at - time.time()) < 5
    else:
        assert grant.expires_in == 1800
    current = minted["refresh_token"]
    if rotates:
        assert grant.refresh_token and grant.refresh_token != current
        with pytest.raises(AuthRejected):
            oauth.refresh(url, current, "cid", "csecret")
        assert stats(sb)["refresh_reuse"][vendor] == 1
        current = grant.refresh_token
    else:
        assert grant.refresh_token in (None, current)

    sb.config(token_faults=1)
    with pytest.raises(Transient) as exc:
        oauth.refresh(url, current, "cid", "csecret")
    assert exc.value.status == 503 and sb.config()["token_faults"] == 0
    with pytest.raises(AuthRejected):
        oauth.refresh(url, current, "cid", "wrong-secret")
    again = oauth.refresh(url, current, "cid", "csecret")  # none of that spent the token
    SECRETS.update(x for x in (again.access_token, again.refresh_token) if x)
    requests.post(f"{sb.url}/_sandbox/revoke", json={"vendor": vendor},
                  timeout=5).raise_for_status()
    with pytest.raises(AuthRejected):
        oauth.refresh(url, again.refresh_token or current, "cid", "csecret")


def test_grant_without_expires_in_lasts_the_configured_lifetime(api, sb, r, monkeypatch):
    """Salesforce says neither expires_in nor the session timeout: the configured lifetime
    counts from its issued_at."""
    from app.kernel import keys
    from app.kernel.settings import get_settings
    from app.store.tokens import _valid, get_access_token

    monkeypatch.setattr(get_settings(), "token_default_lifetime_s", 90.0)
    account = api.account(sb, "salesforce", expires_in=1)
    token = get_access_token(account)
    t = r.hgetall(keys.token(account))
    assert abs(float(t["expires_at"]) - (time.time() + 90)) < 5
    assert 85 < float(t["lifetime_s"]) <= 90
    assert _valid(t, account)
    assert get_access_token(account) == token and refresh_calls(sb, "salesforce") == 1
    stored(r, account)


# Seed, rotate or read sealed records in an isolated Redis database, with the keys given
# in the environment; prints digests only.
KEYS_SCRIPT = r"""
import hashlib, json, sys
from types import SimpleNamespace
from pydantic import SecretStr
from app.kernel import crypto, keys
from app.store import tenants, tokens
from app.kernel.crypto import reseal_all
from app.kernel.redis import get_redis

d = lambda s: hashlib.sha256(s.encode()).hexdigest()
if sys.argv[1] == "seed":
    t = tenants.create_tenant("rotation")
    creds = SimpleNamespace(
        type="oauth2", access_token=SecretStr("at-rotation"), refresh_token=SecretStr("rt-r"),
        client_id="cid", client_secret=SecretStr("cs-rotation"), token_url=None,
        expires_at=None, expires_in=3600)
    tokens.store_initial("acc_rotation", creds, "http://127.0.0.1:9", "/token")
    get_redis().hset(keys.account("acc_rotation"), "webhook_secret", crypto.seal("vendor-whk"))
    app = keys.oauth_app(t["tenant_id"], "hubspot")
    get_redis().hset(app, "sealed_secret", crypto.seal("app-secret"))
    print(json.dumps({"tenant": t["tenant_id"], "whsec": d(t["webhook_secret"])}))
else:
    vendor = crypto.unseal(get_redis().hget(keys.account("acc_rotation"), "webhook_secret"))
    app = crypto.unseal(get_redis().hget(keys.oauth_app(sys.argv[2], "hubspot"), "sealed_secret"))
    print(json.dumps({"token": d(tokens.get_access_token("acc_rotation")),
                      "whsec": d(tenants.webhook_secret(sys.argv[2])), "vendor": d(vendor),
                      "app": d(app)}))
"""


def test_keys_rotate_reseals_everything_under_the_newest_key(redis_server):
    import redis
    from cryptography.fernet import Fernet

    url = os.environ["TOOLQUEUE_REDIS_URL"].rsplit("/", 1)[0] + "/5"  # not the session's db
    redis.Redis.from_url(url).flushdb()
    a, b = Fernet.generate_key().decode(), Fernet.generate_key().decode()

    def run(secret_key: str, *argv: str, script: bool = True) -> subprocess.CompletedProcess:
        cmd = ["-c", KEYS_SCRIPT] if script else ["-m", "app.cli"]
        return subprocess.run([sys.executable, *cmd, *argv], cwd=ROOT, text=True,
                              capture_output=True, timeout=60,
                              env={**os.environ, "TOOLQUEUE_REDIS_URL": url,
                                   "TOOLQUEUE_SECRET_KEY": secret_key})

    seeded = json.loads(run(a, "seed").stdout)
    want = {"token": sha("at-rotation"), "whsec": seeded["whsec"], "vendor": sha("vendor-whk"),
            "app": sha("app-secret")}
    assert run(b, "read", seeded["tenant"]).returncode != 0  # sealed under A only
    assert json.loads(run(f"{b},{a}", "read", seeded["tenant"]).stdout) == want

    rotated = run(f"{b},{a}", "keys", "rotate", script=False)
    assert rotated.returncode == 0, rotated.stderr
    assert json.loads(rotated.stdout) == {"tokens": 1, "tenants": 1, "accounts": 1,
                                          "oauth_apps": 1, "oauth_clients": 0}  # fmt: skip
    assert json.loads(run(b, "read", seeded["tenant"]).stdout) == want
    old_only = run(a, "read", seeded["tenant"])
    assert old_only.returncode != 0 and "InvalidToken" in old_only.stderr
    redis.Redis.from_url(url).flushdb()


def test_no_secret_reaches_a_worker_log(workers):
    """Runs last: every token the tests above saw, and any sandbox refresh token, is absent
    from the logs of the workers, beat and the API."""
    logs = "\n".join(
        p.read_text(errors="replace")
        for p in (HOME / "logs").glob("*.log")
        if p.name.startswith(("worker", "beat", "api"))
    )
    assert "toolqueue.step" in logs  # the worker logs were found and have content
    assert len(SECRETS) > 10
    assert [s for s in SECRETS if s in logs] == []
    assert re.findall(r"na1-[0-9a-f]{8}-[0-9a-f-]{27}", logs) == []
