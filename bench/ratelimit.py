"""Rate limits: does toolqueue use a vendor's budget fully without tripping it?

One run against the sandbox's HubSpot double, with the rolling window compressed to 1 s.
Every upstream figure comes from the sandbox's own request log (GET /_sandbox/requests:
one entry per call, ``t`` = wall-clock arrival, ``status``), never from toolqueue itself;
the sandbox is reset between sections so each section's log and window stand alone.

1. Budget utilization. Four ``celery worker -P solo`` processes, four export-mode
   (``delivery: blocks``) ``hubspot.contacts.list`` jobs on ONE account, 500 pages of 100
   each (2,000 pages), budget 50 requests / rolling 1 s. Achieved rate = pages / wall, wall
   = first enqueue -> last job's ``finished_at``; utilization = achieved rate / 50.
   Targets: utilization >= 0.95, no 429 after the first window, and the log's most
   accepted calls in any rolling 1 s window <= 50. With a rolling window the first 50
   calls may go at once, so the ideal wall is (pages - 50) / 50 s and a perfect client
   scores slightly above 1.0.
2. The article's 90,000-contact HubSpot list: 900 pages at 100 requests / 1 s, one job,
   export mode (every page fetched), on one fresh, warmed ``-P solo`` worker. Targets:
   wall (enqueue -> ``finished_at``) / (pages / rate) <= 1.05; worker RSS growth (peak
   during the job - RSS just before it; VmRSS sampled every 20 ms, plus VmHWM after
   resetting it through /proc/<pid>/clear_refs where permitted) < 20 MB.
3. The article's naive agent loop on the same 900 pages and budget: one ``requests`` call
   per page, a 429 retried at once (no waiting); its upstream calls, 429s and wall time
   beside toolqueue's from section 2.

    .venv/bin/python bench/ratelimit.py [--quick]

``--quick`` scales down (125 pages per job in section 1, 300 pages in sections 2 and 3).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _harness as h

WINDOW_MS = 1000
TOKEN = "pat-na1-bench-ratelimit"  # static sandbox token (no "~": every scope)
LIST_PATH = "/hubspot/crm/v3/objects/contacts"
TOOL = "hubspot.contacts.list"
PER_PAGE = 100
DONE = ("succeeded", "failed", "cancelled")


# ---- the sandbox's own view ------------------------------------------------------------


def reset(sandbox: h.Sandbox) -> None:
    """Fresh log, windows and tokens; re-register the static token; wait one window."""
    sandbox.reset("hubspot", TOKEN, WINDOW_MS / 1000)


def cross_check(sandbox: h.Sandbox, st: LogStats) -> None:
    """The sandbox's own counters (since the last reset) must agree with the log."""
    counters = sandbox.stats()
    if (counters["requests"], counters["rate_limited"]) != (st.calls, st.limited):
        print(
            f"   WARNING: sandbox counters say {counters['requests']} calls / "
            f"{counters['rate_limited']} refusals since reset, the log {st.calls} / "
            f"{st.limited}"
        )


@dataclass(frozen=True)
class LogStats:
    """What the sandbox saw: every call, the accepted ones, the refused ones (429)."""

    calls: int
    accepted: int
    limited: int
    limited_after_first_window: int
    other: dict[int, int]  # statuses other than 200 and 429
    max_in_window: int  # most accepted calls in any rolling window

    @classmethod
    def of(cls, entries: Sequence[dict[str, Any]], window_s: float) -> LogStats:
        first = min((e["t"] for e in entries), default=0.0)
        ok = sorted(e["t"] for e in entries if e["status"] == 200)
        refused = [e["t"] for e in entries if e["status"] == 429]
        other: dict[int, int] = {}
        for e in entries:
            if e["status"] not in (200, 429):
                other[e["status"]] = other.get(e["status"], 0) + 1
        return cls(
            calls=len(entries),
            accepted=len(ok),
            limited=len(refused),
            limited_after_first_window=sum(t >= first + window_s for t in refused),
            other=other,
            max_in_window=max_in_window(ok, window_s),
        )


def max_in_window(times: Sequence[float], window_s: float) -> int:
    """Most sorted timestamps inside any half-open [t, t + window) (two pointers).

    The sandbox accepts a call when fewer than ``budget`` accepted calls lie in
    (now - window, now], so for a compliant log this never exceeds the budget.
    """
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# ---- workers and jobs ----------------------------------------------------------------------


def solo_workers(st: h.Stack, names: Iterable[str]) -> list[h.Proc]:
    """One ``-P solo`` worker process per name; returns once every one answers a ping."""
    return st.start_workers(("-P", "solo", "-n", f"{name}@%h") for name in names)


