"""Python client for agent processes: call now, fetch later.

    client = Client("http://127.0.0.1:8000", api_key)
    job = client.call("hubspot.contacts.list", account_id, {"limit": 100}, fields=["id"])
    outcome = client.wait(job["job_id"], budget_s=60)   # result, or state + progress

Trusted in-process agents may call `app.jobs.enqueue` directly instead.
"""

from __future__ import annotations

import time
from typing import Any

import requests

TERMINAL = ("succeeded", "failed", "cancelled")


class ClientError(Exception):
    """An API error: `status`, machine-readable `code`, and the server's message."""

    def __init__(self, status: int, code: str, message: str, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body


class Client:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {api_key}"

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        resp = self.session.request(method, self.base_url + path, timeout=self.timeout, **kw)
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"error": f"http_{resp.status_code}", "message": resp.text[:500]}
            raise ClientError(
                resp.status_code, str(body.get("error")), str(body.get("message")), body
            )
        return resp.json()

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

    def get(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}")

    def result(self, job_id: str, block: int = 0) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}/result", params={"block": block})

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._request("POST", f"/v1/jobs/{job_id}/cancel")

    def wait(self, job_id: str, budget_s: float = 60.0, poll_s: float = 0.5) -> dict[str, Any]:
        """The result once the job ends within the budget; otherwise the job's current
        state and progress (`{"status", "progress", "done": False, ...}`)."""
        deadline = time.monotonic() + budget_s
        while True:
            job = self.get(job_id)
            if job["status"] in TERMINAL:
                return {**self.result(job_id), "done": True}
            left = deadline - time.monotonic()
            if left <= 0:
                return {**job, "done": False}
            time.sleep(min(poll_s, left))
