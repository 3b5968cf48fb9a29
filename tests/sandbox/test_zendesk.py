"""Zendesk sandbox speaks Zendesk: cursor and offset pages, rate headers, errors, OAuth."""

from __future__ import annotations

import time
from functools import partial

import pytest
import requests
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


# ---- writes, over real HTTP -------------------------------------------------------------

CREATE = "/zendesk/api/v2/tickets"
NEW = {"ticket": {"subject": "Printer on fire", "comment": {"body": "It smokes."},
                  "external_id": "toolqueue:job-1:0", "priority": "high"}}  # fmt: skip


@pytest.fixture
def zendesk_live(live_sandbox):
    live_sandbox.config(volumes={"zendesk.tickets": 50})
    body = {"vendor": "zendesk", "client_id": "cid", "client_secret": "cs"}
    token = requests.post(f"{live_sandbox.url}/_sandbox/tokens", json=body).json()
    live_sandbox.h = bearer(token)
    return live_sandbox


def create(live, payload, key: str | None = None) -> requests.Response:
    headers = {**live.h, **({"Idempotency-Key": key} if key else {})}
    return requests.post(f"{live.url}{CREATE}", json=payload, headers=headers, timeout=5)


def test_a_create_replayed_with_its_key_is_a_hit_with_one_effect(zendesk_live):
    assert zendesk_live.config()["idempotency_ttl_s"] == 7200  # Zendesk keeps keys 2 hours
    first = create(zendesk_live, NEW, key="z-1")
    assert first.status_code == 201, first.text
    assert first.headers["x-idempotency-lookup"] == "miss"
    assert all(h in first.headers for h in RATE_HEADERS)
    t = first.json()["ticket"]
    assert (t["subject"], t["description"], t["external_id"], t["priority"], t["status"]) == (
        "Printer on fire", "It smokes.", "toolqueue:job-1:0", "high", "new",
    )  # fmt: skip
    assert isinstance(t["id"], int) and t["url"].endswith(f"/api/v2/tickets/{t['id']}.json")
    again = create(zendesk_live, NEW, key="z-1")
    assert again.status_code == 201 and again.headers["x-idempotency-lookup"] == "hit"
    assert again.json() == first.json()
    effects = zendesk_live.effects("zendesk")
    assert [(e["kind"], e["object_id"], e["idempotency_key"]) for e in effects] == [
        ("create", str(t["id"]), "z-1")
    ]
    assert effects[0]["fields"] == NEW["ticket"]
    shown = requests.get(f"{zendesk_live.url}{CREATE}/{t['id']}.json", headers=zendesk_live.h)
    assert shown.status_code == 200 and shown.json()["ticket"] == t
    assert "x-idempotency-lookup" not in create(zendesk_live, NEW).headers  # no key, no lookup


def test_the_same_key_with_another_payload_is_an_idempotent_request_error(zendesk_live):
    create(zendesk_live, NEW, key="z-2")
    other = {"ticket": {**NEW["ticket"], "subject": "Another"}}
    resp = create(zendesk_live, other, key="z-2")
    assert resp.status_code == 400
    assert resp.json() == {
        "error": "IdempotentRequestError",
        "description": "Request parameters don't match the given idempotency key",
    }
    assert len(zendesk_live.effects("zendesk")) == 1


def test_past_the_key_lifetime_a_resend_duplicates_and_external_id_finds_both(zendesk_live):
    zendesk_live.config(idempotency_ttl_s=0)
    one = create(zendesk_live, NEW, key="z-3").json()["ticket"]
    two = create(zendesk_live, NEW, key="z-3")
    assert two.headers["x-idempotency-lookup"] == "miss"
    assert two.json()["ticket"]["id"] != one["id"]
    for path in ("/zendesk/api/v2/tickets", "/zendesk/api/v2/tickets.json"):
        found = requests.get(
            f"{zendesk_live.url}{path}",
            params={"external_id": "toolqueue:job-1:0"},
            headers=zendesk_live.h,
        ).json()
        assert [x["id"] for x in found["tickets"]] == [one["id"], two.json()["ticket"]["id"]]
        assert found["count"] == 2
    none = requests.get(
        f"{zendesk_live.url}{CREATE}", params={"external_id": "nope"}, headers=zendesk_live.h
    ).json()
    assert none["tickets"] == [] and none["count"] == 0


