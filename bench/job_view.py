"""What an agent reads about a running job: the size of its status views under pacing.

A 150-page HubSpot job paced by the account's budget (the portal allows 4 requests a second;
a second job shares the account) waits before most pages. Printed: the history's entries,
the bytes of GET /v1/jobs/{id} and of MCP `job_status` (the same handler the MCP server
runs), mid-job and at the end.
Target: MCP `job_status` under 2 KiB.

    .venv/bin/python bench/job_view.py [pages]
"""

from __future__ import annotations

import asyncio
import sys
import time

import _harness as h

MCP_STATUS_TARGET = 2048


def main(pages: int = 150) -> None:
    with h.stack(sandbox=True, api=True, workers=[("-c", "2")]) as st:
        import requests

        from app.mcp.server import JobStatusArgs, job_status
        from app.store import apikeys

        st.sandbox.configure(hubspot_contacts=pages * 10, rate_budget=4, rate_window_ms=1000)
        token = "bench-token"
        st.sandbox.reset("hubspot", token, 0)
        tenant, account = h.tenant_account(
            "hubspot", f"{st.sandbox_url}/hubspot", {"type": "bearer", "token": token}
        )
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {tenant['api_key']}"
        body = {"tool": "hubspot.contacts.list", "account_id": account, "args": {"limit": 10},
                "fields": ["id"]}  # fmt: skip
        job_id = http.post(f"{st.api_url}/v1/jobs", json=body, timeout=10).json()["job_id"]
        http.post(f"{st.api_url}/v1/jobs", json=body, timeout=10)  # shares the budget

        def sizes() -> tuple[str, int, int, int]:
            view = http.get(f"{st.api_url}/v1/jobs/{job_id}", timeout=10)
            who = apikeys.full(tenant["tenant_id"])
            result = asyncio.run(job_status(who, JobStatusArgs(job_id=job_id)))
            mcp = len(result.content[0].text.encode())  # type: ignore[union-attr]
            entries = view.json().get("history_total", len(view.json()["history"]))
            return view.json()["status"], entries, len(view.content), mcp

        started = time.monotonic()
        mid: tuple[str, int, int, int] | None = None
        while True:
            state = sizes()
            if mid is None and time.monotonic() - started > 20:
                mid = state
            if state[0] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.5)
        end = state

    print(f"job view sizes, a {pages}-page job paced at 4 requests / s (shared by two jobs):")
    print(f"{'':14}{'state':>12}{'history':>10}{'GET bytes':>12}{'MCP bytes':>12}")
    for label, row in (("mid-job", mid), ("ended", end)):
        if row:
            print(f"{label:14}{row[0]:>12}{row[1]:>10}{row[2]:>12}{row[3]:>12}")
    verdict = "met" if end[3] < MCP_STATUS_TARGET else "MISSED"
    print(f"MCP job_status at the end: {end[3]} bytes (target < {MCP_STATUS_TARGET}): {verdict}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 150)
