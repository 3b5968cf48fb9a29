"""The result cap on the real stack: HTTP API, Celery workers, Redis spool, vendor sandbox.

Every body is measured in UTF-8 bytes as it comes off the wire. Caps are computed from
`spool.reserve`, which depends only on the job id's length (a uuid4, 36 characters) and the
tool name, so a dummy uuid gives the reserve of a job that does not exist yet.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from app.kernel import keys
from app.store import spool

TOOL = "hubspot.contacts.list"
RESERVE = spool.reserve(str(uuid.uuid4()), TOOL)


def id_record(i: int) -> str:
    return spool.dumps({"id": str(i)})


def array_bytes(texts: list[str]) -> int:
    """What the packer budgets for a block: the JSON array of the spooled records."""
    return len(("[" + ",".join(texts) + "]").encode())


def cap_for(texts: list[str]) -> int:
    """The smallest max_bytes whose record budget holds exactly these records."""
    return RESERVE + array_bytes(texts)


def raw_result(api: Any, job_id: str, block: int = 0) -> bytes:
    resp = api.get(f"/v1/jobs/{job_id}/result", params={"block": block})
    assert resp.status_code == 200, resp.text
    return resp.content


def records_segment(body: bytes) -> bytes:
    """The raw `[...]` of records inside a result body (the envelope comes first)."""
    marker = b',"records":'
    assert body.count(marker) >= 1 and body.endswith(b"]}")
    return body[body.index(marker) + len(marker):-1]


def continue_job(api: Any, token: str) -> str:
    resp = api.post("/v1/jobs", {"continuation": token})
    assert resp.status_code == 202, resp.text
    return resp.json()["job_id"]


def finished(api: Any, job_id: str, max_bytes: int, r: Any = None) -> tuple[dict, bytes]:
    """Wait for success; return the parsed and raw body, checking the cap in bytes."""
    job = api.wait(job_id, timeout=60)
    assert job["status"] == "succeeded", job
    if r is not None:  # the job's own reserve is the one the test sized the cap with
        assert int(r.hget(keys.job(job_id), "reserve")) == RESERVE
    raw = raw_result(api, job_id)
    assert len(raw) <= max_bytes
    assert len(records_segment(raw)) <= max_bytes - RESERVE
    return json.loads(raw.decode("utf-8")), raw


def follow_chain(api: Any, first_job: str, max_bytes: int) -> list[tuple[dict, bytes]]:
    bodies = [finished(api, first_job, max_bytes)]
    while bodies[-1][0]["truncated"]:
        assert len(bodies) < 200, "continuation chain does not end"
        bodies.append(finished(api, continue_job(api, bodies[-1][0]["continuation"]),
                               max_bytes))
    assert "continuation" not in bodies[-1][0]
    return bodies


def direct_contacts(sandbox: Any, **params: Any) -> list[dict[str, Any]]:
    """Every contact, read straight from the sandbox with a token of our own."""
    token = sandbox.mint()["access_token"]
    out: list[dict[str, Any]] = []
    after = None
    while True:
        query = {"limit": 100, **params, **({"after": after} if after else {})}
        resp = requests.get(f"{sandbox.hubspot()}/crm/v3/objects/contacts", params=query,
                            headers={"Authorization": f"Bearer {token}"}, timeout=10)
        resp.raise_for_status()
        doc = resp.json()
        out += doc["results"]
        after = ((doc.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            return out


def after_offset(query: str) -> int:
    """The sandbox's opaque `after` cursor is base64 of the offset."""
    raw = parse_qs(query).get("after")
    if not raw:
        return 0
    value = unquote(raw[0])
    return int(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode().strip())


def contact_requests(sandbox: Any, since: int = 0) -> list[dict[str, Any]]:
    return [e for e in sandbox.requests()[since:]
            if e["path"].endswith("/crm/v3/objects/contacts") and e["kind"] == "api"]


def ids(body: dict) -> list[int]:
    return [int(rec["id"]) for rec in body["records"]]


# ---- exact boundary ----------------------------------------------------------------------


