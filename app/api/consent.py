"""Consent: approvals, previews, policy, scoped keys and the audit log."""

from __future__ import annotations

import html
from typing import Any, Literal
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.auth import principal
from app.kernel import pages
from app.kernel.errors import NotFound, ToolqueueError
from app.services import approvals
from app.store import accounts, apikeys, audit, policies, tenants
from app.store.apikeys import Principal
from app.store.policies import Level, Policy

router = APIRouter(prefix="/v1", tags=["consent"])


class Decide(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    binding: str | None = Field(
        None, max_length=64, description="The job's `approval.binding` you reviewed"
    )
    reason: str = Field("", max_length=approvals.REASON_MAX)


@router.post("/jobs/{job_id}/approve", summary="Approve a job awaiting approval")
def approve(job_id: str, body: Decide, who: Principal = Depends(principal)) -> dict[str, Any]:
    """Needs the `approve` scope; the key that started the job only if policy
    `self_approve` says so. Resumes the job where it rested: nothing was sent before."""
    return approvals.decide(
        who, who.tenant_id, job_id, "approve", bound=body.binding, reason=body.reason
    )


@router.post("/jobs/{job_id}/reject", summary="Reject a job awaiting approval (cancelled)")
def reject(job_id: str, body: Decide, who: Principal = Depends(principal)) -> dict[str, Any]:
    return approvals.decide(
        who, who.tenant_id, job_id, "reject", bound=body.binding, reason=body.reason
    )


@router.get(
    "/jobs/{job_id}/preview",
    summary="What a dry run or a job awaiting approval would do, per record",
    responses={200: {"content": {"application/json": {}}}},
)
def preview(
    job_id: str, block: int = Query(0, ge=0, le=1_000_000), who: Principal = Depends(principal)
) -> Response:
    return Response(approvals.preview(who.tenant_id, job_id, block), media_type="application/json")


@router.get("/approvals", summary="Jobs awaiting approval, newest first")
def list_approvals(
    limit: int = Query(50, ge=1, le=500), who: Principal = Depends(principal)
) -> dict[str, Any]:
    return {"approvals": approvals.awaiting(who.tenant_id, limit)}


@router.get("/approvals/links/{token}", response_class=HTMLResponse, include_in_schema=False)
def link_page(token: str) -> HTMLResponse:
    """The one-time link's page: the preview and two buttons. GET changes nothing (mail and
    chat scanners open links); the decision is the form's POST."""
    try:
        link, job = approvals.link_job(token)
    except NotFound as exc:
        return _page("Approval link", f"<p>{html.escape(exc.message)}</p>", 404)
    body = approvals.preview(link["tenant_id"], link["job_id"])
    summary = job.get("preview") or {}
    rows = "".join(
        f"<li>{html.escape(str(k))}: {int(v)}</li>"
        for k, v in summary.items()
        if k in ("create", "update", "unchanged", "delete", "reject")
    )
    content = (
        f"<p>{html.escape(tenants.display_name(link['tenant_id']))} asks to run "
        f"<code>{html.escape(job['tool'])}</code> on account "
        f"<code>{html.escape(job['account_id'])}</code>.</p><ul>{rows}</ul>"
        f"<details><summary>Every record</summary><pre>{html.escape(body.decode()[:60000])}"
        "</pre></details>"
        '<form method="post"><label for="reason">Reason (optional)</label> '
        '<input id="reason" name="reason" maxlength="500"> '
        '<button name="decision" value="approve">Approve</button> '
        '<button name="decision" value="reject">Reject</button></form>'
    )
    return _page("Approve this write?", content)


@router.post("/approvals/links/{token}", response_class=HTMLResponse, include_in_schema=False)
async def link_decide(token: str, request: Request) -> HTMLResponse:
    form = parse_qs((await request.body()).decode("utf-8", "replace")[:4096])
    decision = (form.get("decision") or [""])[0]
    if decision not in ("approve", "reject"):
        return _page("Approval link", "<p>Choose Approve or Reject.</p>", 422)
    try:
        job = approvals.link_decide(token, decision, (form.get("reason") or [""])[0])  # type: ignore[arg-type]
    except ToolqueueError as exc:
        return _page("Approval link", f"<p>{html.escape(exc.message)}</p>", exc.status)
    said = "approved" if decision == "approve" else "rejected"
    return _page(
        f"Job {said}",
        f"<p>Job <code>{html.escape(job['job_id'])}</code> is "
        f"{said}; it is now {html.escape(job['status'])}.</p>",
    )


def _page(title: str, content: str, status: int = 200) -> HTMLResponse:
    doc = pages.document(title, f"<h1>{html.escape(title)}</h1>{content}")
    return HTMLResponse(doc, status, headers=pages.HEADERS)


def _ident(who: Principal, level: Level, ident: str) -> str:
    if level == "tenant":
        return who.tenant_id
    if level == "account":
        accounts.load(ident, who.tenant_id)  # 404 for another tenant's
    elif not apikeys.exists(who.tenant_id, ident):
        raise NotFound(f"key {ident!r} not found", code="key_not_found")
    return ident


def _policy_view(who: Principal, level: Level, ident: str) -> dict[str, Any]:
    own = policies.load(level, ident)
    return {
        "level": level,
        "id": ident,
        "policy": own.model_dump(exclude_none=True),
        "defaults": policies.DEFAULT.model_dump(),
    }


def _set_policy(who: Principal, level: Level, ident: str, body: Policy) -> dict[str, Any]:
    who.require("admin")
    ident = _ident(who, level, ident)
    before = policies.load(level, ident).model_dump(exclude_none=True)
    policies.save(level, ident, body)
    audit.append(
        who.tenant_id,
        "policy_changed",
        key_id=who.key_id,
        level=level,
        target=ident,
        before=before,
        after=body.model_dump(exclude_none=True),
    )
    return _policy_view(who, level, ident)


@router.get("/policy", summary="The tenant's write policy")
def get_policy(who: Principal = Depends(principal)) -> dict[str, Any]:
    return _policy_view(who, "tenant", who.tenant_id)


@router.put("/policy", summary="Set the tenant's write policy (admin scope)")
def put_policy(body: Policy, who: Principal = Depends(principal)) -> dict[str, Any]:
    return _set_policy(who, "tenant", who.tenant_id, body)


@router.get("/accounts/{account_id}/policy", summary="An account's policy override")
def get_account_policy(account_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
    return _policy_view(who, "account", _ident(who, "account", account_id))


@router.put("/accounts/{account_id}/policy", summary="Override the policy for one account")
def put_account_policy(
    account_id: str, body: Policy, who: Principal = Depends(principal)
) -> dict[str, Any]:
    return _set_policy(who, "account", account_id, body)


@router.get("/keys/{key_id}/policy", summary="An API key's policy override")
def get_key_policy(key_id: str, who: Principal = Depends(principal)) -> dict[str, Any]:
    return _policy_view(who, "key", _ident(who, "key", key_id))


@router.put("/keys/{key_id}/policy", summary="Override the policy for one API key")
def put_key_policy(
    key_id: str, body: Policy, who: Principal = Depends(principal)
) -> dict[str, Any]:
    return _set_policy(who, "key", key_id, body)


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field("", max_length=100)
    scopes: list[Literal["read", "write", "approve", "admin"]] = Field(
        ["read", "write"], min_length=1, max_length=4
    )
    tools: list[str] | None = Field(None, max_length=200, description="Tool name patterns")
    accounts: list[str] | None = Field(None, max_length=200)


@router.post("/keys", status_code=201, summary="A scoped API key (admin scope; shown once)")
def create_key(body: KeyCreate, who: Principal = Depends(principal)) -> dict[str, Any]:
    who.require("admin")
    made = apikeys.create(
        who.tenant_id, name=body.name, scopes=body.scopes, tools=body.tools, accounts=body.accounts
    )
    audit.append(
        who.tenant_id,
        "key_created",
        key_id=who.key_id,
        created=made["key_id"],
        scopes=made["scopes"],
        tools=made["tools"],
        accounts=made["accounts"],
    )
    return made


@router.get("/keys", summary="The tenant's API keys (never the keys themselves)")
def list_keys(who: Principal = Depends(principal)) -> dict[str, Any]:
    who.require("admin")
    return {"keys": apikeys.list_keys(who.tenant_id)}


@router.delete("/keys/{key_id}", status_code=204, summary="Revoke an API key")
def revoke_key(key_id: str, who: Principal = Depends(principal)) -> Response:
    who.require("admin")
    apikeys.revoke(who.tenant_id, key_id, who)
    audit.append(who.tenant_id, "key_revoked", key_id=who.key_id, revoked=key_id)
    return Response(status_code=204)


@router.get("/audit", summary="The tenant's audit log, oldest first, a page at a time")
def read_audit(
    after: str | None = Query(None, max_length=40, description="A page's `next`"),
    limit: int = Query(100, ge=1, le=audit.PAGE_MAX),
    who: Principal = Depends(principal),
) -> dict[str, Any]:
    if "admin" not in who.scopes:
        who.require("approve")
    return audit.page(who.tenant_id, after, limit)
