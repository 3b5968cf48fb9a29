"""Auth and tenant isolation: a bearer key on every /v1 route; another tenant's objects are 404s.

Also: account secrets go in and never come out of the API.
"""

from __future__ import annotations

import uuid

import pytest

FAKE_JOB = "00000000-0000-4000-8000-000000000000"
ROUTES = [
    ("GET", "/v1/tools"),
    ("POST", "/v1/jobs"),
    ("GET", f"/v1/jobs/{FAKE_JOB}"),
    ("GET", f"/v1/jobs/{FAKE_JOB}/result"),
    ("POST", f"/v1/jobs/{FAKE_JOB}/cancel"),
    ("POST", "/v1/accounts"),
    ("GET", "/v1/accounts/acc_0000000000000000"),
    ("POST", "/v1/accounts/acc_0000000000000000/credentials"),
]
JOB_BODY = {"tool": "hubspot.contacts.list", "account_id": "acc_0000000000000000"}


def _assert_error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str), body
    if code:
        assert body["error"] == code, body
    return body


@pytest.mark.parametrize("method,path", ROUTES)
@pytest.mark.parametrize("auth", [None, "Bearer tq_not-a-real-key", "Basic dXNlcjpwdw==",
                                  "Bearer ", "tq_no-scheme"])
def test_every_v1_route_requires_a_valid_bearer_key(api_url, anon, method, path, auth):
    headers = {"Authorization": auth} if auth is not None else {}
    resp = anon.request(method, api_url + path, headers=headers, timeout=10,
                        json=JOB_BODY if method == "POST" else None)
    body = _assert_error(resp, 401, "unauthorized")
    assert "Bearer" in resp.headers.get("WWW-Authenticate", "")
    assert "tq_not-a-real-key" not in resp.text and "Traceback" not in resp.text
    assert set(body) == {"error", "message"}


