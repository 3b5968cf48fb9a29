"""Fair under load (issue #17): lanes and the bulk lane's fair share, against same-run baselines.

One throwaway stack (LocalRedis, the sandbox, beat, the API) and, in turn, two worker
layouts with the same total concurrency (default 4):

- lanes: a worker per lane group as `toolqueue up` runs them (app/cli/stack.py WORKERS),
  `-Q interactive`, `-Q bulk`, `-Q webhooks,housekeeping`, concurrency split `--layout`
  (default 1,2,1);
- FIFO: one worker consuming every lane. Bulk steps still pass the fair share's offer and
  turn, so to measure one FIFO queue honestly every export runs under ONE tenant id: with a
  single tenant, start-time fair queueing orders steps by offer, i.e. first come, first
  served, and the worker serves interactive and bulk steps from the same processes.

HubSpot sandbox, 20 ms latency per request, no rate limit (its budget set out of reach).

a. Interactive: a one-page `hubspot.contacts.list` job, POST -> `finished_at`, one at a
   time: idle p50/p90, then p90/max while another tenant's 24 exports (`delivery: blocks`,
   200 pages each) run. Targets: p90 <= 1 s and <= 5x idle p90.
b. Two tenants, A with 40 exports and B with 2 (`--b-pages` each): B's time (its first POST
   -> its last `finished_at`) vs B alone on the idle stack (target <= 1.5x); A's throughput
   (A's pages / A's first POST -> A's last `finished_at`) vs the same load on the FIFO
   layout (target >= 0.95x).
c. Under a.'s load: webhook delivery (the probes' `callback_url`, a loopback receiver: its
   2xx - the job's `finished_at`; target p50 <= 50 ms), and wake-up lateness of jobs held
   by a rate limit (Stripe, its own sandbox budget of 3 calls per 2 s: the vendor's next
   call after the 429, from the sandbox's log, - the `retry_at` the job showed; target
   p99 <= 1.5 s).
d. HTTP enqueue (no workers run): POST /v1/jobs from 8 and 32 concurrent keep-alive
   clients, uvicorn `--workers 1` (today's layout) vs 2 and 4 processes: jobs/s, p50/p99.
   Target >= 2x the 1-process throughput.

    .venv/bin/python bench/fairness.py [--quick] [--layout 1,2,1] [--a-exports 24] ...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import _harness as h
import orjson
from webhooks import Receiver

TERMINAL = ("succeeded", "failed", "cancelled")
LATENCY_MS = 20
PER_PAGE = 100
STRIPE_BUDGET, STRIPE_WINDOW_MS = 3, 2000
RECONNECT = 50  # requests per HTTP connection in d.


@dataclass
class Tenant:
    """A tenant with a HubSpot (or Stripe) account and an HTTP session with its key."""

    tenant_id: str
    account: str
    key: str
    http: Any = field(repr=False, default=None)


def make_tenant(st: h.Stack, name: str, vendor: str = "hubspot") -> Tenant:
    import requests

    token = st.sandbox.mint(vendor, expires_in=86400)["access_token"]
    created, account = h.tenant_account(
        vendor, f"{st.sandbox_url}/{vendor}", {"type": "bearer", "token": token}, tenant=name
    )
    http = requests.Session()
    http.trust_env = False
    http.headers["Authorization"] = f"Bearer {created['api_key']}"
    return Tenant(created["tenant_id"], account, created["api_key"], http)


def post(api: str, t: Tenant, body: dict[str, Any]) -> str:
    resp = t.http.post(f"{api}/v1/jobs", json={"account_id": t.account, **body}, timeout=30)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["job_id"])


def export(api: str, t: Tenant, pages: int) -> str:
    return post(
        api,
        t,
        {
            "tool": "hubspot.contacts.list",
            "args": {"limit": PER_PAGE},
            "fields": ["id", "properties.email"],
            "delivery": "blocks",
            "max_pages": pages,
        },
    )


def record(job_id: str) -> dict[str, Any]:
    from app.store.jobstore import load

    job = load(job_id)
    assert job is not None, job_id
    return dict(job)


def finished(job_id: str) -> bool:
    return record(job_id)["status"] in TERMINAL


def wait_done(job_ids: Sequence[str], timeout: float = 900) -> list[dict[str, Any]]:
    out = []
    for job_id in job_ids:
        h.wait_until(partial(finished, job_id), timeout, 0.05)
        job = record(job_id)
        assert job["status"] == "succeeded", (job_id, job["status"], job.get("error"))
        out.append(job)
    return out


def probe(api: str, t: Tenant, callback: str | None = None) -> tuple[str, float]:
    """One interactive one-page job: (its id, POST -> its `finished_at`, in s)."""
    body: dict[str, Any] = {
        "tool": "hubspot.contacts.list",
        "args": {"limit": 10},
        "fields": ["id"],
        "max_pages": 1,
    }
    if callback:
        body["callback_url"] = callback
    t0 = time.time()
    job_id = post(api, t, body)
    job = wait_done([job_id], 120)[0]
    return job_id, job["finished_at"] - t0


def while_running(busy: Callable[[], bool], fn: Callable[[], None], gap_s: float) -> None:
    while busy():
        fn()
        time.sleep(gap_s)


# ---- the worker layouts -------------------------------------------------------------------


def start_lanes(st: h.Stack, split: Sequence[int]) -> None:
    groups = ("interactive", "bulk", "webhooks,housekeeping")
    names = ("interactive", "bulk", "service")
    st.workers = st.start_workers(
        [
            ("-Q", q, f"--concurrency={c}", "-n", f"{n}@%h")
            for q, c, n in zip(groups, split, names, strict=True)
        ]
    )


def start_fifo(st: h.Stack, total: int) -> None:
    st.workers = st.start_workers([(f"--concurrency={total}", "-n", "fifo@%h")])


def stop_workers(st: h.Stack) -> None:
    h.stop(st.workers, 60)
    st.workers = []


# ---- a + c: interactive, webhooks and wake-ups while 24 exports run ------------------------


def idle_probes(api: str, t: Tenant, n: int) -> list[float]:
    for _ in range(5):  # warm-up: every worker process, connections, caches
        probe(api, t)
    return [probe(api, t)[1] for _ in range(n)]


def loaded(
    st: h.Stack, api: str, exporter: Tenant, prober: Tenant, parker: Tenant, args: Any
) -> dict[str, Any]:
    receiver = Receiver()
    st.sandbox.configure(hubspot_contacts=args.a_pages * PER_PAGE)
    exports = [export(api, exporter, args.a_pages) for _ in range(args.a_exports)]
    started = time.time()
    busy = lambda: not all(finished(j) for j in exports)  # noqa: E731
    probes: list[tuple[float, str, float]] = []  # (POST time, job, POST -> end)
    waits: list[tuple[float, float]] = []  # (retry_at, the vendor's next call)

    def interactive() -> None:
        t0 = time.time()
        job_id, took = probe(api, prober, receiver.url)
        if busy():  # only probes that ran entirely under load count
            probes.append((t0, job_id, took))

    def parked() -> None:
        waits.extend(held_job(st, api, parker))

    threads = [
        threading.Thread(target=while_running, args=(busy, fn, gap), daemon=True)
        for fn, gap in ((interactive, 0.2), (parked, 0.0))
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    ended = max(j["finished_at"] for j in wait_done(exports))
    h.wait_until(lambda: len(receiver.hits) >= len(probes), 30)
    hits = dict(receiver.hits)
    hooks = [(hits[f"msg_{j}"] - record(j)["finished_at"]) * 1000 for _, j, _ in probes]
    return {
        "took": [took for _, _, took in probes],
        "hooks": hooks,
        "late": [call - retry_at for retry_at, call in waits if retry_at < ended],
        "wall": ended - started,
        "pages": args.a_exports * args.a_pages,
    }


def held_job(st: h.Stack, api: str, t: Tenant) -> list[tuple[float, float]]:
    """A Stripe list job of 5 pages against a budget of 3 per 2 s: each `retry_at` it showed
    (polled from its record), with the sandbox's next Stripe call after it was set."""
    job_id = post(
        api,
        t,
        {"tool": "stripe.customers.list", "args": {"limit": 10}, "fields": ["id"], "max_pages": 5},
    )
    seen: list[tuple[float, float]] = []  # (retry_at, when it was seen)
    while True:
        job = record(job_id)
        if job["status"] in TERMINAL:
            break
        at = job.get("retry_at")
        if at and (not seen or seen[-1][0] != at):
            seen.append((at, time.time()))
        time.sleep(0.01)
    assert job["status"] == "succeeded", job
    calls = (
        [c["t"] for c in st.sandbox.calls(seen[0][1] - 5, "stripe", "/stripe/v1/customers")]
        if seen
        else []
    )
    out = []
    for retry_at, noticed in seen:
        after = [c for c in calls if c >= noticed - 0.01]  # the next call follows the write
        if after:
            out.append((retry_at, after[0]))
    return out


