"""Zendesk sandbox speaks Zendesk: cursor and offset pages, rate headers, errors, OAuth."""

from __future__ import annotations

import time
from functools import partial

from support import refresh_grant

from sandbox.zendesk import decode_cursor, encode_cursor

TICKETS = "/zendesk/api/v2/tickets.json"
TOKEN = "/zendesk/oauth/tokens"
RATE_HEADERS = (
    "x-rate-limit",
    "x-rate-limit-remaining",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "zendesk-ratelimit-tickets-index",
)
FIELDS = {
    "id", "url", "subject", "description", "status", "priority", "assignee_id",
    "requester_id", "created_at", "updated_at", "tags",
}  # fmt: skip


def bearer(account: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['access_token']}"}


def volume(client, n: int) -> None:
    resp = client.post("/_sandbox/config", json={"volumes": {"zendesk.tickets": n}})
    assert resp.status_code == 200, resp.text


refresh = partial(refresh_grant, TOKEN)


def test_cursor_pages_every_ticket_once_and_has_more_ends(make_client, mint):
    client = make_client()
    volume(client, 250)
    h = bearer(mint(client, "zendesk"))
    ids: list[int] = []
    params: dict = {"page[size]": 100}
    pages = 0
    while True:
        doc = client.get(TICKETS, params=params, headers=h).json()
        pages += 1
        ids += [t["id"] for t in doc["tickets"]]
        assert set(doc) == {"tickets", "meta", "links"}
        if not doc["meta"]["has_more"]:
            break
        params["page[after]"] = doc["meta"]["after_cursor"]
    assert ids == list(range(1, 251)) and pages == 3
    # Like Zendesk, the last page still names an after_cursor and a next link.
    last = doc["meta"]
    assert last["after_cursor"] and doc["links"]["next"]
    assert decode_cursor(last["after_cursor"]) == 250
    after_end = client.get(
        TICKETS, params={"page[size]": 100, "page[after]": last["after_cursor"]}, headers=h
    ).json()
    assert after_end["tickets"] == [] and after_end["meta"] == {
        "has_more": False,
        "after_cursor": None,
        "before_cursor": None,
    }

    first = client.get(TICKETS, params={"page[size]": 100}, headers=h).json()
    t = first["tickets"][0]
    assert set(t) >= FIELDS
    assert t["url"] == "http://testserver/zendesk/api/v2/tickets/1.json"
    assert t["created_at"].endswith("Z") and isinstance(t["tags"], list)
    assert not first["tickets"][6]["subject"].isascii()  # every 7th is multi-byte
    # links.next carries every parameter; following it gives the next page.
    nxt = first["links"]["next"]
    assert nxt.startswith("http://testserver/zendesk/api/v2/tickets.json?page[size]=100&")
    assert client.get(nxt, headers=h).json()["tickets"][0]["id"] == 101
    # page[before] walks backwards from the second page.
    second = client.get(nxt, headers=h).json()
    back = client.get(
        TICKETS,
        params={"page[size]": 100, "page[before]": second["meta"]["before_cursor"]},
        headers=h,
    ).json()
    assert [x["id"] for x in back["tickets"]] == list(range(1, 101))
    assert client.get(second["links"]["prev"], headers=h).json()["tickets"][0]["id"] == 1
    # Data is a pure function of the index.
    fresh = make_client()
    volume(fresh, 250)
    again = fresh.get(TICKETS, params={"page[size]": 5}, headers=bearer(mint(fresh, "zendesk")))
    assert again.json()["tickets"] == first["tickets"][:5]


def test_empty_and_single_page(make_client, mint):
    client = make_client()
    h = bearer(mint(client, "zendesk"))
    volume(client, 0)
    doc = client.get(TICKETS, params={"page[size]": 100}, headers=h).json()
    assert doc == {
        "tickets": [],
        "meta": {"has_more": False, "after_cursor": None, "before_cursor": None},
        "links": {"prev": None, "next": None},
    }
    volume(client, 42)
    doc = client.get(TICKETS, params={"page[size]": 100}, headers=h).json()
    assert len(doc["tickets"]) == 42 and doc["meta"]["has_more"] is False


def test_pagination_parameter_errors(make_client, mint):
    client = make_client()
    h = bearer(mint(client, "zendesk"))
    resp = client.get(TICKETS, params={"page[size]": 101}, headers=h)
    assert resp.status_code == 400
    assert resp.json()["error"] == "InvalidPaginationParameter"
    assert resp.json()["description"].startswith("page[size] must be")
    assert all(name in resp.headers for name in RATE_HEADERS)
    for bad in ("garbage!", "bm90LWpzb24", encode_cursor(3)[:-4] + "AAAA"):
        resp = client.get(TICKETS, params={"page[size]": 10, "page[after]": bad}, headers=h)
        assert resp.status_code == 400, bad
        assert resp.json() == {
            "error": "InvalidPaginationParameter",
            "description": "page[after] is not a valid cursor",
        }
    resp = client.get(TICKETS, params={"page[size]": "ten"}, headers=h)
    assert resp.status_code == 400 and resp.json()["error"]["title"] == "Invalid attribute"


