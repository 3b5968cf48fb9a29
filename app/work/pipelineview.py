"""What a pipeline looks like from outside: per stage, records in, out, rejected (and
dropped by a filter), its state, times and the job working on it; kept small, an agent
reads it (about 1.2 KB for five stages, measured by tests/api/test_mcp_pipelines.py)."""

from __future__ import annotations

from typing import Any

from app.kernel.states import TERMINAL
from app.kernel.timefmt import now_iso
from app.store import jobstore
from app.store import pipelines as store
from app.store.pipelines import COUNTS, ENDED, count_field, cursor_field
from app.work.pipelineplan import parse


def _iso(value: Any) -> str | None:
    return now_iso(float(value)) if value not in (None, "") else None


def brief(pid: str, p: dict[str, Any]) -> dict[str, Any]:
    """The pipeline's state, its stages and its rejected count."""
    spec = parse(p["definition"])
    kinds = ["source", *(s.kind for s in spec.stages), "sink"]
    out: dict[str, Any] = {
        "pipeline_id": pid,
        "status": p["status"],
        "name": p.get("name") or None,
        "created_at": _iso(p.get("created_at")),
        "started_at": _iso(p.get("started_at")),
        "finished_at": _iso(p.get("finished_at")),
        "stages": [_stage(pid, p, spec, kinds, i) for i in range(len(kinds))],
        "rejected": store.rejected_count(pid),
    }
    if p.get("rerun_of"):
        out["rerun_of"] = {"pipeline_id": p["rerun_of"], "from_stage": int(p["from_stage"])}
    if p.get("round") and int(p["round"]):
        out["retries"] = int(p["round"])
    if p.get("error"):
        out["error"] = p["error"]
    if p.get("approval"):
        out["approval"] = approval(p["approval"])
    last = store.log(pid, 1)
    out["reason"] = last[-1]["reason"] if last else ""
    return out


def view(pid: str, p: dict[str, Any]) -> dict[str, Any]:
    """The brief plus the recent state log."""
    return {**brief(pid, p), "history": store.log(pid, 20)}


def _stage(pid: str, p: dict[str, Any], spec: Any, kinds: list[str], i: int) -> dict[str, Any]:
    kind = kinds[i]
    out: dict[str, Any] = {"index": i, "kind": kind}
    if kind == "source":
        out.update(tool=spec.source.tool, account_id=spec.source.account_id)
    elif kind == "sink":
        out.update(tool=spec.sink.tool, account_id=spec.sink.account_id)
    elif kind == "enrich":
        e = spec.stages[i - 1].enrich
        out.update(tool=e.tool, account_id=e.account_id)
    counts = {n: int(p.get(count_field(i, n)) or 0) for n in COUNTS}
    if not counts["dropped"] and kind not in ("filter", "enrich", "transform"):
        del counts["dropped"]
    out.update(counts)
    job_id = _stage_job(p, i, kind)
    out["state"], job_status = _state(pid, p, i, kind, job_id)
    if job_id:
        out["job_id"] = job_id
        if job_status:
            out["job_status"] = job_status
    start = p.get("started_at") if kind == "source" else p.get(f"t:{i}:start")
    out["started_at"] = _iso(start)
    if out["state"] == "done":
        out["finished_at"] = _iso(p.get(f"t:{i}:end"))
    if kind in ("enrich", "sink"):
        out["queued_blocks"] = store.queue_length(pid, i)
    return out


def approval(approval: dict[str, Any]) -> dict[str, Any]:
    out = {k: approval[k] for k in ("state", "reason", "binding", "decided_by") if approval.get(k)}
    for k in ("expires_at", "decided_at"):
        if approval.get(k):
            out[k] = _iso(approval[k])
    return out


def _stage_job(p: dict[str, Any], i: int, kind: str) -> str | None:
    if kind == "source":
        return p.get("source_job") or None
    cur = p.get(cursor_field(i)) or ""
    return cur.split("|", 1)[1] if "|" in cur else p.get(f"last:{i}") or None


RESTING = ("waiting_rate_limit", "waiting_vendor", "needs_reauth", "awaiting_approval")


def _state(
    pid: str, p: dict[str, Any], i: int, kind: str, job_id: str | None
) -> tuple[str, str | None]:
    """The stage's state (pending, running, a resting job's state, idle: waiting for blocks,
    done, or the pipeline's failed / cancelled), and its job's status."""
    job = jobstore.load(job_id) if job_id else None
    status = str(job["status"]) if job else None
    if status is not None and status not in TERMINAL and p["status"] not in ENDED:
        return (status if status in RESTING else "running"), status
    if i == 0 and p.get("src_done") == "1":
        return "done", status
    awaiting = (p.get("approval") or {}).get("state") == "required"
    if kind == "sink" and awaiting and p["status"] not in ENDED:
        return "awaiting_approval", status
    if p["status"] in ENDED:
        failed = p["status"] in ("failed", "cancelled") and not _drained(pid, p, i + 1)
        return (str(p["status"]) if failed else "done"), status
    if _drained(pid, p, i + 1):
        return "done", status
    started = int(p.get(count_field(i, "in")) or 0) or p.get(f"t:{i}:start")
    return ("idle" if started else "pending"), status


def _drained(pid: str, p: dict[str, Any], upto: int) -> bool:
    """Every stage before `upto` has ended its work: nothing queued or running there."""
    return store.first_busy(pid, p, upto) >= upto
