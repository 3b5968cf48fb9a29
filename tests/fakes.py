"""The one in-process stand-in for the wire: canned vendor responses and a fake transport.

`canned()` builds a vendor's answer as the real transport hands it over (a
`requests.Response`), so a connector's `classify`, a pagination dialect or `ratelimit.parse`
read it exactly as they read a live one. `FakeHttp` is what a connector's `fetch` may call on
its http object (`connectors.base.Http`: `base_url`, `vendor`, `request`, `download`), answering
from a queue and recording what was asked. It adds no auth, refresh or classification: those
belong to `connectors.http.VendorHttp`, tested over the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http.client import responses as REASONS
from typing import Any, NamedTuple

import requests

from connectors.base import Vendor

Answer = requests.Response | BaseException | dict[str, Any] | list[Any]


def canned(
    status: int = 200,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    content: bytes | None = None,
    url: str = "",
) -> requests.Response:
    """A response with `content` as given, else `body` as JSON (no body when both are None)."""
    resp = requests.Response()
    resp.status_code = status
    resp.reason = REASONS.get(status, "")
    resp.headers.update(headers or {})
    if content is None:
        content = b"" if body is None else json.dumps(body).encode()
    resp._content = content  # requests has no public setter for a body already read
    resp.url = url
    return resp


class Sent(NamedTuple):
    """One request a connector made through `FakeHttp`."""

    method: str
    path: str
    kwargs: dict[str, Any]

    @property
    def json(self) -> Any:
        return self.kwargs.get("json")


class FakeHttp:
    """`connectors.base.Http` in process: each request takes the next answer of the queue (a
    response; a JSON document, answered 200; or an exception, raised); `files` answers
    downloads by URL."""

    def __init__(
        self,
        *answers: Answer,
        base_url: str = "https://vendor.example",
        vendor: Vendor | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        self.base_url = base_url
        self.vendor = vendor or Vendor("fake", base_url, "/oauth/token")
        self.answers = list(answers)
        self.files = dict(files or {})
        self.sent: list[Sent] = []
        self.downloads: list[str] = []

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        self.sent.append(Sent(method, path, kwargs))
        if not self.answers:
            raise AssertionError(f"no canned answer left for {method} {path}")
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer if isinstance(answer, requests.Response) else canned(200, answer)

    def download(self, url: str) -> bytes:
        self.downloads.append(url)
        if url not in self.files:
            raise AssertionError(f"no canned file at {url}")
        return self.files[url]
