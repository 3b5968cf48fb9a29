"""`toolqueue pipeline run|status|watch|cancel|rejected|retry-rejected|list`: pipelines over
the HTTP API, as the API key's tenant.

`run FILE` takes a definition (the body of `POST /v1/pipelines`) as JSON or YAML and prints
the new pipeline's id. `watch` (and `run --watch`) draws a per-stage table on stderr until the
pipeline ends, redrawn twice a second on a terminal and printed as plain text when a stage
changes otherwise; it exits 0 when the pipeline succeeded, 3 when it ended `partly_done` (read
the rejected records) and 1 when it failed or was cancelled. `render_pipeline` is that table,
for anyone who draws one (the demo).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import yaml

from app.cli.common import client as _client
from app.cli.common import show as _print

if TYPE_CHECKING:
    from app.client import Client

EXIT_CODES = {"succeeded": 0, "partly_done": 3}  # an ended pipeline's exit code; else 1
REFRESH_S = 0.5  # the live table's redraw period (~2 Hz)
PLAIN_EVERY_S = 5.0  # not a terminal: counts alone reprint the table at most this often
COLUMNS = ("#", "kind", "tool", "state", "in", "out", "rejected", "dropped")
NUMERIC = frozenset({"#", "in", "out", "rejected", "dropped"})


def exit_code(status: str) -> int:
    """0 succeeded, 3 partly_done, 1 failed or cancelled (or anything else)."""
    return EXIT_CODES.get(status, 1)


def load_definition(path: str) -> dict[str, Any]:
    """A pipeline definition from a JSON or YAML file (`-`: stdin). JSON is tried first (a
    `.yaml`/`.yml` file goes straight to YAML), so either works whatever the file's name."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        sys.exit(f"error: cannot read {path}: {exc.strerror or exc}")
    if not path.endswith((".yaml", ".yml")):
        try:
            return _mapping(json.loads(text), path)
        except json.JSONDecodeError as exc:
            if path.endswith(".json"):
                sys.exit(f"error: {path} is not valid JSON: {exc}")
    return _mapping(_yaml(text, path), path)


