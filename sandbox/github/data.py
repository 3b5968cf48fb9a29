"""The repositories' issues and pull requests, a pure function of (repository, number).

Every ``owner/repo`` exists (``owner=missing`` is a 404) and holds ``github.issues`` issues
and ``github.pulls`` pull requests (volumes), numbered together 1..I+P: while both kinds last,
odd numbers are issues and even numbers pull requests, then the rest are the larger kind.
The issues endpoint lists both kinds, pull requests with a ``pull_request`` key, like GitHub.
State and labels are functions of the number with period 12 (``n % 3 == 0`` is closed).
"""

from __future__ import annotations

import threading
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

LOGINS = (
    "octocat",
    "hubot",
    "monalisa",
    "defunkt",
    "mojombo",
    "pjhyett",
    "wycats",
    "ezmobius",
    "technoweenie",
    "atmos",
    "kneath",
    "holman",
    "jbarnette",
    "tmm1",
    "rtomayko",
    "nvie",
    "zoë-dev",
    "mislav",
    "tpope",
    "bkeepers",
)
PRIMARY_LABELS = ("bug", "enhancement", "documentation", None)
PRIORITY_LABELS = (  # by n % 12; the unified ticketing tool reads `priority: …` labels
    "priority: low",
    "priority: medium",
    None,
    "priority: high",
    None,
    "priority: low",
    "priority: medium",
    None,
    None,
    "priority: high",
    "priority: low",
    None,
)
LABEL_COLORS = {
    "bug": "d73a4a",
    "enhancement": "a2eeef",
    "documentation": "0075ca",
    "good first issue": "7057ff",
    "help wanted": "008672",
    "priority: low": "c2e0c6",
    "priority: medium": "fbca04",
    "priority: high": "b60205",
}
VERBS = ("Fix", "Add", "Remove", "Document", "Refactor", "Speed up", "Handle", "Test")
THINGS = (
    "pagination of the issues list",
    "rate-limit handling",
    "OAuth token refresh",
    "the CLI's --json flag",
    "Unicode in titles (ünïcødé, 中文, 🚀)",
    "webhook retries",
    "the config loader",
    "error messages on 422",
)
EPOCH = datetime(2015, 1, 1, tzinfo=UTC)

_repo_ids: dict[int, str] = {}
_ids_by_name: dict[str, int] = {}
_repo_lock = threading.Lock()


def repo_id(owner: str, repo: str) -> int:
    """A stable repository id (GitHub's link headers address repositories by id)."""
    key = f"{owner}/{repo}"
    with _repo_lock:
        if key.lower() in _ids_by_name:
            return _ids_by_name[key.lower()]
        rid = zlib.crc32(key.lower().encode()) % 500_000_000 + 1
        while rid in _repo_ids:
            rid = rid % 500_000_000 + 1
        _repo_ids[rid] = key
        _ids_by_name[key.lower()] = rid
        return rid


def repo_by_id(rid: int) -> tuple[str, str] | None:
    with _repo_lock:
        key = _repo_ids.get(rid)
    return tuple(key.split("/", 1)) if key else None  # type: ignore[return-value]


def is_closed(n: int) -> bool:
    return n % 3 == 0


def labels_of(n: int) -> list[str]:
    out = [PRIMARY_LABELS[n % 4]] if PRIMARY_LABELS[n % 4] else []
    if n % 6 == 1:
        out.append("good first issue")
    if n % 12 == 5:
        out.append("help wanted")
    if PRIORITY_LABELS[n % 12]:
        out.append(PRIORITY_LABELS[n % 12])
    return out  # type: ignore[return-value]


def is_pull(n: int, issues: int, pulls: int) -> bool:
    both = min(issues, pulls)
    return n % 2 == 0 if n <= 2 * both else pulls > issues


