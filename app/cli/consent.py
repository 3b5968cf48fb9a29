"""`toolqueue tenants policy`, `keys create|list|revoke`, `approvals …`: consent over the
HTTP API, as the API key's tenant (the key needs `admin` for policy and keys, `approve` to
decide)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from typing import Any

from app.cli.common import client as _client
from app.cli.common import show as _print

RULES = ("allow", "approve", "deny")
PREVIEW_SHOWN = 100  # records `approvals show` prints unless told otherwise


def cmd_policy_show(args: argparse.Namespace) -> int:
    _print(_client(args).policy(args.account, args.key))
    return 0


def cmd_policy_set(args: argparse.Namespace) -> int:
    policy: dict[str, Any] = {}
    for name in ("writes", "destructive", "approve_above"):
        if getattr(args, name) is not None:
            policy[name] = getattr(args, name)
    if args.self_approve is not None:
        policy["self_approve"] = args.self_approve == "yes"
    _print(_client(args).set_policy(policy, args.account, args.key))
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    made = _client(args).create_key(args.name, args.scope, args.tool, args.account)
    _print(made)
    print("the api_key is shown this once: store it now", file=sys.stderr)
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    _print(_client(args).keys())
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    _client(args).revoke_key(args.key_id)
    print(f"revoked {args.key_id}")
    return 0


def cmd_approvals_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from app.cli.watch import preview_counts

    table = Table("job", "tool", "preview", "why", "expires")
    for row in _client(args).approvals(args.limit):
        approval = row.get("approval") or {}
        table.add_row(row["job_id"], row["tool"], preview_counts(row.get("preview")),
                      approval.get("reason", ""), approval.get("expires_at", ""))  # fmt: skip
    Console().print(table)
    return 0


def summary(job: dict[str, Any]) -> str:
    """One line: which job, what it does where, its preview and its approval state."""
    from app.cli.watch import consent

    held = consent(job, time.time())
    return (f"{job['job_id']}  {job['tool']} on {job['account_id']}  {job['status']}"
            + (f"  {held.plain}" if held is not None else ""))  # fmt: skip


def cmd_approvals_show(args: argparse.Namespace) -> int:
    client = _client(args)
    job = client.get(args.job_id)
    print(summary(job))
    shown, limit = 0, args.limit or None
    block, blocks = 0, 1
    while block < blocks:
        page = client.preview(args.job_id, block)
        blocks = int(page.get("blocks", 1))
        for record in page["records"]:
            if limit is not None and shown >= limit:
                total = (job.get("preview") or {}).get("records", "?")
                print(f"… {shown} of {total} records shown (--limit 0 shows all)")
                blocks = 0
                break
            print("\n".join(diff(record)))
            shown += 1
        block += 1
    binding = (job.get("approval") or {}).get("binding")
    if binding:
        print(f"binding {binding}")
        print(f"approve what you saw: toolqueue approvals approve {args.job_id} "
              f"--binding {binding}")  # fmt: skip
    return 0


def diff(record: dict[str, Any]) -> Iterator[str]:
    """A preview record as a person reads it: `#index action id`, then each field the write
    sets, `field: current → proposed` (nested fields dotted)."""
    action, ident = record.get("action", "?"), record.get("id")
    yield f"#{record.get('index')}  {action}  {ident if ident is not None else '(new)'}"
    if record.get("error"):
        error = record["error"]
        yield f"    {error.get('code')}: {error.get('message')}"
    current = dict(_flat(record.get("current") or {}))
    proposed = dict(_flat(record.get("proposed") or {}))
    if action == "delete" and not proposed:
        for name, value in current.items():
            yield f"    {name}: {_show(value)} → (deleted)"
        return
    for name, value in proposed.items():
        before = _show(current[name]) if name in current else "(none)"
        mark = "" if name not in current or current[name] != value else "  (unchanged)"
        yield f"    {name}: {before} → {_show(value)}{mark}"


def _flat(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in values.items():
        if isinstance(value, dict) and value:
            yield from _flat(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def cmd_approvals_approve(args: argparse.Namespace) -> int:
    """Bound to what the person saw: `--binding` from `show`, else the binding of the job as
    fetched and summarised here; if the job differs from it, the server applies nothing."""
    client = _client(args)
    job = client.get(args.job_id)
    print(summary(job))
    binding = args.binding or (job.get("approval") or {}).get("binding")
    done = client.approve(args.job_id, binding, args.reason)
    print(f"approved: {done['job_id']} is {done['status']}")
    return 0


def cmd_approvals_reject(args: argparse.Namespace) -> int:
    client = _client(args)
    print(summary(client.get(args.job_id)))
    done = client.reject(args.job_id, args.reason)
    print(f"rejected: {done['job_id']} is {done['status']}")
    return 0


Commands = argparse._SubParsersAction


def _level(p: argparse.ArgumentParser) -> None:
    which = p.add_mutually_exclusive_group()
    which.add_argument("--account", metavar="ID", help="an account's override")
    which.add_argument("--key", metavar="KEY_ID", help="an API key's override")


def add_policy(tenants: Commands) -> None:
    policy = tenants.add_parser("policy", help="the write policy (tenant, account or key)")
    sub = policy.add_subparsers(dest="policy", required=True)
    show = sub.add_parser("show", help="a level's own policy beside the defaults")
    _level(show)
    show.set_defaults(fn=cmd_policy_show)
    put = sub.add_parser(
        "set",
        help="replace a level's policy (admin scope)",
        description="Replace the level's policy with exactly what is given: a setting left "
        "out is no longer set at this level (the level above decides); nothing given removes "
        "the level's policy. Levels: the tenant (default), --account ID, --key KEY_ID.",
    )
    _level(put)
    put.add_argument("--writes", choices=RULES, help="write tools")
    put.add_argument("--destructive", choices=RULES, help="tools that delete or overwrite")
    put.add_argument("--approve-above", type=int, metavar="N",
                     help="writes of more than N records need approval")  # fmt: skip
    put.add_argument("--self-approve", choices=("yes", "no"),
                     help="may the key that started a job approve it")  # fmt: skip
    put.set_defaults(fn=cmd_policy_set)


def add_keys(keys: Commands) -> None:
    kc = keys.add_parser("create", help="a scoped API key (admin scope; printed once)")
    kc.add_argument("--name", default="")
    kc.add_argument("--scope", action="append", choices=("read", "write", "approve", "admin"),
                    help="repeat for each (default: read and write)")  # fmt: skip
    kc.add_argument("--tool", action="append", metavar="PATTERN",
                    help="only tools like 'hubspot.*' (repeat; default: all)")  # fmt: skip
    kc.add_argument("--account", action="append", metavar="ID",
                    help="only this account (repeat; default: all)")  # fmt: skip
    kc.set_defaults(fn=cmd_keys_create)
    keys.add_parser("list", help="the tenant's API keys (never the keys)").set_defaults(
        fn=cmd_keys_list
    )
    kr = keys.add_parser("revoke", help="revoke an API key by its id")
    kr.add_argument("key_id")
    kr.set_defaults(fn=cmd_keys_revoke)


def add_approvals(sub: Commands) -> None:
    ap = sub.add_parser("approvals").add_subparsers(dest="sub", required=True)
    al = ap.add_parser("list", help="jobs awaiting approval, newest first")
    al.add_argument("--limit", type=int, default=50)
    al.set_defaults(fn=cmd_approvals_list)
    ash = ap.add_parser("show", help="a job's preview, record by record, and its binding")
    ash.add_argument("job_id")
    ash.add_argument("--limit", type=int, default=PREVIEW_SHOWN, help="records (0: all)")
    ash.set_defaults(fn=cmd_approvals_show)
    aa = ap.add_parser("approve", help="approve a job as previewed (approve scope)")
    aa.add_argument("job_id")
    aa.add_argument("--binding", help="the binding `show` printed (default: the job's now)")
    aa.add_argument("--reason", default="")
    aa.set_defaults(fn=cmd_approvals_approve)
    ar = ap.add_parser("reject", help="reject a job: it ends cancelled")
    ar.add_argument("job_id")
    ar.add_argument("--reason", required=True)
    ar.set_defaults(fn=cmd_approvals_reject)
