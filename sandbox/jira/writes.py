"""Jira Cloud writes: ``POST /rest/api/3/issue`` (201 ``{"id","key","self"}``),
``GET /rest/api/3/issue/{key}`` (created and seeded issues; ``fields`` picks fields,
``?properties=*all`` or a list adds ``properties``),
``GET /rest/api/3/issue/{key}/properties/{propertyKey}``, ``GET|POST
/rest/api/3/issue/{key}/transitions`` (POST 204); comments live in :mod:`.comments`.

Jira has no idempotency key; a client marks what it creates with an issue entity property
(``"properties": [{"key", "value"}]`` on create, stored with the issue) and, before resending,
looks for it with JQL ``issue.property[<key>].<path> = "<value>"`` — the clause Atlassian's
entity-property docs (developer.atlassian.com "Entity properties" / the ``jira:entityProperty``
module: properties are "indexed by Jira and queried via REST API or JQL") describe. The
sandbox indexes every property path without a module. A search with such a clause is answered
from the written issues alone (:func:`sandbox.jira.stored.marked`), never the seeded pages.

Errors in Jira's shape ``{"errorMessages": [...], "errors": {field: message}}``, 400: a missing
summary ("You must specify a summary of the issue."), an unknown project ("valid project is
required"), an unknown issue type ("The issue type selected is invalid." — the Cloud answer
quoted in lesstif/php-jira-rest-client#351; pycontribs/jira#934 shows the same shape), a
description that is not ADF; an unknown issue is 404 "Issue does not exist or you do not have
permission to see it."; an unavailable transition 400 "Transition id '<id>' is not valid for
this issue." (the summary, project and transition wordings are the sandbox's, from memory).

Faults as for Zendesk (:mod:`sandbox.zendesk.writes`): ``fail_before_commit_next`` (503,
nothing written), ``drop_after_commit_next`` / ``drop_after_commit_rate`` (committed, answer
cut), ``write_latency_ms``; every endpoint passes the gate of :mod:`.http` (auth, burst budget).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from sandbox.common import sandbox_state
from sandbox.jira import stored
from sandbox.jira.data import ISSUE_FIELDS, issue
from sandbox.jira.http import NAME, base_url, error_response, gate, unavailable
from sandbox.jira.search import _fields as fields_wanted
from sandbox.writes import Effect, EffectKind, delivered, effects_body, hold, reply

router = APIRouter()

Outcome = tuple[int, Any, bool]  # (status, body, committed)
Check = Callable[[dict[str, Any]], Outcome | None]
NOT_FOUND = "Issue does not exist or you do not have permission to see it."
BAD_BODY = "Invalid request payload. Refer to the REST API documentation and try again."


def invalid(errors: dict[str, str], messages: list[str] | None = None) -> Outcome:
    return 400, {"errorMessages": messages or [], "errors": errors}, False


def missing() -> Outcome:
    return 404, {"errorMessages": [NOT_FOUND], "errors": {}}, False


def commit(request: Request, obj: dict[str, Any], kind: EffectKind, doc: dict[str, Any]) -> None:
    oid = obj.get("key") or obj["_oid"]
    sandbox_state(request).writes.commit(NAME, obj, Effect(kind, oid, None, doc, time.time()))


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        doc = json.loads(await request.body() or b"null")
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


async def write(
    request: Request, check: Check, execute: Callable[[dict[str, Any]], Outcome]
) -> Response:
    """Gate, fault, body, validation, latency, execution, maybe a lost answer."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    state = sandbox_state(request)
    if state.take_fail_before_commit():
        return JSONResponse(unavailable(), status_code=503, headers=headers)
    doc = await _body(request)
    if doc is None:
        return error_response(400, [BAD_BODY], headers)
    if (refused := check(doc)) is not None:
        return reply(refused[0], refused[1], headers)
    await hold(state.config.write_latency_ms)
    status, body, committed = execute(doc)
    return delivered(reply(status, body, headers), committed, state.take_drop_after_commit)


# ---- create -----------------------------------------------------------------------------


def _properties(doc: dict[str, Any]) -> dict[str, Any] | None:
    raw = doc.get("properties", [])
    if not isinstance(raw, list):
        return None
    out: dict[str, Any] = {}
    for p in raw:
        if not (isinstance(p, dict) and isinstance(p.get("key"), str) and "value" in p):
            return None
        out[p["key"]] = p["value"]
    return out


def _check_create(request: Request, doc: dict[str, Any]) -> Outcome | None:
    fields = doc.get("fields")
    if not isinstance(fields, dict):
        return invalid({}, ["Issue fields are required."])
    state = sandbox_state(request)
    errors: dict[str, str] = {}
    project = fields.get("project")
    key = project.get("key") if isinstance(project, dict) else None
    projects = state.config.volume("jira.projects")
    if not isinstance(key, str) or stored.project_number(key, projects) is None:
        errors["project"] = "valid project is required"
    if not (isinstance(fields.get("summary"), str) and fields["summary"].strip()):
        errors["summary"] = "You must specify a summary of the issue."
    kind = fields.get("issuetype")
    name = kind.get("name") if isinstance(kind, dict) else None
    if not isinstance(name, str) or stored.issue_type("", name) is None:
        errors["issuetype"] = "The issue type selected is invalid."
    if fields.get("description") is not None and not stored.is_adf(fields["description"]):
        errors["description"] = stored.ADF_HINT
    labels = fields.get("labels", [])
    if not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        errors["labels"] = "Field 'labels' must be an array of strings."
    if _properties(doc) is None:
        errors["properties"] = "Properties must be a list of {key, value} objects."
    return invalid(errors) if errors else None