# ---- b: two tenants sharing the bulk lane ---------------------------------------------------


def two_tenants(api: str, a: Tenant, b: Tenant, args: Any) -> dict[str, Any]:
    """A's exports, then B's right after (B may be A itself: the FIFO baseline)."""
    t0 = time.time()
    a_jobs = [export(api, a, args.b_pages) for _ in range(args.b_a_exports)]
    tb = time.time()
    b_jobs = [export(api, b, args.b_pages) for _ in range(2)]
    a_done, b_done = wait_done(a_jobs), wait_done(b_jobs)
    a_end = max(j["finished_at"] for j in a_done)
    b_end = max(j["finished_at"] for j in b_done)
    pages = args.b_a_exports * args.b_pages
    return {
        "b_took": b_end - tb,
        "b_waits": sorted(j["started_at"] - tb for j in b_done),  # for a bulk slot
        "a_job_s": statistics.median(j["finished_at"] - j["started_at"] for j in a_done),
        "a_steps": statistics.median(j["seq"] + 1 for j in a_done),
        "a_rate": pages / (a_end - t0),
        "all_rate": (pages + 2 * args.b_pages) / (max(a_end, b_end) - t0),
        "a_took": a_end - t0,
    }


def b_alone(api: str, b: Tenant, pages: int) -> float:
    tb = time.time()
    jobs = [export(api, b, pages) for _ in range(2)]
    return float(max(j["finished_at"] for j in wait_done(jobs))) - tb


