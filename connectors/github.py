"""GitHub REST: `link` header paging (rel="next", absolute URLs followed as given),
x-ratelimit-* with an epoch reset, 403/429 rate-limit refusals, GitHub App user tokens
refreshed at github.com (rotating; errors come back as HTTP 200, see connectors/oauth.py).

Errors: GitHub's body has only `message` (plus `errors` on a 422), so a refusal becomes
VendorError(`http_<status>`, message): the same code the generic path gives any vendor
without its own codes, and the message is GitHub's own text.

A `link` URL outside the account's API root is refused (`foreign_next_link`): following it
would send the account's token to another host.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors import ratelimit
from connectors.base import Cursor, Http, Page, RatePolicy, Tool, Vendor
from connectors.errors import VendorError
from connectors.pagination import LinkHeader
from connectors.resource import Resource

OWNER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}$")
REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class RepoArgs(BaseModel):
    """Arguments every `github.*.list` tool shares."""

    model_config = ConfigDict(extra="forbid")

    owner: str = Field(description="Repository owner (user or organization login)")
    repo: str = Field(description="Repository name, without the owner")
    state: Literal["open", "closed", "all"] = Field("open", description="Filter by state")
    per_page: int = Field(100, ge=1, le=100, description="Records per vendor page (max 100)")

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str) -> str:
        if not OWNER.match(value):
            raise ValueError("a GitHub login: letters, digits and hyphens, at most 39")
        return value

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str) -> str:
        if not REPO.match(value) or value in (".", ".."):
            raise ValueError("a repository name: letters, digits, '.', '-', '_', at most 100")
        return value


class IssuesArgs(RepoArgs):
    """Arguments of `github.issues.list`."""

    labels: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Only issues carrying every one of these labels (sent comma-separated)",
    )

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        for label in value:
            if not label.strip() or "," in label or len(label) > 100:
                raise ValueError("each label: 1-100 characters, no commas")
        return value


class PullsArgs(RepoArgs):
    """Arguments of `github.pulls.list`."""


NEXT = LinkHeader("next")

issues_list = Resource(
    name="github.issues.list",
    description=(
        "List a GitHub repository's issues, newest first, every page fetched for you (REST "
        "GET /repos/{owner}/{repo}/issues). Like GitHub, pull requests are included; they "
        "carry a `pull_request` key. Use `fields` to project only what you need."
    ),
    args=IssuesArgs,
    path="/repos/{{args.owner}}/{{args.repo}}/issues",
    query={
        "state": "{{args.state}}",
        "labels": "{{args.labels:csv}}",
        "per_page": "{{args.per_page}}",
    },
    records="@",
    paginate=NEXT,
)

pulls_list = Resource(
    name="github.pulls.list",
    description=(
        "List a GitHub repository's pull requests, newest first, every page fetched for you "
        "(REST GET /repos/{owner}/{repo}/pulls). Use `fields` to project only what you need."
    ),
    args=PullsArgs,
    path="/repos/{{args.owner}}/{{args.repo}}/pulls",
    query={"state": "{{args.state}}", "per_page": "{{args.per_page}}"},
    records="@",
    paginate=NEXT,
)


def same_origin(resource: Resource) -> Tool:
    """The resource's tool, refusing a `link` that leaves the account's API root: the next
    request carries the account's token, so it must never go to another host."""

    def fetch(http: Http, args: Any, cursor: Cursor | None) -> Page:
        page = resource.fetch(http, args, cursor)
        nxt = page.next_cursor
        if nxt is not None and not _within(str(nxt), http.base_url):
            raise VendorError(
                "foreign_next_link",
                f"GitHub's link header points outside {http.base_url}: {str(nxt)[:200]}",
            )
        return page

    return replace(resource.tool(), fetch=fetch)


def _within(url: str, base_url: str) -> bool:
    u, b = urlsplit(url), urlsplit(base_url)
    path = b.path.rstrip("/")
    return (u.scheme, u.netloc.lower()) == (b.scheme, b.netloc.lower()) and (
        u.path == path or u.path.startswith(path + "/")
    )


def classify(resp: Any) -> None:
    """Raise GitHub's refusals; leave 401, rate-limit refusals (403/429 with remaining 0 or
    a secondary-limit message: `ratelimit.parse` knows both, including "wait at least a
    minute" for a secondary limit without `retry-after`) and 5xx to the generic handling."""
    status = resp.status_code
    if status < 400 or status == 401 or status >= 500:
        return
    if status in (403, 429) and ratelimit.parse(resp.headers, status, resp.content).limited:
        return
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    message = doc.get("message") if isinstance(doc, dict) else None
    raise VendorError(
        f"http_{status}", str(message or resp.text[:500] or resp.reason), status=status
    )


VENDOR = Vendor(
    name="github",
    base_url="https://api.github.com",
    token_url="https://github.com/login/oauth/access_token",
    classify=classify,
    rate_limit="github",
    budget=RatePolicy(5000, 3600.0, fixed=True),  # per token and hour, reset at an epoch
    tools=(same_origin(issues_list), same_origin(pulls_list)),
)