def test_offset_pages_and_depth_limit(make_client, mint):
    client = make_client()
    volume(client, 20_000)
    h = bearer(mint(client, "zendesk"))
    doc = client.get(TICKETS, headers=h).json()
    assert set(doc) == {"tickets", "next_page", "previous_page", "count"}
    assert len(doc["tickets"]) == 100 and doc["count"] == 20_000
    assert doc["previous_page"] is None and "page=2" in doc["next_page"]
    last_allowed = client.get(TICKETS, params={"page": 100, "per_page": 100}, headers=h)
    assert last_allowed.status_code == 200
    assert last_allowed.json()["tickets"][-1]["id"] == 10_000
    resp = client.get(last_allowed.json()["next_page"], headers=h)
    assert resp.status_code == 400
    err = resp.json()["errors"][0]
    assert err["code"] == "InvalidPaginationDepth" and "10000" in err["title"]
    # Cursor paging has no such limit.
    deep = client.get(
        TICKETS, params={"page[size]": 100, "page[after]": encode_cursor(15_000)}, headers=h
    ).json()
    assert deep["tickets"][0]["id"] == 15_001


def test_401_shape(make_client, mint):
    client = make_client()
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eA=="}):
        resp = client.get(TICKETS, params={"page[size]": 10}, headers=headers)
        assert resp.status_code == 401
        assert resp.json() == {"error": "Couldn't authenticate you"}
        assert all(name in resp.headers for name in RATE_HEADERS)  # on every response
    expired = mint(client, "zendesk", expires_in=0)
    resp = client.get(TICKETS, params={"page[size]": 10}, headers=bearer(expired))
    assert resp.status_code == 401 and resp.json() == {"error": "Couldn't authenticate you"}
    # A HubSpot token is no Zendesk token.
    resp = client.get(TICKETS, headers=bearer(mint(client, "hubspot")))
    assert resp.status_code == 401


def test_rate_headers_429_and_recovery(make_client, mint):
    client = make_client(rate_budget=3, rate_window_ms=1500)
    h = bearer(mint(client, "zendesk"))
    seen = []
    for _ in range(3):
        resp = client.get(TICKETS, params={"page[size]": 1}, headers=h)
        assert resp.status_code == 200
        assert all(name in resp.headers for name in RATE_HEADERS)
        seen.append(resp.headers["x-rate-limit-remaining"])
        assert resp.headers["ratelimit-remaining"] == seen[-1]
    assert seen == ["2", "1", "0"]
    assert resp.headers["x-rate-limit"] == "3" and resp.headers["ratelimit-limit"] == "3"
    assert resp.headers["ratelimit-reset"] == "2"  # delta seconds, never an epoch
    assert resp.headers["zendesk-ratelimit-tickets-index"] == "total=3; remaining=0; resets=2"
    resp = client.get(TICKETS, params={"page[size]": 1}, headers=h)
    assert resp.status_code == 429
    assert resp.json() == {
        "error": "APIRateLimitExceeded",
        "description": "Number of allowed API requests per minute exceeded",
    }
    assert resp.headers["Retry-After"] in ("1", "2")
    assert all(name in resp.headers for name in RATE_HEADERS)
    time.sleep(1.6)
    assert client.get(TICKETS, params={"page[size]": 1}, headers=h).status_code == 200


def test_refresh_rotates_and_old_token_is_refused(make_client, mint):
    client = make_client(token_ttl_s=7200)
    account = mint(client, "zendesk")
    resp = refresh(client, account)
    assert resp.status_code == 200
    doc = resp.json()
    assert set(doc) == {"access_token", "refresh_token", "token_type", "scope", "expires_in"}
    assert doc["token_type"] == "bearer" and doc["scope"] == "read"
    assert doc["expires_in"] == 7200
    assert doc["refresh_token"] != account["refresh_token"]  # Zendesk rotates
    assert client.get(TICKETS, params={"page[size]": 1}, headers=bearer(doc)).status_code == 200

    reused = refresh(client, account)  # the old refresh token is gone
    assert reused.status_code == 400
    assert reused.json() == {
        "error": "invalid_grant",
        "error_description": "The provided authorization grant is invalid, expired, revoked, "
        "does not match the redirection URI used in the authorization request, or was issued "
        "to another client.",
    }
    second = refresh(client, account, doc["refresh_token"])
    assert second.status_code == 200

    # JSON bodies work too (Zendesk's docs show JSON).
    body = {
        "grant_type": "refresh_token",
        "refresh_token": second.json()["refresh_token"],
        "client_id": account["client_id"],
        "client_secret": account["client_secret"],
    }
    again = client.post(TOKEN, json=body)
    assert again.status_code == 200 and again.json()["access_token"]

    bad_client = refresh(client, account, client_secret="wrong")
    assert bad_client.status_code == 401 and bad_client.json()["error"] == "invalid_client"
    grant = refresh(client, account, grant_type="password")
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"
    stats = client.get("/_sandbox/stats").json()
    assert stats["refresh_calls"]["zendesk"] == 6
    log = client.get("/_sandbox/requests", params={"vendor": "zendesk"}).json()
    assert {e["kind"] for e in log if e["path"] == TOKEN} == {"token"}


def test_rotation_can_be_switched_off(make_client, mint):
    client = make_client()
    client.post("/_sandbox/config", json={"rotate_refresh_tokens": {"zendesk": False}})
    account = mint(client, "zendesk")
    assert refresh(client, account).json()["refresh_token"] == account["refresh_token"]
