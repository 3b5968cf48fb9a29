"""`toolqueue` command line: run the stack, manage tenants, keys, accounts and policy, call
tools, approve writes, run pipelines."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from app.cli import connect, consent, pipeline
from app.cli.common import client as _client
from app.cli.common import show as _print
from app.kernel.errors import ToolqueueError
from app.kernel.settings import get_settings
from app.kernel.states import TERMINAL, JobState


def cmd_up(args: argparse.Namespace) -> int:
    from app.cli.stack import run_foreground

    return run_foreground(get_settings(), sandbox=not args.no_sandbox, concurrency=args.concurrency)


def cmd_demo(args: argparse.Namespace) -> int:
    from app.cli.demo import run

    return run()


def cmd_config(args: argparse.Namespace) -> int:
    public = get_settings().public()
    if args.json:
        _print(public)
    else:
        for key, value in public.items():
            print(f"{key:28} {value}")
    return 0


def cmd_tenants_create(args: argparse.Namespace) -> int:
    from app.store.tenants import create_tenant

    try:
        _print(create_tenant(args.name, args.rate_limit, args.rate_window))
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    return 0


def cmd_tenants_plan(args: argparse.Namespace) -> int:
    from app.store.tenants import set_plan

    try:
        _print(set_plan(args.tenant_id, bulk_weight=args.bulk_weight,
                        bulk_concurrency=args.bulk_concurrency))  # fmt: skip
    except (ValueError, ToolqueueError) as exc:
        sys.exit(f"error: {exc}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from app.kernel.crypto import reseal_all
    from app.store.oauth import seal_legacy_clients

    seal_legacy_clients()  # MCP client registrations kept whole before their secrets were sealed
    _print(reseal_all())
    return 0


def cmd_accounts_add(args: argparse.Namespace) -> int:
    if args.credentials:
        creds = json.loads(args.credentials)
    else:
        creds = {"type": "bearer", "token": os.environ.get("TOOLQUEUE_VENDOR_TOKEN", "")}
    body = {"vendor": args.vendor, "name": args.name, "credentials": creds}
    if args.base_url:
        body["base_url"] = args.base_url
    _print(_client(args)._request("POST", "/v1/accounts", json=body))
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    client = _client(args)
    options: dict[str, Any] = {}
    if args.fields:
        options["fields"] = args.fields.split(",")
    for name in ("callback_url", "idempotency_key", "max_bytes", "max_pages", "delivery"):
        if getattr(args, name):
            options[name] = getattr(args, name)
    started = time.perf_counter()
    job = client.call(args.tool, args.account, json.loads(args.args), **options)
    elapsed = (time.perf_counter() - started) * 1000
    if not args.wait:
        _print(job)
        return 0
    print(
        f"enqueued {job['job_id']} in {elapsed:.1f} ms; waiting up to {args.wait:g}s",
        file=sys.stderr,
    )
    from app.cli.watch import watch

    view = watch(client, job["job_id"], budget_s=args.wait)  # the live view, on stderr
    if view["status"] in TERMINAL:
        _print({**client.result(job["job_id"]), "done": True})
    else:
        _print({**view, "done": False})
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    _print(_client(args).get(args.job_id))
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Live view until the job ends; exit 0 if it succeeded, 1 otherwise."""
    from app.cli.watch import watch

    return 0 if watch(_client(args), args.job_id)["status"] == JobState.SUCCEEDED else 1


def cmd_jobs_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    rows = _client(args).jobs(args.state, args.limit)
    table = Table("job", "tool", "state", "pages", "records", "updated")
    for row in rows:
        table.add_row(
            row["job_id"], row["tool"], row["status"], f"{row['pages']:,}",
            f"{row['records']:,}", row["updated_at"] or "",
        )  # fmt: skip
    Console().print(table)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from app.mcp.server import run_stdio

    if args.api_key:  # --api-key wins over TOOLQUEUE_API_KEY, as for the API commands
        os.environ["TOOLQUEUE_API_KEY"] = args.api_key
    run_stdio()
    return 0


def cmd_result(args: argparse.Namespace) -> int:
    _print(_client(args).result(args.job_id, args.block))
    return 0


def parser() -> argparse.ArgumentParser:
    s = get_settings()
    p = argparse.ArgumentParser(prog="toolqueue", description=__doc__)
    p.add_argument(
        "--api-url",
        default=os.environ.get("TOOLQUEUE_API_URL", f"http://{s.api_host}:{s.api_port}"),
    )
    p.add_argument("--api-key", default=os.environ.get("TOOLQUEUE_API_KEY"))
    sub = p.add_subparsers(dest="command", required=True)
    _operations(sub)
    _administration(sub)
    _jobs(sub)
    consent.add_approvals(sub)
    pipeline.add_pipeline(sub)
    connect.add_connect(sub)
    _mcp(sub)
    return p


Commands = argparse._SubParsersAction  # what `add_subparsers` returns (argparse names it so)