# ---- d: HTTP enqueue -----------------------------------------------------------------------


async def _client(port: int, raw: bytes, until: float, out: list[float], errors: list[int]) -> None:
    """One HTTP/1.1 client posting `raw` back to back on a keep-alive connection it opens
    anew every RECONNECT requests, as a crowd of agents would: uvicorn's processes share one
    listening socket, and a connection stays with the process that accepted it. Lean on
    purpose: the bench shares the machine's cores with the server."""
    while time.perf_counter() < until:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(RECONNECT):
                if time.perf_counter() >= until:
                    break
                t0 = time.perf_counter()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                if int(head[9:12]) == 202:
                    out.append(time.perf_counter() - t0)
                else:
                    errors.append(int(head[9:12]))
        finally:
            writer.close()


def http_load(
    port: int, raw: bytes, clients: int, seconds: float
) -> tuple[list[float], int, float]:
    """`clients` concurrent clients for `seconds`: (latencies of the 202s, non-202s, wall)."""

    async def run() -> tuple[list[float], list[int], float]:
        out: list[float] = []
        errors: list[int] = []
        t0 = time.perf_counter()
        until = t0 + seconds
        await asyncio.gather(*(_client(port, raw, until, out, errors) for _ in range(clients)))
        return out, errors, time.perf_counter() - t0

    out, errors, wall = asyncio.run(run())
    return out, len(errors), wall


