"""The site's records: issues in ENG and OPS, and projects, each a pure function of its
index and the base URL (so page k of N costs O(page)).

Issue i (1-based) has residue r = (i - 1) % 4: 0 ENG/Open, 1 OPS/Open, 2 ENG/Done,
3 OPS/Done. A JQL filter is a set of residues, so the k-th match is computed directly.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(2021, 1, 1, tzinfo=UTC)

# fmt: off
PROJECTS = {"ENG": "Engineering", "OPS": "Operations"}
ISSUE_PROJECTS = ("ENG", "OPS")
RESIDUES = {"ENG": {0, 2}, "OPS": {1, 3}}
OPEN, DONE = {0, 1}, {2, 3}
STATUSES = {  # name -> (id, residues, category key)
    "open": ("1", OPEN, "new"), "in progress": ("3", set(), "indeterminate"),
    "done": ("10001", DONE, "done"),
}
CATEGORIES = {  # id, key, colorName, name
    "new": (2, "new", "blue-gray", "To Do"),
    "indeterminate": (4, "indeterminate", "yellow", "In Progress"),
    "done": (3, "done", "green", "Done"),
}
PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
ISSUE_TYPES = (("10001", "Task"), ("10002", "Bug"), ("10003", "Story"))
PEOPLE = ("Alice Chen", "Bob Okafor", "Carol Díaz", "Dmitri Ivanov", "Erin O'Neil", "Łucja Nowak")
VERBS = ("Fix", "Investigate", "Document", "Refactor", "Add tests for", "Speed up", "Remove")
THINGS = ("login flow", "billing export", "search index", "webhook retries", "CSV import",
          "rate limiter", "on-call runbook", "日本語 locale", "dashboard widgets")
KNOWN_FIELDS = frozenset({
    "project", "status", "statuscategory", "assignee", "reporter", "creator", "priority",
    "created", "createddate", "updated", "updateddate", "resolved", "resolution", "duedate",
    "key", "issuekey", "id", "issue", "issuetype", "type", "summary", "description", "text",
    "comment", "labels", "component", "fixversion", "affectedversion", "sprint", "parent",
    "watcher", "watchers", "votes", "environment", "filter", "request", "rank",
})
ISSUE_FIELDS = ("summary", "status", "priority", "assignee", "reporter", "created", "updated",
                "project", "issuetype", "labels")
# fmt: on


def _datetime(ms: int) -> str:
    """Jira's timestamp form: ``2024-01-15T10:30:00.000+0000``."""
    return (EPOCH + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def issue_id(i: int) -> str:
    return str(10000 + i)


def issue_key(i: int) -> str:
    return f"{ISSUE_PROJECTS[(i - 1) % 2]}-{(i + 1) // 2}"


def project_key(n: int) -> str:
    """Projects sort by key in index order: ENG, OPS, PRJ000003, PRJ000004, …"""
    return ("ENG", "OPS")[n - 1] if n <= 2 else f"PRJ{n:06d}"


def project_name(n: int) -> str:
    return PROJECTS.get(project_key(n), f"Project {n:06d}")


def project_id(n: int) -> str:
    return str(10000 + n)


def _avatars(base: str, kind: str, ident: str) -> dict[str, str]:
    return {
        f"{s}x{s}": f"{base}/rest/api/3/universal_avatar/view/type/{kind}/avatar/{ident}?size={s}"
        for s in (48, 24, 16, 32)
    }


def _user(base: str, n: int) -> dict[str, Any]:
    account = hashlib.sha256(f"user-{n}".encode()).hexdigest()[:24]
    return {
        "self": f"{base}/rest/api/3/user?accountId={account}",
        "accountId": account,
        "avatarUrls": {"48x48": f"https://avatar-management.example/{account}/48"},
        "displayName": PEOPLE[n % len(PEOPLE)],
        "active": True,
        "timeZone": "Europe/Berlin",
        "accountType": "atlassian",
    }


def _project_ref(base: str, n: int) -> dict[str, Any]:
    return {
        "self": f"{base}/rest/api/3/project/{project_id(n)}",
        "id": project_id(n),
        "key": project_key(n),
        "name": project_name(n),
        "projectTypeKey": "software",
        "simplified": False,
        "avatarUrls": _avatars(base, "project", project_id(n)),
    }


def _status(base: str, i: int) -> dict[str, Any]:
    status_name = "Open" if (i - 1) % 4 in OPEN else "Done"
    sid, _, cat = STATUSES[status_name.lower()]
    cat_id, cat_key, color, cat_name = CATEGORIES[cat]
    return {
        "self": f"{base}/rest/api/3/status/{sid}",
        "description": "",
        "iconUrl": f"{base}/images/icons/statuses/{cat_key}.png",
        "name": status_name,
        "id": sid,
        "statusCategory": {
            "self": f"{base}/rest/api/3/statuscategory/{cat_id}",
            "id": cat_id,
            "key": cat_key,
            "colorName": color,
            "name": cat_name,
        },
    }


def _priority(base: str, i: int) -> dict[str, Any]:
    prio = (i * 7) % len(PRIORITIES)
    return {
        "self": f"{base}/rest/api/3/priority/{prio + 1}",
        "iconUrl": f"{base}/images/icons/priorities/{PRIORITIES[prio].lower()}.svg",
        "name": PRIORITIES[prio],
        "id": str(prio + 1),
    }


def _issue_type(base: str, i: int) -> dict[str, Any]:
    type_id, type_name = ISSUE_TYPES[i % len(ISSUE_TYPES)]
    return {
        "self": f"{base}/rest/api/3/issuetype/{type_id}",
        "id": type_id,
        "description": "",
        "iconUrl": f"{base}/rest/api/2/universal_avatar/view/type/issuetype/avatar/{type_id}",
        "name": type_name,
        "subtask": False,
        "hierarchyLevel": 0,
    }


def issue_fields(base: str, i: int) -> dict[str, Any]:
    """Every field of issue ``i`` (1-based); a pure function of ``i`` and the base URL."""
    created = i * 3_600_011 + (i * 7919) % 1000
    return {
        "summary": f"{VERBS[i % len(VERBS)]} {THINGS[(i * 5) % len(THINGS)]} (#{i})",
        "status": _status(base, i),
        "priority": _priority(base, i),
        "assignee": None if i % 5 == 0 else _user(base, i % 11),
        "reporter": _user(base, i % 3),
        "created": _datetime(created),
        "updated": _datetime(created + (i * 104_729) % 2_592_000_000),
        "project": _project_ref(base, (i - 1) % 2 + 1),
        "issuetype": _issue_type(base, i),
        "labels": ["customer"] if i % 3 == 0 else [],
    }


def issue(base: str, i: int, fields: set[str] | None) -> dict[str, Any]:
    """Issue ``i`` as search returns it: only ``id`` unless other fields are asked for."""
    if not fields or fields <= {"id"}:
        return {"id": issue_id(i)}
    out: dict[str, Any] = {
        "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
        "versionedRepresentations",
        "id": issue_id(i),
        "self": f"{base}/rest/api/3/issue/{issue_id(i)}",
        "key": issue_key(i),
    }
    wanted = fields - {"id", "key"}
    if wanted:
        all_fields = issue_fields(base, i)
        out["fields"] = {f: all_fields[f] for f in ISSUE_FIELDS if f in wanted}
    return out


def project(base: str, n: int) -> dict[str, Any]:
    return {
        "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
        **_project_ref(base, n),
        "style": "classic",
        "isPrivate": False,
        "properties": {},
    }