def _operations(sub: Commands) -> None:
    """Run the stack or the demo; show the settings."""
    up = sub.add_parser("up", help="run Redis (local default), worker, beat, API, Flower, sandbox")
    up.add_argument("--no-sandbox", action="store_true")
    up.add_argument("--concurrency", type=int, default=4)
    up.set_defaults(fn=cmd_up)
    sub.add_parser("demo", help="start the stack and play an agent end to end").set_defaults(
        fn=cmd_demo
    )
    cfg = sub.add_parser("config", help="effective settings, secrets masked")
    cfg.add_argument("--json", action="store_true")
    cfg.set_defaults(fn=cmd_config)


def _administration(sub: Commands) -> None:
    """Tenants and their policy, API keys and secret keys, vendor accounts."""
    tenants = sub.add_parser("tenants").add_subparsers(dest="sub", required=True)
    tc = tenants.add_parser("create", help="prints tenant_id, api_key, webhook_secret (once)")
    tc.add_argument("name")
    tc.add_argument(
        "--rate-limit",
        type=int,
        metavar="N",
        help="API requests per window for this tenant, 0: unlimited (default: settings)",
    )
    tc.add_argument(
        "--rate-window", type=float, metavar="S", help="the window in seconds (default: settings)"
    )
    tc.set_defaults(fn=cmd_tenants_create)
    tp = tenants.add_parser(
        "plan", help="the tenant's share of the bulk lane: weight and concurrency limit"
    )
    tp.add_argument("tenant_id")
    tp.add_argument("--bulk-weight", type=float, metavar="W", help="share weight (default 1)")
    tp.add_argument(
        "--bulk-concurrency", type=int, metavar="N", help="bulk steps at once, 0: no limit"
    )
    tp.set_defaults(fn=cmd_tenants_plan)
    consent.add_policy(tenants)

    keys_ = sub.add_parser("keys").add_subparsers(dest="sub", required=True)
    keys_.add_parser(
        "rotate",
        help="re-seal stored tokens and webhook secrets under the first TOOLQUEUE_SECRET_KEY",
    ).set_defaults(fn=cmd_keys_rotate)
    consent.add_keys(keys_)

    accounts = sub.add_parser("accounts").add_subparsers(dest="sub", required=True)
    aa = accounts.add_parser("add", help="connect a vendor account")
    aa.add_argument("--vendor", required=True)
    aa.add_argument("--name", required=True)
    aa.add_argument("--base-url")
    aa.add_argument(
        "--credentials",
        help="JSON credentials object (oauth2 or bearer); "
        "default: bearer token from TOOLQUEUE_VENDOR_TOKEN",
    )
    aa.set_defaults(fn=cmd_accounts_add)


def _jobs(sub: Commands) -> None:
    """Call a tool, follow and read its job, list jobs."""
    call = sub.add_parser("call", help="enqueue a tool call")
    call.add_argument("tool")
    call.add_argument("--account", required=True)
    call.add_argument("--args", default="{}", help="JSON object of the tool's args")
    call.add_argument("--fields", help="comma-separated projection, e.g. id,properties.email")
    call.add_argument("--callback-url")
    call.add_argument("--idempotency-key")
    call.add_argument("--max-bytes", type=int)
    call.add_argument("--max-pages", type=int, help="page budget; a continuation carries on")
    call.add_argument("--delivery", choices=["single", "blocks"])
    call.add_argument("--wait", type=float, default=0, help="seconds to wait for the result")
    call.set_defaults(fn=cmd_call)

    st = sub.add_parser("status", help="a job's state and progress")
    st.add_argument("job_id")
    st.set_defaults(fn=cmd_status)
    rs = sub.add_parser("result", help="a finished job's result body")
    rs.add_argument("job_id")
    rs.add_argument("--block", type=int, default=0)
    rs.set_defaults(fn=cmd_result)
    wt = sub.add_parser("watch", help="a live view of a job until it ends")
    wt.add_argument("job_id")
    wt.set_defaults(fn=cmd_watch)
    jobs_ = sub.add_parser("jobs").add_subparsers(dest="sub", required=True)
    jl = jobs_.add_parser("list", help="the tenant's newest jobs")
    jl.add_argument("--state", choices=[s.value for s in JobState])
    jl.add_argument("--limit", type=int, default=50)
    jl.set_defaults(fn=cmd_jobs_list)


def _mcp(sub: Commands) -> None:
    mcp = sub.add_parser("mcp", help="serve MCP on stdin/stdout as the API key's tenant")
    mcp.add_argument(
        "--stdio", action="store_true", required=True, help="the transport (HTTP: the API's /mcp)"
    )
    mcp.set_defaults(fn=cmd_mcp)


def main(argv: list[str] | None = None) -> None:
    from app.client import ClientError

    args = parser().parse_args(argv)
    try:
        sys.exit(args.fn(args))
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