def test_cap_exact_boundary(api, fresh_sandbox, r):
    n = 300
    fresh_sandbox.config(hubspot_contacts=n)
    account = api.account(fresh_sandbox)
    exact = cap_for([id_record(i) for i in range(1, n + 1)])
    assert 4096 <= exact <= 131072
    fits = api.call(account_id=account, args={"limit": 100}, fields=["id"], max_bytes=exact)
    short = api.call(account_id=account, args={"limit": 100}, fields=["id"], max_bytes=exact - 1)

    body, raw = finished(api, fits["job_id"], exact, r)
    assert ids(body) == list(range(1, n + 1))
    assert body["truncated"] is False and "continuation" not in body
    assert body["record_count"] == n
    # the records fill their budget to the byte: the cap really was the boundary
    assert len(records_segment(raw)) == exact - RESERVE

    body, raw = finished(api, short["job_id"], exact - 1, r)
    assert ids(body) == list(range(1, n))
    assert body["truncated"] is True and body["continuation"].startswith("tqc_")
    assert len(records_segment(raw)) == exact - RESERVE - len(id_record(n)) - 1
    rest, _ = finished(api, continue_job(api, body["continuation"]), exact - 1, r)
    assert ids(rest) == [n]
    assert rest["truncated"] is False and "continuation" not in rest


# ---- multi-byte UTF-8 --------------------------------------------------------------------


def test_multibyte_records_measured_in_bytes_and_intact(api, fresh_sandbox):
    n, max_bytes = 400, 4096
    fresh_sandbox.config(hubspot_contacts=n)
    account = api.account(fresh_sandbox)
    fields = ["id", "properties.firstname"]
    expected = [spool.project(c, fields) for c in direct_contacts(fresh_sandbox)]
    assert len(expected) == n
    multibyte = [e for e in expected if len(e["properties"]["firstname"].encode())
                 > len(e["properties"]["firstname"])]
    assert len(multibyte) == n // 7  # every 7th contact, per the sandbox
    assert any(len(e["properties"]["firstname"].encode()) == 7 for e in multibyte)  # 𠮷乃

    job = api.call(account_id=account, args={"limit": 100}, fields=fields, max_bytes=max_bytes)
    bodies = follow_chain(api, job["job_id"], max_bytes)
    got = [rec for body, _ in bodies for rec in body["records"]]
    assert got == expected
    budget = max_bytes - RESERVE
    texts = [[spool.dumps(rec) for rec in body["records"]] for body, _ in bodies]
    for k, (_, raw) in enumerate(bodies):
        seg = records_segment(raw)
        seg.decode("utf-8")  # strict: no split or mangled sequences
        assert len(seg) == array_bytes(texts[k])
        if k + 1 < len(bodies):  # each body is full: the next record would cross the cap
            assert array_bytes([*texts[k], texts[k + 1][0]]) > budget
    # the bodies really carry multi-byte text, so bytes and characters differ
    assert all(len(",".join(t).encode()) > len(",".join(t)) for t in texts)


# ---- cap in the middle of a vendor page --------------------------------------------------


