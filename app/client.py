"""Python client for agent processes: call now, fetch later.

    client = Client("http://127.0.0.1:8000", api_key)
    job = client.call("hubspot.contacts.list", account_id, {"limit": 100}, fields=["id"])
    outcome = client.wait(job["job_id"], budget_s=60)   # result, or state + progress
    while not outcome["done"]:                           # + the records so far and a cursor
        outcome = client.wait(job["job_id"], 60, continuation=outcome["continuation"])

    resp = call_with_backoff(lambda: requests.get(url, timeout=30))  # honours 429 timings

    p = client.pipeline({"source": {...}, "stages": [...], "sink": {...}})  # source → sink
    view = client.pipeline_wait(p["pipeline_id"], budget_s=300)   # per-stage in/out/rejected

    link = client.connect_session("hubspot", "u-42")   # an end user's single-use connect link
    client.connect_session_get(link["session_id"])["status"]   # pending … connected

Trusted in-process agents may call `app.jobs.enqueue` directly instead.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from app.kernel.states import TERMINAL

# a pipeline's ended states (app.store.pipelines.ENDED; a test holds the two equal)
PIPELINE_ENDED = frozenset({"succeeded", "partly_done", "failed", "cancelled"})
PIPELINE_POLL_S = 1.0  # pipeline_wait's pause between reads (the view has no long-poll)
CONTINUATION_PREFIX = "tqc_"  # app.spool's: a truncated result's continuation (a new job)
PARTIAL = re.compile(r"p:[0-9]+\.[0-9]+")  # app.spool's partial cursor (the server checks it)


class ClientError(Exception):
    """An API error: `status`, machine-readable `code`, the server's message, and the
    response's `headers` (a 503 `store_unavailable` or a 429 says in `Retry-After` when to
    come back)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        body: dict[str, Any],
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.headers: Mapping[str, str] = headers if headers is not None else {}


class RateLimitExhausted(ClientError):
    """Still rate limited after `attempts` tries, or the next wait (`next_wait` seconds) would
    exceed `max_wait_s`; `status` and `headers` are the last response's."""

    def __init__(
        self, response: requests.Response, attempts: int, next_wait: float | None, why: str
    ) -> None:
        try:
            body = response.json()
        except ValueError:
            body = None
        super().__init__(
            response.status_code,
            "rate_limit_exhausted",
            why,
            body if isinstance(body, dict) else {"error": "rate_limit_exhausted"},
        )
        self.response = response
        self.headers = dict(response.headers)
        self.attempts = attempts
        self.next_wait = next_wait


JITTER_S = 0.5  # added on top of a vendor-named wait: spreads retries, never undercuts them
BACKOFF_BASE_S = 1.0  # full-jitter exponential backoff when the response names no time


def call_with_backoff(
    fn: Callable[[], requests.Response],
    *,
    max_attempts: int = 5,
    max_wait_s: float = 300.0,
    sleep: Callable[[float], Any] = time.sleep,
    now: Callable[[], float] = time.time,
) -> requests.Response:
    """Call `fn` until its response is not a rate-limit refusal (429, or 503 with Retry-After).

    The wait is exactly what the response says (`Retry-After`, else `ratelimit-reset` and the
    vendor dialects `connectors.ratelimit.parse` understands; an epoch or a date there becomes
    a delta, never seconds to sleep) plus up to `JITTER_S`; only when it names no time, full
    jitter `uniform(0, BACKOFF_BASE_S * 2**(attempt-1))`. Raises `RateLimitExhausted` after
    `max_attempts` refusals, or at once when the named wait exceeds `max_wait_s`.
    """
    from connectors.ratelimit import parse  # here: `import app.client` stays light (no pydantic)

    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    attempt = 0
    while True:
        attempt += 1
        resp = fn()
        status = resp.status_code
        if status not in (429, 503):
            return resp
        rate = parse(resp.headers, status, resp.content, now=now())
        if status == 503 and rate.retry_after is None:
            return resp  # an outage, not a request to come back later: the caller decides
        told = rate.wait
        if told is None:
            wait = random.uniform(0.0, min(max_wait_s, BACKOFF_BASE_S * 2 ** (attempt - 1)))
        elif told > max_wait_s:
            raise RateLimitExhausted(
                resp, attempt, told, f"told to wait {told:g}s, more than max_wait_s={max_wait_s:g}"
            )
        else:
            wait = min(max_wait_s, told + random.uniform(0.0, JITTER_S))
        if attempt >= max_attempts:
            raise RateLimitExhausted(
                resp, attempt, wait, f"still rate limited ({status}) after {attempt} attempts"
            )
        sleep(wait)