def _yaml(text: str, path: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        sys.exit(f"error: {path} is neither valid JSON nor valid YAML: {exc}")


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        sys.exit(f"error: {path}: a pipeline definition is an object with source, stages, sink")
    return value


def render_pipeline(view: dict[str, Any]) -> str:
    """A pipeline's view (`GET /v1/pipelines/{id}`, or the brief one) as plain text: a head
    line, a row per stage (stage, kind, tool, state, records in/out/rejected/dropped), then
    what ended it or why it waits."""
    rows = [[str(c) for c in COLUMNS], *(_row(s) for s in view["stages"])]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    lines = [_head(view)]
    for row in rows:
        cells = [
            cell.rjust(w) if name in NUMERIC else cell.ljust(w)
            for name, cell, w in zip(COLUMNS, row, widths, strict=True)
        ]
        lines.append("  " + "  ".join(cells).rstrip())
    return "\n".join(lines + _foot(view))


def _head(view: dict[str, Any]) -> str:
    head = f"pipeline {view['pipeline_id']}  {view['status']}"
    if view.get("name"):
        head += f"  {view['name']!r}"
    if view.get("rerun_of"):
        r = view["rerun_of"]
        head += f"  (re-run of {r['pipeline_id']} from stage {r['from_stage']})"
    if view.get("retries"):
        head += f"  retry {view['retries']}"
    return head


def _row(stage: dict[str, Any]) -> list[str]:
    dropped = stage.get("dropped")
    return [
        str(stage["index"]),
        stage["kind"],
        stage.get("tool") or "-",
        stage["state"],
        f"{stage['in']:,}",
        f"{stage['out']:,}",
        f"{stage['rejected']:,}",
        f"{dropped:,}" if dropped is not None else "",
    ]


def _foot(view: dict[str, Any]) -> list[str]:
    out = []
    if view.get("rejected"):
        out.append(
            f"{view['rejected']:,} rejected: toolqueue pipeline rejected {view['pipeline_id']}"
        )
    error = view.get("error")
    if error:
        out.append(
            f"error {error.get('code')}: {error.get('message')}"
            if isinstance(error, dict)
            else f"error: {error}"
        )
    if view.get("reason"):
        out.append(f"reason: {view['reason']}")
    return out


def watch_pipeline(
    client: Client,
    pipeline_id: str,
    stream: IO[str] | None = None,
    *,
    live: bool | None = None,
    refresh_s: float = REFRESH_S,
) -> dict[str, Any]:
    """Draw the pipeline until it ends; returns its last view. On a terminal (`live`; default:
    whether `stream` is one) a table redrawn every `refresh_s`; otherwise plain text, the
    table printed again when the pipeline or a stage changes state (and at most every
    PLAIN_EVERY_S for counts alone)."""
    from app.client import PIPELINE_ENDED

    out = stream or sys.stderr
    view = client.pipeline_get(pipeline_id)
    if out.isatty() if live is None else live:
        return _live(client, view, out, refresh_s)
    shown, states, at = "", "", 0.0
    while True:
        text, now = render_pipeline(view), time.monotonic()
        now_states = _states(view)
        ended = view["status"] in PIPELINE_ENDED
        if text != shown and (ended or now_states != states or now - at >= PLAIN_EVERY_S):
            print(text + "\n", file=out, flush=True)
            shown, states, at = text, now_states, now
        if ended:
            return view
        time.sleep(refresh_s)
        view = client.pipeline_get(pipeline_id)


def _states(view: dict[str, Any]) -> str:
    return " ".join([view["status"], *(s["state"] for s in view["stages"])])


def _live(client: Client, view: dict[str, Any], out: IO[str], refresh_s: float) -> dict[str, Any]:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from app.client import PIPELINE_ENDED

    console = Console(file=out, force_terminal=True)  # `live` may say so of a pipe, too
    with Live(console=console, auto_refresh=False, transient=False) as screen:
        while True:
            screen.update(Text(render_pipeline(view)), refresh=True)
            if view["status"] in PIPELINE_ENDED:
                return view
            time.sleep(refresh_s)
            view = client.pipeline_get(view["pipeline_id"])


def cmd_run(args: argparse.Namespace) -> int:
    definition = load_definition(args.file)
    client = _client(args)
    started = client.pipeline(definition)
    print(started["pipeline_id"], flush=True)
    if started.get("idempotent_replay"):
        print("(the pipeline this idempotency_key already started)", file=sys.stderr)
    if not args.watch:
        return 0
    return exit_code(watch_pipeline(client, started["pipeline_id"])["status"])


def cmd_status(args: argparse.Namespace) -> int:
    view = _client(args).pipeline_get(args.pipeline_id)
    if args.table:
        print(render_pipeline(view))
    else:
        _print(view)
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Live view until the pipeline ends; exit 0 succeeded, 3 partly_done, 1 otherwise."""
    return exit_code(watch_pipeline(_client(args), args.pipeline_id)["status"])


def cmd_cancel(args: argparse.Namespace) -> int:
    _print(_client(args).pipeline_cancel(args.pipeline_id))
    return 0


def cmd_rejected(args: argparse.Namespace) -> int:
    _print(_client(args).pipeline_rejected(args.pipeline_id, args.offset, args.limit))
    return 0


def cmd_retry_rejected(args: argparse.Namespace) -> int:
    client = _client(args)
    view = client.pipeline_retry_rejected(args.pipeline_id)
    if not args.watch:
        _print(view)
        return 0
    return exit_code(watch_pipeline(client, args.pipeline_id)["status"])


def cmd_approve(args: argparse.Namespace) -> int:
    """Approve the binding the pipeline shows now (after printing what it would write), or
    the one given: a binding names the pipeline as it was reviewed."""
    client = _client(args)
    binding = args.binding
    if binding is None:
        preview = client.pipeline_preview(args.pipeline_id, limit=3)
        approval = preview.get("approval") or {}
        binding = approval.get("binding")
        what = f"{preview['queued_records']} record(s) queued for {preview['sink']['tool']}"
        print(f"approving {what} ({approval.get('reason', '')}); first: "
              f"{preview['records'][:1]}", file=sys.stderr)  # fmt: skip
    _print(client.pipeline_approve(args.pipeline_id, binding, args.reason))
    return 0


def cmd_reject(args: argparse.Namespace) -> int:
    _print(_client(args).pipeline_reject(args.pipeline_id, args.reason))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for row in _client(args).pipelines(args.limit):
        print(f"{row['pipeline_id']}  {row['status']:<11}  {row['created_at'] or '':<24}  "
              f"{row['name'] or ''}".rstrip())  # fmt: skip
    return 0


Commands = argparse._SubParsersAction  # what `add_subparsers` returns (argparse names it so)


def add_pipeline(sub: Commands) -> None:
    """`toolqueue pipeline …`."""
    group = sub.add_parser("pipeline", help="run and follow pipelines: a source, stages, a sink")
    cmds = group.add_subparsers(dest="sub", required=True)
    run = cmds.add_parser("run", help="start a pipeline from a JSON or YAML file; prints its id")
    run.add_argument("file", help="the definition (POST /v1/pipelines body); - reads stdin")
    run.add_argument("--watch", action="store_true", help=_WATCH_HELP)
    run.set_defaults(fn=cmd_run)
    st = cmds.add_parser("status", help="a pipeline's state and per-stage progress (JSON)")
    st.add_argument("pipeline_id")
    st.add_argument("--table", action="store_true", help="the watch table instead of JSON")
    st.set_defaults(fn=cmd_status)
    wt = cmds.add_parser("watch", help="a live per-stage table until it ends; " + _EXITS)
    wt.add_argument("pipeline_id")
    wt.set_defaults(fn=cmd_watch)
    cancel = cmds.add_parser("cancel", help="stop every stage")
    cancel.add_argument("pipeline_id")
    cancel.set_defaults(fn=cmd_cancel)
    rj = cmds.add_parser("rejected", help="rejected records: stage, reason, record (JSON)")
    rj.add_argument("pipeline_id")
    rj.add_argument("--limit", type=int, default=50, help="at most this many (≤ 200)")
    rj.add_argument("--offset", type=int, default=0, help="from this one (`next_offset`)")
    rj.set_defaults(fn=cmd_rejected)
    rr = cmds.add_parser("retry-rejected", help="run the rejected records again")
    rr.add_argument("pipeline_id")
    rr.add_argument("--watch", action="store_true", help=_WATCH_HELP)
    rr.set_defaults(fn=cmd_retry_rejected)
    ap = cmds.add_parser("approve", help="approve a pipeline's writes (an approve-scoped key)")
    ap.add_argument("pipeline_id")
    ap.add_argument("--binding", help="the approval.binding you reviewed (default: its current)")
    ap.add_argument("--reason", default="", help="recorded in the audit log")
    ap.set_defaults(fn=cmd_approve)
    rjt = cmds.add_parser("reject", help="reject a pipeline's writes: it is cancelled")
    rjt.add_argument("pipeline_id")
    rjt.add_argument("--reason", default="", help="recorded in the audit log")
    rjt.set_defaults(fn=cmd_reject)
    ls = cmds.add_parser("list", help="the tenant's newest pipelines")
    ls.add_argument("--limit", type=int, default=50)
    ls.set_defaults(fn=cmd_list)


_EXITS = "exit 0 succeeded, 3 partly_done, 1 failed or cancelled"
_WATCH_HELP = f"then the live table until it ends; {_EXITS}"