@router.post("/rest/api/3/issue")
async def create_issue(request: Request) -> Response:
    def execute(doc: dict[str, Any]) -> Outcome:
        state = sandbox_state(request)
        fields = doc["fields"]
        key = fields["project"]["key"]
        number = stored.project_number(key, state.config.volume("jira.projects")) or 1
        obj = stored.new_issue(
            state, base_url(request), (key, number), fields, _properties(doc) or {}
        )
        commit(request, obj, "create", doc)
        return 201, {"id": obj["id"], "key": obj["key"], "self": obj["self"]}, True

    return await write(request, lambda doc: _check_create(request, doc), execute)


# ---- reads of what was written ----------------------------------------------------------


def _wanted_properties(request: Request, obj: dict[str, Any]) -> dict[str, Any] | None:
    raw = [p for v in request.query_params.getlist("properties") for p in v.split(",") if p]
    if not raw:
        return None
    props: dict[str, Any] = obj.get("properties", {})
    if "*all" in raw:
        return dict(props)
    return {k: v for k, v in props.items() if k in raw}


async def _issue(request: Request, key: str) -> tuple[dict[str, Any], dict[str, str]] | Response:
    """The created issue ``key`` and the gate's headers, or the refusal (the gate's, a 404)."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    obj = stored.created(sandbox_state(request), key)
    if obj is None:
        return error_response(404, [NOT_FOUND], headers)
    return obj, headers


@router.get("/rest/api/3/issue/{key}")
async def get_issue(request: Request, key: str) -> Response:
    """A created or seeded issue (by key or id) with every field, or those ``fields`` names
    (as search reads them); seeded issues carry no properties."""
    denied, headers = await gate(request)
    if denied is not None:
        return denied
    state = sandbox_state(request)
    wanted = fields_wanted(request.query_params.getlist("fields")) or None
    obj = stored.created(state, key)
    if obj is None:
        found = stored.exists(state, key)
        i = stored.seeded(state, found[1]) if found is not None else None
        if i is None:
            return error_response(404, [NOT_FOUND], headers)
        seeded = issue(base_url(request), i, wanted or {*ISSUE_FIELDS, "key"})
        if _wanted_properties(request, {}) is not None:
            seeded["properties"] = {}
        return JSONResponse(seeded, headers=headers)
    body = stored.render(obj, wanted)
    if (props := _wanted_properties(request, obj)) is not None:
        body["properties"] = props
    return JSONResponse(body, headers=headers)


@router.get("/rest/api/3/issue/{key}/properties/{prop}")
async def get_property(request: Request, key: str, prop: str) -> Response:
    found = await _issue(request, key)
    if isinstance(found, Response):
        return found
    obj, headers = found
    if prop not in obj.get("properties", {}):
        return error_response(404, [f"The property with key '{prop}' does not exist."], headers)
    return JSONResponse({"key": prop, "value": obj["properties"][prop]}, headers=headers)


# ---- transitions ------------------------------------------------------------------------


def _transition(base: str, tid: str) -> dict[str, Any]:
    target = stored.TRANSITIONS[tid]
    return {"id": tid, "name": target, "to": stored.status(base, target), "hasScreen": False,
            "isGlobal": False, "isInitial": False, "isAvailable": True,
            "isConditional": False, "isLooped": False}  # fmt: skip


@router.get("/rest/api/3/issue/{key}/transitions")
async def list_transitions(request: Request, key: str) -> Response:
    found = await _issue(request, key)
    if isinstance(found, Response):
        return found
    obj, headers = found
    allowed = stored.ALLOWED[obj["fields"]["status"]["name"]]
    base = base_url(request)
    body = {"expand": "transitions", "transitions": [_transition(base, t) for t in allowed]}
    return JSONResponse(body, headers=headers)


def _check_transition(request: Request, key: str, doc: dict[str, Any]) -> Outcome | None:
    obj = stored.created(sandbox_state(request), key)
    if obj is None:
        return missing()
    move = doc.get("transition")
    tid = str(move.get("id", "")) if isinstance(move, dict) else ""
    if not tid:
        return invalid({}, ["Missing 'transition' identifier"])
    if tid not in stored.ALLOWED[obj["fields"]["status"]["name"]]:
        return invalid({}, [f"Transition id '{tid}' is not valid for this issue."])
    return None


@router.post("/rest/api/3/issue/{key}/transitions")
async def do_transition(request: Request, key: str) -> Response:
    def execute(doc: dict[str, Any]) -> Outcome:
        obj = stored.created(sandbox_state(request), key) or {}
        target = stored.TRANSITIONS[str(doc["transition"]["id"])]
        moved = stored.stamp_updated(obj, status=stored.status(base_url(request), target))
        commit(request, moved, "update", doc)
        return 204, None, True

    return await write(request, lambda doc: _check_transition(request, key, doc), execute)


@router.get("/_sandbox/effects")
async def effects(request: Request) -> Response:
    """Sandbox-only: every issue, comment and transition write applied, and counts per object."""
    return JSONResponse(effects_body(sandbox_state(request).writes, NAME))