class Client:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    def _request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        """Every endpoint answers a JSON object; an error status raises `ClientError`."""
        kw.setdefault("timeout", self.timeout)
        resp = self.session.request(method, self.base_url + path, **kw)
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"error": f"http_{resp.status_code}", "message": resp.text[:500]}
            raise ClientError(
                resp.status_code, str(body.get("error")), str(body.get("message")), body,
                resp.headers,
            )  # fmt: skip
        if resp.status_code == 204:
            return {}
        answer: dict[str, Any] = resp.json()
        return answer

    def call(
        self, tool: str, account_id: str, args: dict[str, Any] | None = None, **options: Any
    ) -> dict[str, Any]:
        """Enqueue; returns `{"job_id", "status": "queued", ...}` at once.

        Options: fields, callback_url, idempotency_key, max_bytes, delivery.
        """
        body = {"tool": tool, "account_id": account_id, "args": args or {}, **options}
        return self._request("POST", "/v1/jobs", json=body)

    def continue_(self, continuation: str, **options: Any) -> dict[str, Any]:
        """A new job returning exactly the records after a truncated result's last one."""
        return self._request("POST", "/v1/jobs", json={"continuation": continuation, **options})

    def get(self, job_id: str, wait_s: float = 0.0) -> dict[str, Any]:
        """The job's view; with `wait_s` (≤ 60) the server holds it until the state changes."""
        if not wait_s:
            return self._request("GET", f"/v1/jobs/{job_id}")
        return self._request(
            "GET",
            f"/v1/jobs/{job_id}",
            params={"wait": round(min(wait_s, 60.0), 3)},
            timeout=self.timeout + wait_s,
        )

    def result(self, job_id: str, block: int = 0) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}/result", params={"block": block})

    def partial(self, job_id: str, after: str = "p:0.0") -> dict[str, Any]:
        """The records spooled so far after the partial cursor `after` (at most one block),
        also while the job runs: `done`, `progress`, `status`, and the next `continuation`."""
        return self._request("GET", f"/v1/jobs/{job_id}/result", params={"after": after})

    def jobs(self, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The tenant's newest jobs, a line each."""
        params: dict[str, Any] = {"limit": limit, **({"state": state} if state else {})}
        jobs: list[dict[str, Any]] = self._request("GET", "/v1/jobs", params=params)["jobs"]
        return jobs

    def deliveries(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}/deliveries")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._request("POST", f"/v1/jobs/{job_id}/cancel")

    # consent: previews, approvals, policy, scoped keys

    def preview(self, job_id: str, block: int = 0) -> dict[str, Any]:
        """What a dry run or a job awaiting approval would do, per record (one block)."""
        return self._request("GET", f"/v1/jobs/{job_id}/preview", params={"block": block})

    def approvals(self, limit: int = 50) -> list[dict[str, Any]]:
        """The tenant's jobs awaiting approval, newest first."""
        rows: list[dict[str, Any]] = self._request("GET", "/v1/approvals", params={"limit": limit})[
            "approvals"
        ]
        return rows

    def approve(self, job_id: str, binding: str | None = None, reason: str = "") -> dict[str, Any]:
        """Approve (`approve` scope). Pass the `approval.binding` you reviewed: if the job's
        tool, account, arguments or preview differ from it, nothing applies (409)."""
        return self._request("POST", f"/v1/jobs/{job_id}/approve", json=_decision(binding, reason))

    def reject(self, job_id: str, reason: str = "", binding: str | None = None) -> dict[str, Any]:
        """Reject (`approve` scope): the job ends cancelled (`approval_rejected`)."""
        return self._request("POST", f"/v1/jobs/{job_id}/reject", json=_decision(binding, reason))

    def policy(self, account: str | None = None, key: str | None = None) -> dict[str, Any]:
        """The tenant's policy, or an account's or key's override, beside the defaults."""
        return self._request("GET", _policy_path(account, key))

    def set_policy(
        self, policy: dict[str, Any], account: str | None = None, key: str | None = None
    ) -> dict[str, Any]:
        """Replace that level's policy with `policy` (`{}` removes it; admin scope)."""
        return self._request("PUT", _policy_path(account, key), json=policy)

    def create_key(
        self,
        name: str = "",
        scopes: list[str] | None = None,
        tools: list[str] | None = None,
        accounts: list[str] | None = None,
    ) -> dict[str, Any]:
        """A scoped API key (admin scope); the answer is the only time `api_key` is shown."""
        body: dict[str, Any] = {"name": name, "tools": tools, "accounts": accounts}
        if scopes:
            body["scopes"] = scopes
        return self._request("POST", "/v1/keys", json=body)

    def keys(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._request("GET", "/v1/keys")["keys"]
        return rows

    def revoke_key(self, key_id: str) -> None:
        self._request("DELETE", f"/v1/keys/{key_id}")

    def wait(
        self, job_id: str, budget_s: float = 60.0, continuation: str | None = None
    ) -> dict[str, Any]:
        """Long-poll the job (one request per state change, none in between) for at most
        `budget_s`.

        Ended within the budget: its result with `done: True` (with `continuation`, a partial
        cursor from an earlier `wait`: the records after it instead, a block at a time; keep
        following `continuation` until `done` is true). Budget spent: the job's current state
        and `progress` plus the records spooled so far (since `continuation`, or since the
        start) and a partial `continuation` to pass to the next `wait`, with `done: False`.
        A truncated result's own continuation (`tqc_…`) starts a new job: `continue_()`."""
        if continuation is not None and continuation.startswith(CONTINUATION_PREFIX):
            raise ValueError(
                "that is a job continuation from a truncated result: continue_(continuation) "
                "starts a job for the records after it; wait() takes the partial "
                "`continuation` (p:…) of an earlier wait()"
            )
        if continuation is not None and not PARTIAL.fullmatch(continuation):
            raise ValueError(f"not a partial continuation (p:<block>.<run>): {continuation!r}")
        deadline = time.monotonic() + budget_s
        job = self.get(job_id)
        while True:
            if job["status"] in TERMINAL:
                if continuation is None:
                    return {**self.result(job_id), "done": True}
                return self.partial(job_id, continuation)
            left = deadline - time.monotonic()
            if left <= 0:
                part = self.partial(job_id, continuation or "p:0.0")
                if part["done"]:  # it ended between the two reads: the whole rest
                    return part if continuation else {**self.result(job_id), "done": True}
                return {**job, **part, "done": False}
            job = self.get(job_id, wait_s=left)

    # pipelines: a source read, transform stages and a sink write under one id

    def pipeline(self, definition: dict[str, Any]) -> dict[str, Any]:
        """Start a pipeline (`POST /v1/pipelines`, the definition as its body); returns
        `{"pipeline_id", "status", "location"}` at once. A definition that cannot run raises
        `ClientError` (422) naming the stage and the problem."""
        return self._request("POST", "/v1/pipelines", json=definition)

    def pipeline_get(self, pipeline_id: str) -> dict[str, Any]:
        """State, per-stage progress (in, out, rejected, state, job) and the state log."""
        return self._request("GET", f"/v1/pipelines/{pipeline_id}")

    def pipelines(self, limit: int = 50) -> list[dict[str, Any]]:
        """The tenant's newest pipelines, a line each."""
        page = self._request("GET", "/v1/pipelines", params={"limit": limit})
        rows: list[dict[str, Any]] = page["pipelines"]
        return rows

    def pipeline_cancel(self, pipeline_id: str) -> dict[str, Any]:
        return self._request("POST", f"/v1/pipelines/{pipeline_id}/cancel")

    def pipeline_rejected(
        self, pipeline_id: str, offset: int = 0, limit: int = 50
    ) -> dict[str, Any]:
        """A page of rejected records (stage, reason, the record as it entered that stage):
        `total`, `rejected`, and `next_offset` while there are more."""
        params = {"offset": offset, "limit": limit}
        return self._request("GET", f"/v1/pipelines/{pipeline_id}/rejected", params=params)

    def pipeline_retry_rejected(self, pipeline_id: str) -> dict[str, Any]:
        """Run an ended pipeline's rejected records again from the stages that rejected them,
        under the same id."""
        return self._request("POST", f"/v1/pipelines/{pipeline_id}/retry-rejected")

    def pipeline_rerun(self, pipeline_id: str, from_stage: int) -> dict[str, Any]:
        """A new pipeline from stage `from_stage` with the records that entered it in this
        one (nothing read again); returns the new one's `{"pipeline_id", "status"}`."""
        body = {"from_stage": from_stage}
        return self._request("POST", f"/v1/pipelines/{pipeline_id}/rerun", json=body)

    def pipeline_preview(self, pipeline_id: str, limit: int = 50) -> dict[str, Any]:
        """The first records a pipeline held for approval would write."""
        params = {"limit": limit}
        return self._request("GET", f"/v1/pipelines/{pipeline_id}/preview", params=params)

    def pipeline_approve(
        self, pipeline_id: str, binding: str | None = None, reason: str = ""
    ) -> dict[str, Any]:
        """Approve a pipeline's writes (an `approve`-scoped key): `binding` is the
        `approval.binding` you reviewed."""
        body = _decision(binding, reason)
        return self._request("POST", f"/v1/pipelines/{pipeline_id}/approve", json=body)

    def pipeline_reject(self, pipeline_id: str, reason: str = "") -> dict[str, Any]:
        body = _decision(None, reason)
        return self._request("POST", f"/v1/pipelines/{pipeline_id}/reject", json=body)

    def pipeline_wait(
        self,
        pipeline_id: str,
        budget_s: float = 300.0,
        *,
        poll_s: float = PIPELINE_POLL_S,
        sleep: Callable[[float], Any] = time.sleep,
    ) -> dict[str, Any]:
        """Read the pipeline every `poll_s` until it ends or `budget_s` is spent; returns the
        last view (its `status` says which: one of `PIPELINE_ENDED`, or still running)."""
        deadline = time.monotonic() + budget_s
        view = self.pipeline_get(pipeline_id)
        while view["status"] not in PIPELINE_ENDED:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sleep(min(poll_s, left))
            view = self.pipeline_get(pipeline_id)
        return view

    # connect: an end user links a vendor account through the hosted OAuth flow

    def oauth_app(
        self, vendor: str, client_id: str, client_secret: str, **options: Any
    ) -> dict[str, Any]:
        """Register (or replace) the tenant's OAuth app at `vendor` (`PUT /v1/oauth-apps/…`,
        admin scope); the answer never holds the secret. Options: scopes, redirect_uri,
        login_host (Salesforce), authorize_url, token_url, base_url, resources_url."""
        body = {"client_id": client_id, "client_secret": client_secret, **options}
        return self._request("PUT", f"/v1/oauth-apps/{vendor}", json=body)

    def connect_session(self, vendor: str, end_user_id: str, **options: Any) -> dict[str, Any]:
        """A single-use connect link for `end_user_id` (`POST /v1/connect/sessions`):
        `{"session_id", "connect_url", "expires_at"}`. Hand `connect_url` to the end user.

        Options: email, account_id (re-authorize that account: same id), scopes (a list),
        shop (Shopify), subdomain (Zendesk), events_url, expires_in (seconds), return_url
        (where the browser lands at the end; by default the API's own `/connect/done`
        page, under its public URL, which says how it went). Options given as None are left out."""
        email = options.pop("email", None)
        end_user = {"id": end_user_id, **({"email": email} if email else {})}
        body = {k: v for k, v in options.items() if v is not None}
        return self._request(
            "POST", "/v1/connect/sessions", json={"vendor": vendor, "end_user": end_user, **body}
        )

    def connect_session_get(self, session_id: str) -> dict[str, Any]:
        """How the session went: `status` `pending` (not used yet), `expired`, `connected` or
        `reactivated` (with `account_id`), or `failed` (with `error`, the code the browser
        got: `access_denied`, `expired_session`, `code_rejected` …)."""
        return self._request("GET", f"/v1/connect/sessions/{session_id}")


def _decision(binding: str | None, reason: str) -> dict[str, Any]:
    return {"reason": reason, **({"binding": binding} if binding is not None else {})}


def _policy_path(account: str | None, key: str | None) -> str:
    if account and key:
        raise ValueError("a policy level is the tenant, one account or one key, not both")
    if account:
        return f"/v1/accounts/{account}/policy"
    return f"/v1/keys/{key}/policy" if key else "/v1/policy"
