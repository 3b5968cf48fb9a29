"""Issues and comments the sandbox's writes created, kept in the shared ``WriteStore``.

A created issue continues its project's key sequence after the seeded issues (ENG holds the
odd seeded numbers, OPS the even ones) and starts in "To Do" of a small fixed workflow:
To Do → In Progress → Done, Done or In Progress → To Do (Jira's simplified workflow ids 11,
21, 31). Seeded issues stay read-only, except that they take comments.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sandbox.jira.data import CATEGORIES, ISSUE_TYPES, _project_ref, _user, issue_id, issue_key
from sandbox.state import SandboxState

NAME = "jira"
CREATED_ID_BASE = 1_000_000  # created issue ids, past any seeded volume
COMMENT_ID_BASE = 10_000
STATUSES = {"To Do": ("10000", "new"), "In Progress": ("3", "indeterminate"),
            "Done": ("10001", "done")}  # fmt: skip
TRANSITIONS = {"11": "To Do", "21": "In Progress", "31": "Done"}  # id -> target status
ALLOWED = {"To Do": ("21",), "In Progress": ("11", "31"), "Done": ("11",)}
SEEDED_KEY = re.compile(r"(ENG|OPS)-(\d+)")
ADF_HINT = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"


def now() -> str:
    """Jira's timestamp form: ``2024-01-15T10:30:00.000+0000``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def is_adf(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") == "doc" and "content" in value


def viewer(base: str) -> dict[str, Any]:
    """The account every sandbox token acts as."""
    return _user(base, 0)


def project_number(key: str, projects: int) -> int | None:
    """1 for ENG, 2 for OPS, n for PRJ00000n (if the site has that many projects)."""
    if key in ("ENG", "OPS"):
        return 1 if key == "ENG" else 2
    m = re.fullmatch(r"PRJ(\d{6})", key)
    return int(m.group(1)) if m and 3 <= int(m.group(1)) <= projects else None


def issue_type(base: str, name: str) -> dict[str, Any] | None:
    for type_id, type_name in ISSUE_TYPES:
        if type_name.lower() == name.lower():
            icon = f"{base}/rest/api/2/universal_avatar/view/type/issuetype/avatar/{type_id}"
            return {"self": f"{base}/rest/api/3/issuetype/{type_id}", "id": type_id,
                    "description": "", "iconUrl": icon, "name": type_name,
                    "subtask": False, "hierarchyLevel": 0}  # fmt: skip
    return None


def status(base: str, name: str) -> dict[str, Any]:
    sid, category = STATUSES[name]
    cat_id, cat_key, color, cat_name = CATEGORIES[category]
    return {"self": f"{base}/rest/api/3/status/{sid}", "description": "",
            "iconUrl": f"{base}/images/icons/statuses/{cat_key}.png", "name": name, "id": sid,
            "statusCategory": {"self": f"{base}/rest/api/3/statuscategory/{cat_id}",
                               "id": cat_id, "key": cat_key, "colorName": color,
                               "name": cat_name}}  # fmt: skip


def new_issue(
    state: SandboxState, base: str, project: tuple[str, int], fields: dict[str, Any],
    properties: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """The stored form of a created issue: ``id``, ``key``, ``self``, ``fields``, ``properties``."""
    key, number = project
    seeded = state.config.volume("jira.issues")
    before = {"ENG": (seeded + 1) // 2, "OPS": seeded // 2}.get(key, 0)
    iid = str(CREATED_ID_BASE + state.writes.next_number(NAME))
    stamp = now()
    out = {"summary": fields["summary"], "status": status(base, "To Do"),
           "priority": None, "assignee": None, "reporter": viewer(base), "created": stamp,
           "updated": stamp, "project": _project_ref(base, number),
           "issuetype": issue_type(base, fields["issuetype"]["name"]),
           "labels": list(fields.get("labels") or []),
           "description": fields.get("description")}  # fmt: skip
    issue_no = before + state.writes.next_number(f"{NAME}:{key}")
    return {"id": iid, "key": f"{key}-{issue_no}", "self": f"{base}/rest/api/3/issue/{iid}",
            "fields": out, "properties": properties}  # fmt: skip


def seeded(state: SandboxState, key: str) -> int | None:
    """The index of a seeded issue key (ENG-k is 2k - 1, OPS-k is 2k), if the site holds it."""
    m = SEEDED_KEY.fullmatch(key)
    if not m:
        return None
    i = 2 * int(m.group(2)) - (1 if m.group(1) == "ENG" else 0)
    return i if 1 <= i <= state.config.volume("jira.issues") else None


def created(state: SandboxState, key_or_id: str) -> dict[str, Any] | None:
    """A created issue by key, or by id."""
    if (found := state.writes.get(NAME, key_or_id)) is not None:
        return found
    hits = state.writes.select(NAME, lambda o: o.get("id") == key_or_id and "fields" in o)
    return hits[0] if hits else None


def exists(state: SandboxState, key: str) -> tuple[str, str] | None:
    """(id, key) of a created or seeded issue named by key or id."""
    if (found := created(state, key)) is not None:
        return found["id"], found["key"]
    if key.isdigit() and 1 <= int(key) - 10000 <= state.config.volume("jira.issues"):
        key = issue_key(int(key) - 10000)
    i = seeded(state, key)
    return (issue_id(i), issue_key(i)) if i is not None else None


def properties_list(props: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": v} for k, v in props.items()]


def render(obj: dict[str, Any], wanted: set[str] | None) -> dict[str, Any]:
    """A created issue as search (``wanted`` fields) or ``GET issue`` (None: all) shows it."""
    if wanted is not None and wanted <= {"id"}:
        return {"id": obj["id"]}
    out = {"expand": "renderedFields,names,schema,operations,editmeta,changelog",
           "id": obj["id"], "self": obj["self"], "key": obj["key"]}  # fmt: skip
    fields = obj["fields"]
    if wanted is None or wanted - {"id", "key"}:
        out["fields"] = {k: v for k, v in fields.items() if wanted is None or k in wanted}
    return out


def stamp_updated(obj: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**obj, "fields": {**obj["fields"], **fields, "updated": now()}}


# ---- entity-property JQL: issue.property[<key>].<path> = <value> ------------------------

PROPERTY = re.compile(
    r"issue\.property\[([^\]]+)\]\.([\w.]+)\s*=\s*"
    r"(?:\"((?:[^\"\\]|\\.)*)\"|'([^']*)'|([^\s()\"']+))",
    re.I,
)
PROJECT = re.compile(r"\bproject\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([\w-]+))", re.I)


def _at(value: Any, path: str) -> Any:
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _matches(obj: dict[str, Any], clauses: list[tuple[str, ...]], project: str | None) -> bool:
    if project is not None and obj["key"].split("-")[0].lower() != project.lower():
        return False
    for key, path, *quoted in clauses:
        wanted = next((q for q in quoted if q), "")
        found = _at(obj.get("properties", {}).get(key), path)
        if found is None or str(found).lower() != wanted.replace('\\"', '"').lower():
            return False
    return True


def marked(state: SandboxState, jql: str) -> list[dict[str, Any]] | None:
    """The created issues a JQL with entity-property clauses selects (all of them ANDed, plus a
    ``project =`` clause; other clauses are ignored), oldest first; None: no such clause."""
    clauses = PROPERTY.findall(jql)
    if not clauses:
        return None
    m = PROJECT.search(jql)
    project = next((g for g in m.groups() if g), None) if m else None
    hits = state.writes.select(NAME, lambda o: "fields" in o and _matches(o, clauses, project))
    return sorted(hits, key=lambda o: int(o["id"]))