def _ts(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user(api: str, i: int) -> dict[str, Any]:
    login = LOGINS[i % len(LOGINS)]
    uid = 583231 + i % len(LOGINS)
    return {
        "login": login,
        "id": uid,
        "node_id": f"MDQ6VXNlcj{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "url": f"{api}/users/{login}",
        "html_url": f"https://github.com/{login}",
        "type": "User",
        "site_admin": False,
    }


def _label(api: str, repo: str, name: str) -> dict[str, Any]:
    lid = 1_000_000 + zlib.crc32(name.encode()) % 1_000_000
    return {
        "id": lid,
        "node_id": f"LA_kwDO{lid}",
        "url": f"{api}/repos/{repo}/labels/{quote(name)}",
        "name": name,
        "color": LABEL_COLORS[name],
        "default": name in PRIMARY_LABELS,
        "description": None,
    }


def _common(api: str, full: str, rid: int, n: int) -> dict[str, Any]:
    created = n * 3607 + (n * 7919) % 600
    updated = created + (n * 104_729) % 2_592_000
    closed = is_closed(n)
    assignee = _user(api, n * 7) if n % 5 else None
    title = f"{VERBS[n % len(VERBS)]} {THINGS[(n // 3) % len(THINGS)]} ({n})"
    return {
        "number": n,
        "title": title,
        "user": _user(api, n),
        "labels": [_label(api, full, name) for name in labels_of(n)],
        "state": "closed" if closed else "open",
        "locked": False,
        "assignee": assignee,
        "assignees": [assignee] if assignee else [],
        "milestone": None,
        "created_at": _ts(created),
        "updated_at": _ts(updated),
        "closed_at": _ts(updated) if closed else None,
        "author_association": "CONTRIBUTOR",
        "active_lock_reason": None,
        "body": f"Reported in #{max(1, n - 1)}. Steps: call the API, page through, compare.",
    }


def issue(api: str, full: str, rid: int, n: int, pull: bool) -> dict[str, Any]:
    """Number `n` as the issues endpoint shows it (a pull request gets `pull_request`)."""
    base = _common(api, full, rid, n)
    iid = rid * 10_000_000 + n
    html = f"https://github.com/{full}/{'pull' if pull else 'issues'}/{n}"
    out: dict[str, Any] = {
        "url": f"{api}/repos/{full}/issues/{n}",
        "repository_url": f"{api}/repos/{full}",
        "labels_url": f"{api}/repos/{full}/issues/{n}/labels{{/name}}",
        "comments_url": f"{api}/repos/{full}/issues/{n}/comments",
        "events_url": f"{api}/repos/{full}/issues/{n}/events",
        "html_url": html,
        "id": iid,
        "node_id": f"I_kwDO{iid}",
        **base,
        "comments": n % 9,
        "state_reason": ("completed" if base["state"] == "closed" and not pull else None),
    }
    if pull:
        out["draft"] = n % 10 == 4
        out["pull_request"] = {
            "url": f"{api}/repos/{full}/pulls/{n}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "merged_at": _merged_at(base, n),
        }
    return out


def _merged_at(base: dict[str, Any], n: int) -> str | None:
    return base["closed_at"] if base["state"] == "closed" and n % 2 == 0 else None


def pull(api: str, full: str, rid: int, n: int) -> dict[str, Any]:
    """Number `n` as the pulls endpoint shows it (its own id, head/base, merge fields)."""
    base = _common(api, full, rid, n)
    pid = rid * 10_000_000 + 5_000_000 + n
    html = f"https://github.com/{full}/pull/{n}"
    sha = f"{zlib.crc32(f'{full}#{n}'.encode()):08x}" * 5
    owner = full.split("/", 1)[0]
    return {
        "url": f"{api}/repos/{full}/pulls/{n}",
        "id": pid,
        "node_id": f"PR_kwDO{pid}",
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": f"{api}/repos/{full}/issues/{n}",
        "commits_url": f"{api}/repos/{full}/pulls/{n}/commits",
        **base,
        "merged_at": _merged_at(base, n),
        "merge_commit_sha": sha,
        "requested_reviewers": [],
        "head": {"label": f"{owner}:feature-{n}", "ref": f"feature-{n}", "sha": sha},
        "base": {"label": f"{owner}:main", "ref": "main", "sha": sha[::-1]},
        "draft": n % 10 == 4,
        "auto_merge": None,
    }
