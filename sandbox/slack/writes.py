"""Slack chat writes: ``chat.postMessage`` (``channel``, ``text``, ``blocks``?, ``metadata``?
``{"event_type", "event_payload"}``; form or JSON body) → ``{"ok": true, "channel", "ts",
"message"}``, and ``chat.update`` (``channel``, ``ts``, ``text``/``blocks``) → ``{"ok": true,
"channel", "ts", "text", "message"}``.

Slack has no idempotency key: a client puts its operation id in the message ``metadata`` and,
before resending, reads ``conversations.history`` with ``include_all_metadata=true`` ("Return
all metadata associated with this message", the method's documented argument; the node SDK's
``IncludeAllMetadata``), where posted messages come first, carrying ``metadata`` as posted.

Errors are HTTP 200 ``{"ok": false, "error"}``: ``channel_not_found``, ``no_text``,
``invalid_blocks``, ``invalid_metadata_format``, ``message_not_found``, ``cant_update_message``
(a seeded message). The per-channel posting limit — "chat.postMessage generally allows posting
one message per second per channel" (api.slack.com, Rate Limits: "Posting messages 1 per
second, short bursts >1 allowed") — is the live knob ``slack_channel_post_interval_ms`` (1000;
0 turns it off), answered HTTP 429 ``{"ok": false, "error": "rate_limited"}`` with
``Retry-After`` (``rate_limited``: "Application has posted too many messages", the chat
methods' documented error). Auth and the shared method budget: the gate of :mod:`.reads`.

Faults as for Zendesk: ``fail_before_commit_next`` (503, nothing written),
``drop_after_commit_*`` (committed, answer cut), ``write_latency_ms``. Effects:
``GET /slack/_sandbox/effects``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.slack import posted
from sandbox.slack.reads import CHANNELS, TEAM_ID, _fail, _gate, _unavailable, ts_str, user_id
from sandbox.writes import Effect, EffectKind, delivered, effects_body, hold

router = APIRouter()
NAME = posted.NAME
MAX_BLOCKS = 50
Outcome = tuple[dict[str, Any], bool]  # (ok body, committed)
Check = Callable[[dict[str, Any]], JSONResponse | None]


async def _args(request: Request, params: dict[str, str]) -> dict[str, Any]:
    """Form/query arguments, and a JSON body's on top (Slack accepts both)."""
    if "json" not in request.headers.get("content-type", ""):
        return dict(params)
    try:
        doc = json.loads(await request.body() or b"{}")
    except ValueError:
        doc = None
    return {**params, **doc} if isinstance(doc, dict) else dict(params)