def test_a_create_committed_then_dropped_is_a_hit_on_resend(zendesk_live):
    zendesk_live.config(drop_after_commit_next=1)
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        create(zendesk_live, NEW, key="z-4")
    effects = zendesk_live.effects("zendesk")
    assert len(effects) == 1 and effects[0]["kind"] == "create"
    resend = create(zendesk_live, NEW, key="z-4")
    assert resend.status_code == 201 and resend.headers["x-idempotency-lookup"] == "hit"
    assert str(resend.json()["ticket"]["id"]) == effects[0]["object_id"]
    assert len(zendesk_live.effects("zendesk")) == 1


def test_a_failure_before_commit_is_a_503_with_no_effect(zendesk_live):
    zendesk_live.config(fail_before_commit_next=1)
    resp = create(zendesk_live, NEW, key="z-5")
    assert resp.status_code == 503 and resp.json()["error"] == "ServiceUnavailable"
    assert zendesk_live.effects("zendesk") == []
    resend = create(zendesk_live, NEW, key="z-5")
    assert resend.status_code == 201 and resend.headers["x-idempotency-lookup"] == "miss"
    assert len(zendesk_live.effects("zendesk")) == 1


def test_validation_errors_are_zendesk_shaped_and_free_the_key(zendesk_live):
    blank = {"ticket": {"subject": "No body", "external_id": "x"}}
    resp = create(zendesk_live, blank, key="z-6")
    assert resp.status_code == 422
    assert resp.json() == {
        "error": "RecordInvalid",
        "description": "Record validation errors",
        "details": {
            "description": [{"description": "Description: cannot be blank", "error": "BlankValue"}]
        },
    }
    bad = {"ticket": {**NEW["ticket"], "status": "exploded"}}
    resp = create(zendesk_live, bad)
    assert resp.status_code == 422 and set(resp.json()["details"]) == {"status"}
    resp = create(zendesk_live, {"subject": "no ticket root"})
    assert resp.status_code == 400 and resp.json()["error"] == "InvalidValue"
    assert zendesk_live.effects("zendesk") == []
    fixed = create(zendesk_live, NEW, key="z-6")  # the refused attempt saved nothing
    assert fixed.status_code == 201 and fixed.headers["x-idempotency-lookup"] == "miss"


def test_update_changes_a_ticket_and_a_missing_one_is_a_404(zendesk_live):
    url = f"{zendesk_live.url}{CREATE}"
    resp = requests.put(
        f"{url}/5.json",
        json={"ticket": {"status": "solved", "comment": {"body": "Done."}}},
        headers=zendesk_live.h,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["ticket"]["id"] == 5 and resp.json()["ticket"]["status"] == "solved"
    assert requests.get(f"{url}/5", headers=zendesk_live.h).json()["ticket"]["status"] == "solved"
    missing = requests.put(f"{url}/99999999", json={"ticket": {}}, headers=zendesk_live.h)
    assert missing.status_code == 404 and missing.json()["error"] == "RecordNotFound"
    effects = zendesk_live.effects("zendesk")
    assert [(e["kind"], e["object_id"]) for e in effects] == [("update", "5")]


def test_a_repeated_update_is_a_noop_a_repeated_comment_is_not(zendesk_live):
    url = f"{zendesk_live.url}{CREATE}/6"
    for _ in range(2):
        put = requests.put(url, json={"ticket": {"priority": "low"}}, headers=zendesk_live.h)
        assert put.status_code == 200, put.text
    for _ in range(2):
        note = {"ticket": {"comment": {"body": "Again.", "public": False}}}
        assert requests.put(url, json=note, headers=zendesk_live.h).status_code == 200
    kinds = [e["kind"] for e in zendesk_live.effects("zendesk")]
    assert kinds == ["update", "noop", "update", "update"]
