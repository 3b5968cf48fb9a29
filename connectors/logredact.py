"""Credentials in URLs never reach a log line: `?api_key=…`, `?token=…`, a signed download
link's `X-Amz-Signature=…` keep their name and lose their value, and a connect link's token
(`/connect/<token>`) its path segment.

A credential sent in a query string is the client's mistake, but the access log that prints
the request line (uvicorn's), or the HTTP client that prints every request at DEBUG
(urllib3's), would keep it on disk. `install` adds the filter to the loggers that print URLs;
it rewrites the record's arguments (and message) before any handler formats them, whatever
handler or format the process configured.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import unquote

REDACTED = "[redacted]"

# query parameters that carry a secret, by name (compared lower-cased, percent-decoded)
SECRET_PARAMS = frozenset(
    {
        "api_key", "apikey", "api-key", "key", "hapikey", "token", "access_token",
        "refresh_token", "id_token", "client_secret", "secret", "password", "passwd",
        "signature", "sig", "code", "auth", "authorization", "jwt", "x-amz-signature",
        "x-amz-credential", "x-amz-security-token", "x-goog-signature", "x-goog-credential",
    }
)  # fmt: skip
# ... and any name ending like one (`webhook_secret`, `session_token`, `x-api-key`)
SECRET_SUFFIXES = ("_key", "-key", "_token", "-token", "_secret", "-secret", "password")

# a query parameter: after `?`, `&` or `;`, up to the next separator, quote or space
_PARAM = re.compile(r"(?P<lead>[?&;](?P<name>[^=&;#\s\"']+)=)(?P<value>[^&;#\s\"']*)")


def is_secret(name: str) -> bool:
    name = unquote(name).lower()
    return name in SECRET_PARAMS or name.endswith(SECRET_SUFFIXES)


# a path segment that is itself a credential: a connect link's token (`/connect/<token>`)
_PATH_SECRET = re.compile(r"(?P<lead>/connect/)(?!callback\b)(?P<value>[A-Za-z0-9_\-]{16,})")


def redact(text: str) -> str:
    """`text` with the value of every credential-looking query parameter, and every token
    carried in a path, replaced."""
    if "/connect/" in text:
        text = _PATH_SECRET.sub(lambda m: m["lead"] + REDACTED, text)
    if "=" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        return m.group("lead") + REDACTED if m.group("value") and is_secret(m["name"]) else m[0]

    return _PARAM.sub(one, text)


class RedactCredentials(logging.Filter):
    """Rewrites a record's string arguments (uvicorn's request line is one) and message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


_FILTER = RedactCredentials()


def install(*loggers: str) -> None:
    """Filter every record these loggers emit (idempotent)."""
    for name in loggers:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
