"""Hostile input on the pages a browser opens (the connect page, its callback, the done page,
the MCP sign-in) and on the connect-session API: raw bytes that are no UTF-8, NULs, huge and
repeated parameters, odd URLs. Every answer is below 500; a JSON route's error has its code,
and no page echoes what it was sent unescaped."""

from __future__ import annotations

import json

import pytest
import requests

ODD = ["%ED%A0%80", "%00", "%FF%FE", "a" * 10_000, "%F0%9F%92%A9" * 500,
       "<script>alert(1)</script>", "..%2F..%2Fetc%2Fpasswd",
       "%0d%0aSet-Cookie:%20x=1"]  # fmt: skip
PAGES = ["/connect/{v}", "/connect/callback?code={v}&state={v}", "/connect/callback?state={v}",
         "/connect/callback?error={v}&state={v}", "/connect/done?account_id={v}&error={v}",
         "/connect/done?status={v}", "/oauth/signin?request={v}",
         "/authorize?client_id={v}&response_type=code&redirect_uri={v}"]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
def test_browser_pages_refuse_hostile_queries_below_500(api, path):
    for value in ODD:
        resp = requests.get(api.url + path.format(v=value), timeout=10, allow_redirects=False)
        assert resp.status_code < 500, (path, value, resp.text[:300])
        assert "<script>alert(1)</script>" not in resp.text, (path, value)
        assert "x=1" not in str(resp.headers.get("set-cookie"))  # no header injected


def test_a_callback_with_a_thousand_repeated_parameters_is_refused_below_500(api):
    query = "&".join(f"state=s{i}&code=c{i}" for i in range(1000))
    resp = requests.get(f"{api.url}/connect/callback?{query}", timeout=10, allow_redirects=False)
    assert resp.status_code < 500 and "state_mismatch" in resp.text


def test_the_signin_form_refuses_hostile_posts_below_500(api):
    bodies = [b"", b"request=%ED%A0%80&api_key=%00&action=approve", b"request=" + b"a" * 200_000,
              b"api_key=" + b"%FF" * 1000 + b"&action=approve", b"\xff\xfe\x00garbage",
              b"action=approve&action=deny&request=x&request=y"]  # fmt: skip
    for body in bodies:
        resp = requests.post(f"{api.url}/oauth/signin", data=body, timeout=10,
                             headers={"content-type": "application/x-www-form-urlencoded"},
                             allow_redirects=False)  # fmt: skip
        assert resp.status_code < 500, (body[:40], resp.text[:300])


RETURN_URLS = ["javascript:alert(1)", "file:///etc/passwd", "http://169.254.169.254/latest",
               "http://user:pw@127.0.0.1@evil.example/", "//evil.example", "http://10.0.0.1/",
               "data:text/html,hi", "http://exa mple.com/", "http://[fd00::1]/",
               "\ud800", "https://" + "a" * 3000 + ".example/"]  # fmt: skip


def test_hostile_connect_sessions_get_4xx_with_a_code(api, fresh_sandbox):
    from connectkit import oauth_app

    oauth_app(api, fresh_sandbox, "hubspot")  # so each body reaches the checks, not a 404
    bodies = [
        *({"vendor": "hubspot", "end_user": {"id": "u"}, "return_url": u} for u in RETURN_URLS),
        {"vendor": "hubspot", "end_user": {"id": "\ud800"}, "return_url": "https://a.example/"},
        {"vendor": "hubspot", "end_user": {"id": "u" * 100_000}, "return_url": "https://a.example/"},
        {"vendor": "hubspot", "end_user": [], "return_url": "https://a.example/"},
        {"vendor": "\u0000", "end_user": {"id": "u"}, "return_url": "https://a.example/"},
        {"vendor": "hubspot", "end_user": {"id": "u"}, "return_url": "https://a.example/",
         "scopes": ["x"] * 10_000},
        {"vendor": "hubspot", "end_user": {"id": "u"}, "return_url": "https://a.example/",
         "expires_in": 10**30},
        {"vendor": "hubspot", "end_user": {"id": "u"}, "return_url": "https://a.example/",
         "expires_in": -1},
        {"vendor": "hubspot", "end_user": {"id": "u"}, "return_url": "https://a.example/",
         "account_id": "../../x"},
    ]  # fmt: skip
    codes: list[str] = []
    for body in bodies:
        raw = json.dumps(body).encode()  # lone surrogates go as \ud800 escapes, as JSON allows
        resp = api.s.post(f"{api.url}/v1/connect/sessions", data=raw, timeout=10,
                          headers={"content-type": "application/json"})  # fmt: skip
        assert 400 <= resp.status_code < 500, (str(body)[:120], resp.status_code, resp.text[:300])
        codes.append(resp.json()["error"])
    assert "oauth_app_not_found" not in codes
    refused = {"invalid_return_url", "return_url_not_allowed", "invalid_request", "invalid_string"}
    assert set(codes[: len(RETURN_URLS)]) <= refused, codes
    assert codes[2] == codes[5] == codes[8] == "return_url_not_allowed"  # metadata, 10/8, fd00::/8
    assert codes[9] == "invalid_string"  # a lone surrogate