@dataclass(frozen=True)
class Run:
    t0: float  # wall clock of the first enqueue
    jobs: list[dict[str, Any]]

    @property
    def pages(self) -> int:
        return sum(j["pages"] for j in self.jobs)

    @property
    def wall(self) -> float:
        """First enqueue -> last job end (the worker's ``finished_at``, not our polling)."""
        ends = [j["finished_at"] or time.time() for j in self.jobs]
        return max(ends) - self.t0

    def statuses(self) -> str:
        counts: dict[str, int] = {}
        for j in self.jobs:
            label = j["status"] + (f" ({j['error']['code']})" if j.get("error") else "")
            counts[label] = counts.get(label, 0) + 1
        return ", ".join(f"{n} {s}" for s, n in counts.items())


def run_jobs(tenant: str, reqs: Sequence[dict[str, Any]], timeout: float) -> Run:
    """Enqueue every request at once, wait for all to end (cancel what outlives timeout)."""
    from app.services.jobs import JobCreate, cancel, enqueue
    from app.store.jobstore import load

    t0 = time.time()
    ids = [enqueue(tenant, JobCreate.model_validate(r))["job_id"] for r in reqs]
    deadline = time.monotonic() + timeout
    while True:
        jobs = [load(i) or {} for i in ids]
        if all(j.get("status") in DONE for j in jobs):
            return Run(t0, jobs)
        if time.monotonic() > deadline:
            for i, j in zip(ids, jobs, strict=True):
                if j.get("status") not in DONE:
                    print(
                        f"  TIMEOUT: job {i} still {j.get('status')} after {timeout:.0f}s; "
                        "cancelled"
                    )
                    cancel(tenant, i)
            return Run(t0, [load(i) or {} for i in ids])
        time.sleep(0.02)


# ---- memory ----------------------------------------------------------------------------------


