"""HubSpot tools end to end (real API, Redis, worker; the sandbox as HubSpot), plus the search
tool's ceiling and SECONDLY handling against canned responses."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fakes import FakeHttp
from support import statuses

OBJECTS = "/hubspot/crm/v3/objects"
HAS_EMAIL = {"filters": [{"propertyName": "email", "operator": "HAS_PROPERTY"}]}
# tool -> (sandbox collection, request path, args that page 100 at a time)
TOOLS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "hubspot.contacts.list": ("hubspot.contacts", f"{OBJECTS}/contacts", {"limit": 100}),
    "hubspot.companies.list": ("hubspot.companies", f"{OBJECTS}/companies", {"limit": 100}),
    "hubspot.deals.list": ("hubspot.deals", f"{OBJECTS}/deals", {"limit": 100}),
    "hubspot.contacts.search": (
        "hubspot.contacts",
        f"{OBJECTS}/contacts/search",
        {"limit": 100, "filter_groups": [HAS_EMAIL]},
    ),
}
SCOPE = {
    "hubspot.contacts": "crm.objects.contacts.read",
    "hubspot.companies": "crm.objects.companies.read",
    "hubspot.deals": "crm.objects.deals.read",
}
FAST_SEARCH = {"hubspot.search": 10_000}  # search's own budget, out of the way


def set_volume(sandbox: Any, collection: str, n: int, **config: Any) -> None:
    if collection == "hubspot.contacts":
        sandbox.config(hubspot_contacts=n, **config)
    else:
        sandbox.config(volumes={collection: n}, **config)


@pytest.mark.parametrize("tool", list(TOOLS))
def test_full_traversal_once_in_order_and_stops_at_end_signal(
    api, fresh_sandbox, tool, run, api_log, record_ids
):
    collection, path, args = TOOLS[tool]
    set_volume(fresh_sandbox, collection, 1050, rate_budgets=FAST_SEARCH)
    account = api.account(fresh_sandbox)
    done = run(account, tool, args, fields=["id"])
    assert done["status"] == "succeeded" and done["truncated"] is False, done
    assert record_ids(done) == [str(i) for i in range(1, 1051)]
    assert done["progress"] == {**done["progress"], "pages": 11, "records": 1050}
    log = api_log("hubspot", path)
    # 11 pages; the 11th carried no `paging` and nothing was asked after it.
    assert [e["status"] for e in log] == [200] * 11
    if tool.endswith(".list"):
        assert "after=" not in log[0]["query"] and all("after=" in e["query"] for e in log[1:])


@pytest.mark.parametrize("tool", list(TOOLS))
def test_empty_collection_and_single_page(api, fresh_sandbox, tool, run, api_log):
    collection, path, args = TOOLS[tool]
    set_volume(fresh_sandbox, collection, 0, rate_budgets=FAST_SEARCH)
    account = api.account(fresh_sandbox)
    empty = run(account, tool, args)
    assert empty["status"] == "succeeded", empty
    assert api.result(empty["job_id"])["records"] == []
    assert len(api_log("hubspot", path)) == 1

    set_volume(fresh_sandbox, collection, 37)
    asked = {
        "hubspot.contacts": ["email"],
        "hubspot.companies": ["name", "industry"],
        "hubspot.deals": ["dealname", "amount"],
    }[collection]
    single = run(account, tool, {**args, "properties": asked})
    assert single["status"] == "succeeded", single
    records = api.result(single["job_id"])["records"]
    assert [r["id"] for r in records] == [str(i) for i in range(1, 38)]
    assert (
        set(asked) <= set(records[0]["properties"]) and "hs_object_id" in records[0]["properties"]
    )
    assert len(api_log("hubspot", path)) == 2  # one request for the single page


def private_app_token(scopes: list[str]) -> str:
    """A private-app token that lacks other scopes (sandbox: `pat-…~scope+scope`)."""
    return f"pat-na1-{uuid.uuid4()}~{'+'.join(scopes)}"


@pytest.mark.parametrize("tool", list(TOOLS))
def test_missing_scope_fails_with_hubspots_category_and_message(
    api, fresh_sandbox, tool, run, api_log, bearer_account
):
    collection, path, args = TOOLS[tool]
    others = [s for c, s in SCOPE.items() if c != collection]
    account = bearer_account("hubspot", private_app_token(others))
    done = run(account, tool, args)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "MISSING_SCOPES"
    assert done["error"]["message"].startswith(
        "This app hasn't been granted all required scopes to make this call."
    )
    assert [e["status"] for e in api_log("hubspot", path)] == [403]  # no retry
    assert api.result(done["job_id"])["error"]["code"] == "MISSING_SCOPES"


def test_search_invalid_operator_fails_with_validation_error(api, fresh_sandbox, run, api_log):
    account = api.account(fresh_sandbox)
    bad = {"filters": [{"propertyName": "email", "operator": "LIKE", "value": "x"}]}
    done = run(account, "hubspot.contacts.search", {"filter_groups": [bad]})
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "VALIDATION_ERROR"
    assert 'from String "LIKE"' in done["error"]["message"]
    assert [e["status"] for e in api_log("hubspot", f"{OBJECTS}/contacts/search")] == [400]


def test_search_filters_reach_hubspot(api, fresh_sandbox, run, record_ids):
    from sandbox.hubspot import contact

    account = api.account(fresh_sandbox)  # 1000 contacts
    groups = [
        {
            "filters": [
                {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@acme.example"}
            ]
        },
        {
            "filters": [
                {"propertyName": "firstname", "operator": "EQ", "value": "Bob"},
                {"propertyName": "company", "operator": "EQ", "value": "Globex"},
            ]
        },
    ]
    done = run(
        account,
        "hubspot.contacts.search",
        {
            "filter_groups": groups,
            "limit": 20,
            "sorts": [{"propertyName": "createdate", "direction": "DESCENDING"}],
        },
        fields=["id"],
    )
    assert done["status"] == "succeeded", done

    def hit(p: dict[str, str]) -> bool:
        return p["email"].endswith("@acme.example") or (
            p["firstname"] == "Bob" and p["company"] == "Globex"
        )

    expected = [str(i) for i in range(1000, 0, -1) if hit(contact(i)["properties"])]
    assert len(expected) > 60 and record_ids(done) == expected


@pytest.mark.parametrize("tool", list(TOOLS))
def test_rate_limit_refusal_waits_then_completes(
    api, fresh_sandbox, tool, run, api_log, record_ids
):
    collection, path, args = TOOLS[tool]
    if tool.endswith(".search"):  # search: its own ~5/s limit, 429 SECONDLY, no headers
        set_volume(fresh_sandbox, collection, 1000, rate_budgets={"hubspot.search": 3})
    else:  # lists: another app spent the portal's rolling window (429 TEN_SECONDLY_ROLLING)
        set_volume(fresh_sandbox, collection, 1000, rate_budget=4, rate_window_ms=2000)
        assert fresh_sandbox.spend("hubspot", path.removeprefix("/hubspot/"), 4) == [200] * 4
    account = api.account(fresh_sandbox)
    done = run(account, tool, args, fields=["id"])
    assert done["status"] == "succeeded", done
    assert "waiting_rate_limit" in statuses(done)
    assert record_ids(done) == [str(i) for i in range(1, 1001)]
    log = api_log("hubspot", path)
    if not tool.endswith(".search"):
        log = log[4:]
    refused = [e for e in log if e["status"] == 429]
    assert refused and len(log) - len(refused) == 10
    policy = "SECONDLY" if tool.endswith(".search") else "TEN_SECONDLY_ROLLING"
    waits = [h["reason"] for h in done["history"] if h["status"] == "waiting_rate_limit"]
    assert f"({policy})" in waits[0]
    if tool.endswith(".search"):  # no rate headers on search: every wait is the vendor's
        assert all(f"({policy})" in w for w in waits)
        assert len(refused) <= 4  # each refusal was waited out, no burst of retries
    else:  # the refusal taught the budget the portal's limit: the rest is paced, not refused
        assert len(refused) == 1 and log[0]["status"] == 429
        assert all("account budget" in w for w in waits[1:])


def test_search_ceiling_ends_with_a_clear_error_after_10000(
    api, fresh_sandbox, run, api_log, record_ids
):
    fresh_sandbox.config(hubspot_contacts=10_500, rate_budgets=FAST_SEARCH)
    account = api.account(fresh_sandbox)
    done = run(
        account,
        "hubspot.contacts.search",
        {"filter_groups": [HAS_EMAIL], "limit": 200},
        fields=["id"],
        delivery="blocks",
    )
    assert done["status"] == "failed", done
    err = done["error"]
    assert err["code"] == "SEARCH_RESULT_CEILING"
    assert "10,000" in err["message"] and "10,500" in err["message"]
    assert "hubspot.contacts.list" in err["message"] and "filters" in err["message"]
    assert done["progress"]["records"] == 10_000
    assert record_ids(done) == [str(i) for i in range(1, 10_001)]
    log = api_log("hubspot", f"{OBJECTS}/contacts/search")
    assert [e["status"] for e in log] == [200] * 50  # never asked for after=10000 (a 400)
    assert api.result(done["job_id"])["error"]["code"] == "SEARCH_RESULT_CEILING"


# ---- the search tool's own logic against canned HubSpot answers -----------------------------


def test_search_tool_cursor_ceiling_and_secondly_wait():
    from connectors import ratelimit
    from connectors.errors import ConnectorError
    from connectors.hubspot import SearchArgs, search_contacts

    args = SearchArgs(filter_groups=[HAS_EMAIL], limit=200, properties=["email"])
    page = {"total": 12_345, "results": [{"id": "1"}], "paging": {"next": {"after": "9800"}}}
    http = FakeHttp(page)
    got = search_contacts(http, args, "9600")
    assert got.next_cursor == "9800"
    method, path, sent = http.sent[0]
    assert (method, path) == ("POST", "/crm/v3/objects/contacts/search")
    assert sent["json"] == {
        "filterGroups": [HAS_EMAIL],
        "limit": 200,
        "properties": ["email"],
        "after": "9600",
    }
    # HubSpot offers after=10000 on the page ending at the ceiling: the tool keeps the page
    # and ends the job on the next fetch, naming the total, without asking HubSpot.
    http = FakeHttp({**page, "paging": {"next": {"after": "10000"}}})
    got = search_contacts(http, args, "9800")
    assert got.records == [{"id": "1"}] and isinstance(got.next_cursor, dict)
    with pytest.raises(ConnectorError) as exc:
        search_contacts(http, args, got.next_cursor)
    assert exc.value.code == "SEARCH_RESULT_CEILING" and "12,345" in exc.value.message
    assert len(exc.value.message) <= 300 and len(http.sent) == 1
    with pytest.raises(ConnectorError):
        search_contacts(FakeHttp(), args, "10000")
    # Exactly 10,000 matches: the last page has no paging, the job simply succeeds.
    last = search_contacts(FakeHttp({"total": 10_000, "results": [{"id": "x"}]}), args, "9800")
    assert last.next_cursor is None
    # SECONDLY 429s name no reset: wait one second (search's window).
    body = b'{"status":"error","errorType":"RATE_LIMIT","policyName":"SECONDLY"}'
    rl = ratelimit.parse({}, 429, body)
    assert rl.limited and rl.wait == 1.0 and rl.policy == "SECONDLY"
    assert FakeHttp().sent == [] and SearchArgs().model_dump()["filter_groups"] == []