def enqueue_http(
    st: h.Stack,
    t: Tenant,
    procs: Sequence[int],
    clients: Sequence[int],
    seconds: float,
    rounds: int,
) -> dict[tuple[int, int], tuple[float, float, float, int]]:
    """Per (processes, clients): jobs/s, p50 and p99 in ms, non-202 answers; `rounds` rounds
    over the process counts in turn, so drift (Redis growing, another load on the machine)
    hits every count alike."""
    body = orjson.dumps(
        {
            "tool": "hubspot.contacts.list",
            "account_id": t.account,
            "args": {"limit": 100},
            "fields": ["id", "properties.email"],
        }
    )
    runs: dict[tuple[int, int], list[tuple[list[float], int, float]]] = {}
    for _ in range(rounds):
        for n in procs:
            port = h.port()
            raw = (
                f"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: "
                f"Bearer {t.key}\r\nContent-Type: application/json\r\nContent-Length: "
                f"{len(body)}\r\n\r\n"
            ).encode() + body
            api = spawn_api(st, port, n)
            try:
                http_load(port, raw, max(clients), 2.0)  # warm-up: every process, every pool
                for c in clients:
                    runs.setdefault((n, c), []).append(http_load(port, raw, c, seconds))
            finally:
                h.stop([api])
                st.procs.remove(api)
    out = {}
    for cell, results in runs.items():
        lat = [x for r in results for x in r[0]]
        wall = sum(r[2] for r in results)
        out[cell] = (
            len(lat) / wall,
            h.pct(lat, 0.5) * 1000,
            h.pct(lat, 0.99) * 1000,
            sum(r[1] for r in results),
        )
    return out


def spawn_api(st: h.Stack, port: int, workers: int) -> h.Proc:
    proc = st.spawn(
        [
            "-m",
            "uvicorn",
            "app.api.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--workers",
            str(workers),
        ]
    )
    h.wait_http(f"http://127.0.0.1:{port}/openapi.json")
    return proc


# ---- the run ---------------------------------------------------------------------------------


def parse() -> Any:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short smoke run (small sizes)")
    p.add_argument(
        "--layout",
        default="1,2,1",
        help="lanes: interactive,bulk,service processes (their sum: the FIFO's)",
    )
    p.add_argument(
        "--also",
        default="2,4,2",
        help="b. also on these lanes layouts (;-separated; '' none); 2,4,2 is "
        "`toolqueue up --concurrency 4`",
    )
    p.add_argument("--idle-probes", type=int, default=30)
    p.add_argument("--a-exports", type=int, default=24)
    p.add_argument("--a-pages", type=int, default=200)
    p.add_argument("--b-a-exports", type=int, default=40, help="tenant A's exports in b.")
    p.add_argument("--b-pages", type=int, default=100, help="pages of each export in b.")
    p.add_argument("--api-procs", default="1,2,4")
    p.add_argument("--clients", default="8,32")
    p.add_argument("--seconds", type=float, default=5.0, help="each HTTP load in d.")
    p.add_argument("--rounds", type=int, default=2, help="rounds over the API layouts in d.")
    p.add_argument(
        "--step-budget",
        type=float,
        default=0,
        help="step_budget_s of the stack (0: the setting's default)",
    )
    p.add_argument(
        "--api-workers",
        type=int,
        default=0,
        help="uvicorn processes of the API in a.-c. (0: the api_workers setting)",
    )
    p.add_argument("--skip", default="", help="sections to skip: any of a, b, d, fifo-a")
    args = p.parse_args()
    if args.quick:
        args.idle_probes, args.a_exports, args.a_pages = 10, 6, 50
        args.b_a_exports, args.b_pages, args.seconds, args.rounds = 10, 20, 2.0, 1
    args.split = [int(x) for x in args.layout.split(",")]
    args.others = [[int(x) for x in lay.split(",")] for lay in args.also.split(";") if lay]
    args.skip = set(args.skip.split(","))
    return args