def proc_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class RssSampler(threading.Thread):
    """Peak VmRSS of one process, sampled every ``interval`` seconds until ``stop``."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kb = proc_kb(pid, "VmRSS")
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(self.interval):
            self.peak_kb = max(self.peak_kb, proc_kb(self.pid, "VmRSS"))

    def stop(self) -> int:
        self.halt.set()
        self.join()
        self.peak_kb = max(self.peak_kb, proc_kb(self.pid, "VmRSS"))
        return self.peak_kb


def reset_hwm(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0, own processes); False if refused."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# ---- the naive loop --------------------------------------------------------------------------


def naive_loop(url: str, pages: int, timeout: float) -> tuple[int, int, int, float]:
    """The article's agent: one call per page, a 429 retried at once. -> (pages, calls,
    429s, wall s), counted client-side (cross-checked against the sandbox log)."""
    import requests

    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {TOKEN}"
    after: str | None = None
    done = calls = limited = 0
    t0 = time.perf_counter()
    while done < pages and time.perf_counter() - t0 < timeout:
        params = {"limit": PER_PAGE, **({"after": after} if after else {})}
        resp = s.get(url, params=params, timeout=30)
        calls += 1
        if resp.status_code == 429:
            limited += 1
            continue
        resp.raise_for_status()
        doc = resp.json()
        done += 1
        after = ((doc.get("paging") or {}).get("next") or {}).get("after")
        if not after:
            break
    return done, calls, limited, time.perf_counter() - t0


# ---- the benchmark ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer pages (about 30 s)")
    opts = parser.parse_args(argv)
    per_job, list_pages = (125, 300) if opts.quick else (500, 900)
    n_workers, budget1, budget2 = 4, 50, 100
    window_s = WINDOW_MS / 1000

    with h.stack(
        "tq-bench-rl-",
        sandbox=True,
        sandbox_rate_budget=budget1,
        sandbox_rate_window_ms=WINDOW_MS,
        sandbox_hubspot_contacts=per_job * PER_PAGE,
    ) as st:
        sandbox = st.sandbox
        reset(sandbox)
        tenant_info, account = h.tenant_account(
            "hubspot", f"{st.sandbox_url}/hubspot", {"type": "bearer", "token": TOKEN}
        )
        tenant = tenant_info["tenant_id"]
        req = {
            "tool": TOOL,
            "account_id": account,
            "args": {"limit": PER_PAGE},
            "delivery": "blocks",
        }

        # 1. four workers, four jobs, one account, 50 / 1 s ------------------------------
        sandbox.configure(
            rate_budget=budget1, rate_window_ms=WINDOW_MS, hubspot_contacts=per_job * PER_PAGE
        )
        workers = solo_workers(st, [f"w{i}" for i in range(n_workers)])
        run_jobs(tenant, [{**req, "max_pages": 2}] * n_workers, 60)  # warm-up
        reset(sandbox)
        total = n_workers * per_job
        ideal1 = (total - budget1) / budget1
        run1 = run_jobs(
            tenant,
            [{**req, "max_pages": per_job}] * n_workers,
            max(60.0, 2.5 * total / budget1),
        )
        stats1 = LogStats.of(sandbox.calls(run1.t0, "hubspot", LIST_PATH), window_s)
        cross_check(sandbox, stats1)
        h.stop(workers)
        rate1 = run1.pages / run1.wall
        util = rate1 / budget1
        print(
            f"1. budget utilization: {n_workers} workers (-P solo), {n_workers} export "
            f"jobs on one account, budget {budget1} req / {window_s:g} s rolling"
        )
        print(f"   jobs: {run1.statuses()}; pages {run1.pages} of {total}")
        print(
            f"   wall {run1.wall:.2f} s (first enqueue -> last job end); ideal "
            f"({total} - {budget1}) / {budget1} = {ideal1:.2f} s"
        )
        print(f"   achieved {rate1:.1f} pages/s (pages / wall) vs budget {budget1}/s")
        _print_log(stats1, run1.pages, budget1, window_s)
        print(
            f"   utilization {util:.3f} (target >= 0.95), 429s after first window: "
            f"{stats1.limited_after_first_window} (target 0)"
        )

        # 2. the 90,000-contact list, one fresh warmed worker, 100 / 1 s ----------------
        sandbox.configure(rate_budget=budget2, hubspot_contacts=list_pages * PER_PAGE)
        workers = solo_workers(st, ["solo"])
        pid = workers[0].pid
        run_jobs(tenant, [{**req, "max_pages": 5}], 60)  # warm-up
        reset(sandbox)
        rss0 = proc_kb(pid, "VmRSS")
        hwm_ok = reset_hwm(pid)
        sampler = RssSampler(pid)
        sampler.start()
        run2 = run_jobs(tenant, [{**req, "max_pages": list_pages}], 10 * list_pages / budget2)
        peak = sampler.stop()
        if hwm_ok:
            peak = max(peak, proc_kb(pid, "VmHWM"))
        stats2 = LogStats.of(sandbox.calls(run2.t0, "hubspot", LIST_PATH), window_s)
        cross_check(sandbox, stats2)
        h.stop(workers)
        ideal2 = list_pages / budget2
        growth_mb = (peak - rss0) / 1024
        print()
        print(
            f"2. {list_pages * PER_PAGE:,}-contact list: {list_pages} pages, one export "
            f"job, one -P solo worker, budget {budget2} req / {window_s:g} s rolling"
        )
        print(f"   job: {run2.statuses()}; pages {run2.pages} of {list_pages}")
        print(
            f"   wall {run2.wall:.2f} s (enqueue -> job end) / pages / rate "
            f"{ideal2:.2f} s = {run2.wall / ideal2:.3f} (target <= 1.05)"
        )
        _print_log(stats2, run2.pages, budget2, window_s)
        how = "VmRSS every 20 ms" + (" + VmHWM after clear_refs" if hwm_ok else "")
        print(
            f"   worker RSS {rss0 / 1024:.1f} MB before, peak {peak / 1024:.1f} MB "
            f"({how}): growth {growth_mb:.1f} MB (target < 20 MB)"
        )

        # 3. the article's naive loop, same pages, same budget ------------------------------
        reset(sandbox)
        t3 = time.time()
        n_pages, n_calls, n_429, n_wall = naive_loop(
            f"{st.sandbox_url}{LIST_PATH}", list_pages, 20 * list_pages / budget2
        )
        stats3 = LogStats.of(sandbox.calls(t3, "hubspot", LIST_PATH), window_s)
        cross_check(sandbox, stats3)
        print()
        print(
            f"3. the article's naive loop (429 retried at once) vs toolqueue, "
            f"{list_pages} pages at {budget2} req / {window_s:g} s"
        )
        print(
            f"   {'':30}{'pages':>7}{'upstream calls':>16}{'429s':>8}{'wall s':>9}"
            f"{'max ok/window':>15}"
        )
        for name, pages, st, wall in (
            ("naive loop", n_pages, stats3, n_wall),
            ("toolqueue (section 2)", run2.pages, stats2, run2.wall),
        ):
            print(
                f"   {name:30}{pages:7d}{st.calls:16d}{st.limited:8d}{wall:9.2f}"
                f"{st.max_in_window:15d}"
            )
        if (stats3.calls, stats3.limited, stats3.accepted) != (n_calls, n_429, n_pages):
            print(
                f"   WARNING: naive loop counted {n_calls} calls / {n_429} 429s / "
                f"{n_pages} pages, sandbox log says {stats3.calls} / {stats3.limited} / "
                f"{stats3.accepted}"
            )


def _print_log(st: LogStats, pages: int, budget: int, window_s: float) -> None:
    other = "".join(f", {n} x {s}" for s, n in sorted(st.other.items()))
    print(
        f"   sandbox log: {st.calls} upstream calls = {st.accepted} accepted + "
        f"{st.limited} x 429 ({st.limited - st.limited_after_first_window} in the first "
        f"window, {st.limited_after_first_window} after){other}"
    )
    check = "ok" if st.accepted == pages else f"MISMATCH: job records {pages} pages"
    print(f"   accepted calls vs pages the jobs recorded: {check}")
    print(
        f"   most accepted calls in any rolling {window_s:g} s window: {st.max_in_window} "
        f"(budget {budget})"
    )


if __name__ == "__main__":
    main()