def test_auth_is_checked_before_the_body(api_url, anon):
    """An unauthenticated caller learns nothing from validation errors."""
    resp = anon.post(f"{api_url}/v1/jobs", json={"nonsense": True}, timeout=10)
    _assert_error(resp, 401, "unauthorized")
    resp = anon.post(f"{api_url}/v1/jobs", data=b"{not json",
                     headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code in (400, 401), resp.text  # never a 5xx, never a leak
    _assert_error(resp, resp.status_code)


def test_other_tenant_gets_404_on_every_route(api, other_api, fresh_sandbox):
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"], max_bytes=4096)
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded" and done["truncated"] is True, done
    continuation = done["continuation"]
    job_id = job["job_id"]
    # The owner sees everything.
    assert api.get(f"/v1/jobs/{job_id}").status_code == 200
    assert api.get(f"/v1/jobs/{job_id}/result").status_code == 200
    assert api.get(f"/v1/accounts/{account}").status_code == 200

    # The other tenant gets exactly what it would get for objects that do not exist.
    missing_job = str(uuid.uuid4())
    pairs = [
        (other_api.get(f"/v1/jobs/{job_id}"), other_api.get(f"/v1/jobs/{missing_job}"),
         "job_not_found"),
        (other_api.get(f"/v1/jobs/{job_id}/result"),
         other_api.get(f"/v1/jobs/{missing_job}/result"), "job_not_found"),
        (other_api.get(f"/v1/jobs/{job_id}/result", params={"block": 0}),
         other_api.get(f"/v1/jobs/{missing_job}/result", params={"block": 0}), "job_not_found"),
        (other_api.post(f"/v1/jobs/{job_id}/cancel"),
         other_api.post(f"/v1/jobs/{missing_job}/cancel"), "job_not_found"),
        (other_api.get(f"/v1/accounts/{account}"),
         other_api.get("/v1/accounts/acc_ffffffffffffffff"), "account_not_found"),
        (other_api.post("/v1/jobs", {"tool": "hubspot.contacts.list", "account_id": account}),
         other_api.post("/v1/jobs", {"tool": "hubspot.contacts.list",
                                     "account_id": "acc_ffffffffffffffff"}),
         "account_not_found"),
        (other_api.post("/v1/jobs", {"continuation": continuation}),
         other_api.post("/v1/jobs", {"continuation": continuation[:-4] + "AAAA"}),
         "continuation_not_found"),
    ]
    for theirs, missing, code in pairs:
        body = _assert_error(theirs, 404, code)
        _assert_error(missing, 404, code)
        assert set(body) == {"error", "message"}, body
        # Nothing about the owner or the object's state leaks.
        for leak in (api.tenant["tenant_id"], "succeeded", "hubspot.contacts.list"):
            assert leak not in theirs.text, theirs.text

    # A cross-tenant cancel must not have touched the job; the continuation still works
    # for its owner.
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"
    resp = api.post("/v1/jobs", {"continuation": continuation})
    assert resp.status_code == 202, resp.text
    follow = resp.json()
    assert api.wait(follow["job_id"])["status"] == "succeeded"
    assert other_api.get(f"/v1/jobs/{follow['job_id']}").status_code == 404


def test_other_tenant_cannot_cancel_a_running_job(api, other_api, fresh_sandbox):
    fresh_sandbox.config(latency_ms=100)
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    resp = other_api.post(f"/v1/jobs/{job['job_id']}/cancel")
    _assert_error(resp, 404, "job_not_found")
    assert api.wait(job["job_id"])["status"] == "succeeded"


def _secret_strings(creds: dict) -> list[str]:
    return [creds[k] for k in ("access_token", "refresh_token", "client_secret") if k in creds]


def test_account_secrets_are_never_echoed(api, fresh_sandbox, r):
    client_secret = f"cs-{uuid.uuid4().hex}"
    tokens = fresh_sandbox.mint(client_id="cid-secret-test", client_secret=client_secret)
    creds = {"type": "oauth2", "access_token": tokens["access_token"],
             "refresh_token": tokens["refresh_token"], "expires_in": tokens["expires_in"],
             "client_id": "cid-secret-test", "client_secret": client_secret}
    secrets = _secret_strings(creds)
    assert len(secrets) == 3 and all(len(s) >= 8 for s in secrets)

    created = api.post("/v1/accounts", {"vendor": "hubspot", "name": "secretive",
                                        "base_url": fresh_sandbox.hubspot(),
                                        "credentials": creds})
    assert created.status_code == 201, created.text
    account = created.json()["account_id"]
    fetched = api.get(f"/v1/accounts/{account}")
    assert fetched.status_code == 200
    for resp in (created, fetched):
        for secret in secrets:
            assert secret not in resp.text
        for field in ("access_token", "refresh_token", "client_secret", "credentials"):
            assert field not in resp.json()
    assert fetched.json()["account_id"] == account and fetched.json()["vendor"] == "hubspot"

    # Jobs on the account and their results do not carry them either.
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"])
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded", done
    texts = [api.get(f"/v1/jobs/{job['job_id']}").text,
             api.get(f"/v1/jobs/{job['job_id']}/result").text]
    for text in texts:
        for secret in secrets:
            assert secret not in text

    # At rest they are sealed: no Redis value holds them in the clear.
    for key in r.scan_iter(match="*", count=1000):
        kind = r.type(key)
        if kind == "string":
            values = [r.get(key) or ""]
        elif kind == "hash":
            values = list(r.hgetall(key).values())
        else:
            continue
        for value in values:
            for secret in secrets:
                assert secret not in value, key


def test_invalid_account_credentials_are_not_echoed_in_errors(api):
    secret = f"leak-{uuid.uuid4().hex}"
    resp = api.post("/v1/accounts", {"vendor": "hubspot", "name": "x",
                                     "credentials": {"type": "oauth2", "access_token": secret,
                                                     "refresh_token": secret + "r"}})
    _assert_error(resp, 422)
    assert secret not in resp.text

    resp = api.post("/v1/accounts", {"vendor": "hubspot", "name": "x",
                                     "credentials": {"type": "bearer", "token": secret,
                                                     "extra": secret}})
    _assert_error(resp, 422)
    assert secret not in resp.text