def main() -> None:
    args = parse()
    total = sum(args.split)
    print(
        f"fairness bench: {os.cpu_count()} CPUs, HubSpot sandbox {LATENCY_MS} ms latency, no "
        f"rate limit; lanes {args.layout} (interactive,bulk,service) vs FIFO {total}"
    )
    res: dict[str, Any] = {"lanes": {}}
    started = time.monotonic()
    opts = {"step_budget_s": args.step_budget} if args.step_budget else {}
    with h.stack(sandbox=True, beat=True, sandbox_rate_budget=100_000_000, **opts) as st:
        from app.kernel.settings import get_settings

        s = get_settings()
        print(
            f"  step_budget_s {s.step_budget_s:g}, pages_per_step {s.pages_per_step}, "
            f"bulk_after_pages {s.bulk_after_pages}, bulk_after_s {s.bulk_after_s:g}"
        )
        api_port = h.port()
        res["api_workers"] = args.api_workers or s.api_workers
        spawn_api(st, api_port, res["api_workers"])
        api = f"http://127.0.0.1:{api_port}"
        st.sandbox.configure(
            latency_ms=LATENCY_MS,
            rate_budgets={"stripe": STRIPE_BUDGET},
            rate_window_ms=STRIPE_WINDOW_MS,
            volumes={"stripe.customers": 1000},
        )
        ten = {n: make_tenant(st, n) for n in ("prober", "exporter", "a", "b")}
        parker = make_tenant(st, "parker", "stripe")
        if not {"a", "b"} <= args.skip:
            for split in [args.split, *args.others] if "b" not in args.skip else [args.split]:
                lay: dict[str, Any] = {}
                res["lanes"][",".join(map(str, split))] = lay
                start_lanes(st, split)
                lay["idle"] = idle_probes(api, ten["prober"], args.idle_probes)
                if "a" not in args.skip and split == args.split:
                    lay["loaded"] = loaded(st, api, ten["exporter"], ten["prober"], parker, args)
                if "b" not in args.skip:
                    st.sandbox.configure(hubspot_contacts=args.b_pages * PER_PAGE)
                    lay["b_alone"] = b_alone(api, ten["b"], args.b_pages)
                    lay["fair"] = two_tenants(api, ten["a"], ten["b"], args)
                stop_workers(st)
            start_fifo(st, total)
            fifo: dict[str, Any] = {"idle": idle_probes(api, ten["prober"], args.idle_probes)}
            res["fifo"] = fifo
            if not {"a", "fifo-a"} & args.skip:
                fifo["loaded"] = loaded(st, api, ten["exporter"], ten["prober"], parker, args)
            if "b" not in args.skip:
                st.sandbox.configure(hubspot_contacts=args.b_pages * PER_PAGE)
                b_alone(api, ten["a"], args.b_pages)  # the same warm-up as on the lanes
                fifo["b"] = two_tenants(api, ten["a"], ten["a"], args)
            stop_workers(st)
        if "d" not in args.skip:
            procs = [int(x) for x in args.api_procs.split(",")]
            clients = [int(x) for x in args.clients.split(",")]
            beat = [p for p in st.procs if "beat" in str(p.args)]
            h.stop(beat)  # its sweep would resend every never-started job meanwhile
            res["http"] = enqueue_http(st, ten["prober"], procs, clients, args.seconds, args.rounds)
    report(res, args)
    print(f"(whole run {time.monotonic() - started:.0f} s)")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(res: dict[str, Any], args: Any) -> None:
    main_lay = res["lanes"].get(args.layout, {})
    fifo = res.get("fifo", {})
    if "idle" in main_lay:
        idle = main_lay["idle"]
        i90 = h.pct(idle, 0.9)
        print(
            f"a. interactive one-page job, POST -> end (API: uvicorn --workers "
            f"{res['api_workers']}):"
        )
        print(
            f"   idle, lanes {args.layout}: p50 {h.pct(idle, 0.5) * 1000:.0f} ms, p90 "
            f"{i90 * 1000:.0f} ms ({len(idle)} probes); FIFO: p50 "
            f"{h.pct(fifo['idle'], 0.5) * 1000:.0f} ms, p90 "
            f"{h.pct(fifo['idle'], 0.9) * 1000:.0f} ms"
        )
        for name, ld in (("lanes", main_lay.get("loaded")), ("FIFO", fifo.get("loaded"))):
            if not ld:
                continue
            took = ld["took"]
            p90 = h.pct(took, 0.9)
            print(
                f"   under another tenant's {args.a_exports} exports x {args.a_pages} pages, "
                f"{name}: p50 {h.pct(took, 0.5) * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, max "
                f"{max(took) * 1000:.0f} ms ({len(took)} probes; exports "
                f"{ld['pages'] / ld['wall']:.0f} pages/s over {ld['wall']:.0f} s)"
            )
            if name == "lanes":
                print(
                    f"     p90 / idle p90 = {p90 / i90:.1f}x (targets: p90 <= 1 s "
                    f"{verdict(p90 <= 1)}, <= 5x idle p90 {verdict(p90 <= 5 * i90)})"
                )
    if "b" in fifo:
        base = fifo["b"]
        print(
            f"b. tenant A {args.b_a_exports} exports, then tenant B 2, {args.b_pages} pages each; "
            f"FIFO baseline: one worker, every lane, concurrency {sum(args.split)}, every "
            f"export under one tenant id (B's queued after A's)"
        )
        print(
            f"   FIFO: A {base['a_rate']:.0f} pages/s ({base['a_took']:.1f} s), B's two "
            f"{base['b_took']:.2f} s, A+B {base['all_rate']:.0f} pages/s"
        )
        for layout, lay in res["lanes"].items():
            if "fair" not in lay:
                continue
            fair = lay["fair"]
            rb, ra = fair["b_took"] / lay["b_alone"], fair["a_rate"] / base["a_rate"]
            print(
                f"   lanes {layout}: B alone {lay['b_alone']:.2f} s, B beside A "
                f"{fair['b_took']:.2f} s = {rb:.2f}x (target <= 1.5x {verdict(rb <= 1.5)}); "
                f"A {fair['a_rate']:.0f} pages/s ({fair['a_took']:.1f} s) = {ra:.2f}x FIFO "
                f"(target >= 0.95x {verdict(ra >= 0.95)}); A+B "
                f"{fair['all_rate'] / base['all_rate']:.2f}x"
            )
            print(
                f"     B's exports waited {', '.join(f'{w:.2f}' for w in fair['b_waits'])} s for "
                f"a bulk slot; an A export ran {fair['a_job_s']:.2f} s in {fair['a_steps']:g} "
                f"step(s) (a running step is never preempted)"
            )
    if main_lay.get("loaded"):
        print(
            f"c. under a.'s load, lanes {args.layout}"
            + (" (FIFO beside)" if fifo.get("loaded") else "")
            + ":"
        )
        for name, ld in (("lanes", main_lay["loaded"]), ("FIFO", fifo.get("loaded"))):
            if not ld:
                continue
            hooks, late = ld["hooks"], ld["late"]
            p50 = statistics.median(hooks)
            print(
                f"   {name}: webhook delivery (end -> receiver 2xx), {len(hooks)} jobs: p50 "
                f"{p50:.1f} ms, p90 {h.pct(hooks, 0.9):.1f} ms, max {max(hooks):.1f} ms"
                + (f" (target p50 <= 50 ms {verdict(p50 <= 50)})" if name == "lanes" else "")
            )
            if late:
                p99 = h.pct(late, 0.99)
                print(
                    f"   {name}: rate-limit wake-up lateness (vendor's next call - retry_at), "
                    f"{len(late)} waits: p50 {h.pct(late, 0.5) * 1000:.0f} ms, p99 "
                    f"{p99 * 1000:.0f} ms, max {max(late) * 1000:.0f} ms"
                    + (f" (target p99 <= 1.5 s {verdict(p99 <= 1.5)})" if name == "lanes" else "")
                )
            else:
                print(f"   {name}: rate-limit wake-up lateness: no waits measured")
    if "http" in res:
        out = res["http"]
        procs = sorted({n for n, _ in out})
        clients = sorted({c for _, c in out})
        print(
            f"d. HTTP enqueue, POST /v1/jobs, {args.rounds} x {args.seconds:g} s per cell, "
            f"keep-alive clients reconnecting every {RECONNECT} requests (no workers run):"
        )
        for c in clients:
            base_rate = out[(procs[0], c)][0]
            for n in procs:
                rate, p50, p99, errors = out[(n, c)]
                extra = f", {errors} non-202" if errors else ""
                print(
                    f"   {c:3d} clients, uvicorn --workers {n}: {rate:6.0f} jobs/s, p50 "
                    f"{p50:6.1f} ms, p99 {p99:6.1f} ms, {rate / base_rate:.2f}x{extra}"
                )
        best = max(procs, key=lambda n: sum(out[(n, c)][0] for c in clients))
        ratios = [out[(best, c)][0] / out[(procs[0], c)][0] for c in clients]
        print(
            f"   best: --workers {best} ({', '.join(f'{r:.2f}x' for r in ratios)} at "
            f"{', '.join(map(str, clients))} clients; target >= 2x "
            f"{verdict(min(ratios) >= 2)})"
        )


if __name__ == "__main__":
    main()