def _decoded(value: Any) -> Any:
    """A form argument holds JSON as a string; a JSON body holds it as is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def blocks_of(args: dict[str, Any]) -> list[dict[str, Any]] | None | bool:
    """The blocks (None: absent; False: invalid)."""
    if args.get("blocks") in (None, ""):
        return None
    blocks = _decoded(args["blocks"])
    good = isinstance(blocks, list) and 0 < len(blocks) <= MAX_BLOCKS
    return (
        blocks
        if good and all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)
        else False
    )


def metadata_of(args: dict[str, Any]) -> dict[str, Any] | None | bool:
    if args.get("metadata") in (None, ""):
        return None
    meta = _decoded(args["metadata"])
    good = isinstance(meta, dict) and isinstance(meta.get("event_type"), str) and meta["event_type"]
    return meta if good and isinstance(meta.get("event_payload"), dict) else False


def _content_error(args: dict[str, Any]) -> JSONResponse | None:
    if blocks_of(args) is False:
        return _fail("invalid_blocks")
    if not str(args.get("text") or "").strip() and blocks_of(args) is None:
        return _fail("no_text")
    return None


async def write(
    request: Request, check: Check, execute: Callable[[dict[str, Any]], Outcome]
) -> Response:
    """Gate, fault, arguments, validation, latency, execution, maybe a lost answer."""
    params, refused = await _gate(request)
    if refused is not None:
        return refused
    state = sandbox_state(request)
    if state.take_fail_before_commit():
        return JSONResponse(_unavailable(), status_code=503)
    args = await _args(request, params)
    if (error := check(args)) is not None:
        return error
    await hold(state.config.write_latency_ms)
    body, committed = execute(args)
    response = JSONResponse({"ok": True, **body}, headers={"x-slack-req-id": "sandbox"})
    return delivered(response, committed, state.take_drop_after_commit)


def commit(request: Request, obj: dict[str, Any], kind: EffectKind, args: dict[str, Any]) -> None:
    fields = {k: v for k, v in args.items() if k != "token"}
    effect = Effect(kind, obj["_oid"], None, fields, time.time())
    sandbox_state(request).writes.commit(NAME, obj, effect)


# ---- chat.postMessage ----------------------------------------------------------------------


def _check_post(request: Request, args: dict[str, Any]) -> JSONResponse | None:
    channel = str(args.get("channel") or "")
    if channel not in CHANNELS:
        return _fail("channel_not_found")
    if (error := _content_error(args)) is not None:
        return error
    if metadata_of(args) is False:
        return _fail("invalid_metadata_format")
    state = sandbox_state(request)
    interval = state.config.slack_channel_post_interval_ms / 1000
    wait = state.take_window(f"{NAME}:post:{channel}", 1 if interval else 0, interval)
    if wait is not None:
        return _fail("rate_limited", 429, {"Retry-After": str(max(1, math.ceil(wait)))})
    return None


def _message(args: dict[str, Any], ts: str) -> dict[str, Any]:
    out: dict[str, Any] = {"user": user_id(1), "type": "message", "ts": ts,
                           "bot_id": "B0SANDBOX1", "app_id": "A0SANDBOX1",
                           "text": str(args.get("text") or ""), "team": TEAM_ID}  # fmt: skip
    if (blocks := blocks_of(args)) not in (None, False):
        out["blocks"] = blocks
    if (meta := metadata_of(args)) not in (None, False):
        out["metadata"] = meta
    return out


@router.api_route("/api/chat.postMessage", methods=["POST"])
async def post_message(request: Request) -> Response:
    def execute(args: dict[str, Any]) -> Outcome:
        state, channel = sandbox_state(request), str(args["channel"])
        us = posted.next_us(state, channel)
        message = _message(args, ts_str(us))
        obj = {"_oid": posted.oid(channel, ts_str(us)), "_channel": channel, "_us": us,
               "message": message}  # fmt: skip
        commit(request, obj, "create", args)
        return {"channel": channel, "ts": message["ts"], "message": message}, True

    return await write(request, lambda args: _check_post(request, args), execute)


# ---- chat.update ---------------------------------------------------------------------------


def _check_update(request: Request, args: dict[str, Any]) -> JSONResponse | None:
    channel, ts = str(args.get("channel") or ""), str(args.get("ts") or "")
    if channel not in CHANNELS:
        return _fail("channel_not_found")
    if sandbox_state(request).writes.get(NAME, posted.oid(channel, ts)) is None:
        seeded = ts and ts.replace(".", "").isdigit() and ts < ts_str(time.time_ns() // 1000)
        return _fail("cant_update_message" if seeded else "message_not_found")
    return _content_error(args)


@router.api_route("/api/chat.update", methods=["POST"])
async def update_message(request: Request) -> Response:
    def execute(args: dict[str, Any]) -> Outcome:
        channel, ts = str(args["channel"]), str(args["ts"])
        obj = sandbox_state(request).writes.get(NAME, posted.oid(channel, ts)) or {}
        changed = {**obj["message"], "text": str(args.get("text") or obj["message"]["text"])}
        if (blocks := blocks_of(args)) not in (None, False):
            changed["blocks"] = blocks
        changed["edited"] = {"user": user_id(1), "ts": ts_str(time.time_ns() // 1000)}
        commit(request, {**obj, "message": changed}, "update", args)
        return {"channel": channel, "ts": ts, "text": changed["text"], "message": changed}, True

    return await write(request, lambda args: _check_update(request, args), execute)


@router.get("/_sandbox/effects")
async def effects(request: Request) -> Response:
    """Sandbox-only: every message posted or updated, in order, and counts per object."""
    return JSONResponse(effects_body(sandbox_state(request).writes, NAME))