def test_continuation_resumes_mid_page(api, fresh_sandbox):
    first = 160  # page 2 of 100 breaks after record 160
    max_bytes = cap_for([id_record(i) for i in range(1, first + 1)])
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 100}, fields=["id"], max_bytes=max_bytes)
    body, _ = finished(api, job["job_id"], max_bytes)
    assert ids(body) == list(range(1, first + 1)) and body["truncated"] is True

    # the continuation job gets exactly as many following records as its budget holds
    budget = max_bytes - RESERVE
    expect = []
    while array_bytes([id_record(i) for i in [*expect, first + len(expect) + 1]]) <= budget:
        expect.append(first + len(expect) + 1)
    seen = len(fresh_sandbox.requests())
    body2, _ = finished(api, continue_job(api, body["continuation"]), max_bytes)
    assert ids(body2) == expect
    assert body2["truncated"] is True
    # it resumed at page 2 (offset 100) instead of paging from the start
    offsets = [after_offset(e["query"]) for e in contact_requests(fresh_sandbox, seen)]
    assert offsets == sorted({(i - 1) // 100 * 100 for i in [*expect, expect[-1] + 1]})
    assert offsets[0] == 100
    body3, _ = finished(api, continue_job(api, body2["continuation"]), max_bytes)
    assert ids(body3)[0] == expect[-1] + 1


# ---- a single record over the cap --------------------------------------------------------


class InflatingProxy:
    """Forwards to the sandbox's HubSpot API, inflating one record's `notes` past any cap
    (the sandbox's own records are at most ~700 bytes, under a 4096-byte cap's budget)."""

    def __init__(self, upstream: str, big_id: str, size: int) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                resp = requests.get(upstream + self.path, timeout=10, headers={
                    "Authorization": self.headers.get("Authorization", "")})
                body = resp.content
                if resp.status_code == 200 and urlsplit(self.path).path.endswith("/contacts"):
                    doc = resp.json()
                    for rec in doc["results"]:
                        if rec["id"] == big_id:
                            rec["properties"]["notes"] = ("x" * size)
                    body = json.dumps(doc).encode()
                self.send_response(resp.status_code)
                for k, v in resp.headers.items():
                    if k.lower().startswith("x-hubspot") or k.lower() == "content-type":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def inflating_proxy(fresh_sandbox):
    proxy = InflatingProxy(fresh_sandbox.hubspot(), big_id="3", size=5000)
    yield proxy
    proxy.server.shutdown()


def test_record_larger_than_cap_fails_with_advice(api, fresh_sandbox, inflating_proxy):
    fresh_sandbox.config(hubspot_contacts=10)
    account = api.account(fresh_sandbox, base_url=inflating_proxy.url)
    args = {"limit": 2, "properties": ["email", "firstname", "lastname", "notes", "company"]}

    job = api.call(account_id=account, args=args, max_bytes=4096)
    done = api.wait(job["job_id"])
    assert done["status"] == "failed", done
    err = done["error"]
    assert err["code"] == "record_too_large"
    assert "record 3 " in err["message"] and "`fields`" in err["message"]
    assert "4096" in err["message"]
    raw = raw_result(api, job["job_id"])
    assert len(raw) <= 4096
    body = json.loads(raw)
    assert body["status"] == "failed" and body["error"]["code"] == "record_too_large"
    assert ids(body) == [1, 2]  # what came before the oversized record is kept, in order

    # the advice works: projecting fewer fields gets every record through the same vendor
    job = api.call(account_id=account, args=args, fields=["id", "properties.email"],
                   max_bytes=4096)
    body, _ = finished(api, job["job_id"], 4096)
    assert ids(body) == list(range(1, 11)) and body["truncated"] is False


# ---- continuation chain ------------------------------------------------------------------


def test_continuation_chain_returns_every_record_once_in_order(api, fresh_sandbox):
    max_bytes = 8192
    account = api.account(fresh_sandbox)
    job = api.call(account_id=account, args={"limit": 37}, fields=["id", "properties.email"],
                   max_bytes=max_bytes)
    bodies = follow_chain(api, job["job_id"], max_bytes)
    assert len(bodies) >= 5
    assert [i for body, _ in bodies for i in ids(body)] == list(range(1, 1001))
    assert all(body["truncated"] for body, _ in bodies[:-1])
    tokens = [body["continuation"] for body, _ in bodies[:-1]]
    assert len(set(tokens)) == len(tokens)


# ---- export mode: consecutive capped blocks ----------------------------------------------


def test_blocks_delivery(api, fresh_sandbox):
    max_bytes = 8192
    account = api.account(fresh_sandbox)
    fields = ["id", "properties.email", "properties.firstname"]
    job = api.call(account_id=account, args={"limit": 100}, fields=fields,
                   max_bytes=max_bytes, delivery="blocks")
    done = api.wait(job["job_id"])
    assert done["status"] == "succeeded" and done["truncated"] is False, done
    first = json.loads(raw_result(api, job["job_id"], 0))
    n = first["blocks"]
    assert n > 1 and first["total_records"] == 1000 and first["truncated"] is False
    assert done["progress"]["blocks"] == n

    budget = max_bytes - RESERVE
    blocks = []
    for k in range(n):
        raw = raw_result(api, job["job_id"], k)
        assert len(raw) <= max_bytes
        body = json.loads(raw)
        assert (body["block"], body["blocks"], body["total_records"]) == (k, n, 1000)
        assert body["record_count"] == len(body["records"]) > 0
        blocks.append([spool.dumps(rec) for rec in body["records"]])
        assert array_bytes(blocks[-1]) <= budget
    assert [int(json.loads(t)["id"]) for b in blocks for t in b] == list(range(1, 1001))
    for k in range(n - 1):  # greedy: a block ends only where the next record would not fit
        assert array_bytes([*blocks[k], blocks[k + 1][0]]) > budget

    for bad in (n, n + 5):
        resp = api.get(f"/v1/jobs/{job['job_id']}/result", params={"block": bad})
        assert resp.status_code == 404 and resp.json()["error"] == "block_not_found"
    assert api.get(f"/v1/jobs/{job['job_id']}/result", params={"block": -1}).status_code == 422
