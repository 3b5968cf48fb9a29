"""`toolqueue connect VENDOR`: link a vendor account from a terminal, through the same hosted
OAuth flow an end user follows (docs/connect.md).

It asks the API for a connect session, prints its link on stdout (and opens it in a browser
when one is usable and a person is at the terminal), then reads the session's status until
it ends: `connected` / `reactivated` print the account id on stdout and exit 0; `failed`
prints the error code and what to do, `expired` or the timeout say so, exit 1; Ctrl-C
stops waiting, exit 130. Human messages go to stderr, so stdout is the link, then the id.

Nothing secret is printed: the link's token is a single-use handle (handing it over is the
point), and the API key, client secret and vendor tokens never reach this process's output.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import threading
import time
import webbrowser
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from app.cli.common import client as _client

if TYPE_CHECKING:
    from collections.abc import Mapping

    from app.client import Client

POLL_S = 1.0  # between status reads: a person takes seconds at the vendor's page
RETRY_STATUSES = frozenset({429, 503})  # come back later (Retry-After), not an answer
UNREACHABLE_WAIT_S = 2.0  # no answer at all: the API restarting, say
GRACE_S = 15.0  # waited past the link's expiry (clock skew; a callback in flight)
EXIT_INTERRUPTED = 130  # the shells' code for a command stopped by SIGINT
ENDED_WELL = frozenset({"connected", "reactivated"})
# console browsers `webbrowser` may pick without a display: they would take the terminal
CONSOLE_BROWSERS = frozenset({"www-browser", "links", "links2", "elinks", "lynx", "w3m"})
ADVICE = {  # a failed session's `error` -> what to do about it
    "access_denied": "access was refused on the vendor's consent page; run this again and "
    "approve there",
    "cancelled": "Cancel was pressed on the connect page; run this again to connect",
    "account_mismatch": "access was granted to another vendor account than the one being "
    "reconnected; run this again and sign in to the same account at the vendor",
    "site_not_granted": "the Atlassian site asked (--site) was not among those granted",
    "expired_session": "the link expired before the vendor sent the browser back; run this "
    "again (--expires-in gives a new link longer)",
    "state_mismatch": "that authorization was used already; run this again for a new link",
    "code_rejected": "the vendor refused the authorization code: check the OAuth app's "
    "client id, secret and redirect_uri (GET /v1/oauth-apps/VENDOR), then run this again",
    "invalid_hmac": "the vendor's callback signature did not verify: check the OAuth app's "
    "client secret",
    "vendor_unavailable": "the vendor's token endpoint failed; run this again later",
    "vendor_error": "the vendor answered with an error instead of a grant; run this again",
    "account_refused": "the account's URLs were refused by the SSRF rules "
    "(TOOLQUEUE_OUTBOUND_ALLOW_NETWORKS)",
    "oauth_app_not_found": "the OAuth app was removed meanwhile: register it again "
    "(PUT /v1/oauth-apps/VENDOR)",
    "account_not_found": "the account to re-authorize was deleted meanwhile",
}
CREATE_HINTS = {  # an API refusal of the session -> the option that fixes it
    "oauth_app_not_found": "register the tenant's OAuth app first: PUT /v1/oauth-apps/VENDOR "
    "(docs/connect.md)",
    "return_url_not_allowed": "--return-url points at a non-public address: give a public "
    "one, or leave it out for the API's own /connect/done page",
    "invalid_return_url": "pass --return-url as an absolute http(s) URL",
    "shop_required": "Shopify needs --shop (my-shop for my-shop.myshopify.com)",
    "subdomain_required": "Zendesk needs --subdomain (acme for acme.zendesk.com)",
}


def cmd_connect(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        link = _start(client, args)
        _offer(link, args)
        view = wait_for_account(client, link, args.timeout)
    except KeyboardInterrupt:
        print("\nstopped waiting (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return report(view, link, args.vendor)


def _start(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """The session, or exit 1 with the API's refusal and the option that fixes it."""
    from app.client import ClientError

    try:
        return client.connect_session(args.vendor, args.user, **_options(args))
    except ClientError as exc:
        hint = CREATE_HINTS.get(exc.code)
        sys.exit(f"error: {exc}" + (f"\n{hint}" if hint else ""))


def _options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "email": args.email,
        "account_id": args.account,
        "scopes": scopes(args.scopes) if args.scopes is not None else None,
        "shop": args.shop,
        "subdomain": args.subdomain,
        "site": args.site,
        "return_url": args.return_url,
        "expires_in": args.expires_in,
    }


def scopes(text: str) -> list[str]:
    """`--scopes`: words separated by commas or spaces (each vendor joins them its own way)."""
    return [s for s in re.split(r"[\s,]+", text) if s]


def _offer(link: dict[str, Any], args: argparse.Namespace) -> None:
    what = f"re-authorize {args.account}" if args.account else f"connect a {args.vendor} account"
    print(f"Open this link to {what} (single use, until {link['expires_at']}):", file=sys.stderr)
    print(link["connect_url"], flush=True)
    if not args.no_browser and sys.stderr.isatty() and open_browser(link["connect_url"]):
        print("(opening it in your browser)", file=sys.stderr)
    print("waiting for the account… (Ctrl-C to stop)", file=sys.stderr, flush=True)


def open_browser(url: str) -> bool:
    """Open `url` in the default browser if there is a usable one; never blocks. A console
    browser (lynx, w3m …) would take over this terminal, so it does not count; the opener
    runs in a daemon thread because some (`BROWSER` commands) wait for the browser to exit."""
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    name = getattr(browser, "basename", None) or getattr(browser, "name", "")
    if name in CONSOLE_BROWSERS:
        return False
    threading.Thread(target=browser.open, args=(url,), daemon=True).start()
    return True


def wait_for_account(
    client: Client, link: dict[str, Any], timeout_s: float | None, *, poll_s: float = POLL_S
) -> dict[str, Any]:
    """Read the session's status until it is no longer `pending`, `timeout_s` is spent, or
    the link has expired (plus GRACE_S, should the API stay unreachable); returns the last
    view (still `pending` when it gave up; `{"status": "unknown"}` if none was read)."""
    deadline = _deadline(link, timeout_s)
    view: dict[str, Any] = {"status": "unknown", "session_id": link["session_id"]}
    while True:
        read, pause = _read(client, link["session_id"], poll_s)
        view = read or view
        if view["status"] not in ("pending", "unknown"):
            return view
        left = deadline - time.monotonic()
        if left <= 0:
            return view
        time.sleep(min(pause, left))


def _deadline(link: dict[str, Any], timeout_s: float | None) -> float:
    """A monotonic deadline: `timeout_s` from now, never past the link's expiry + GRACE_S."""
    expires = datetime.fromisoformat(link["expires_at"]).timestamp()
    until_expiry = max(0.0, expires - time.time()) + GRACE_S
    return time.monotonic() + min(until_expiry, timeout_s if timeout_s is not None else 1e12)


def _read(client: Client, session_id: str, poll_s: float) -> tuple[dict[str, Any] | None, float]:
    """(the session's view, the pause before the next read); (None, the pause) when the API
    said to come back later (503 `store_unavailable`, 429: their Retry-After) or did not
    answer. Any other refusal (404, 401 …) is raised: waiting would not change it."""
    import requests

    from app.client import ClientError

    try:
        return client.connect_session_get(session_id), poll_s
    except ClientError as exc:
        if exc.status not in RETRY_STATUSES:
            raise
        wait = retry_after(exc.headers) or poll_s
        print(
            f"the API answered {exc.status} {exc.code}; reading again in {wait:g} s",
            file=sys.stderr,
            flush=True,
        )
        return None, wait
    except requests.ConnectionError:
        print(
            f"the API did not answer; reading again in {UNREACHABLE_WAIT_S:g} s",
            file=sys.stderr,
            flush=True,
        )
        return None, UNREACHABLE_WAIT_S


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta seconds or an HTTP date; None if absent or
    unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def report(view: dict[str, Any], link: dict[str, Any], vendor: str) -> int:
    """Say how it ended (on stderr); 0 when an account is connected (its id alone on stdout),
    else 1."""
    err = sys.stderr
    status = view["status"]
    if status in ENDED_WELL:
        verb = "connected" if status == "connected" else "re-authorized"
        print(f"{vendor} account {view['account_id']} {verb}", file=err)
        print(view["account_id"], flush=True)
        return 0
    if status == "failed":
        code = view.get("error") or "unknown"
        advice = ADVICE.get(code, "run this again for a new link")
        print(f"error {code}: {advice}", file=err)
    elif status == "expired":
        print(
            f"error expired_session: the link expired at {link['expires_at']} before an "
            "account was connected; run this again for a new one",
            file=err,
        )
    else:
        print(
            f"gave up waiting: the session {link['session_id']} is still {status}; its link "
            f"works until {link['expires_at']}",
            file=err,
        )
    return 1


Commands = argparse._SubParsersAction  # what `add_subparsers` returns (argparse names it so)


def add_connect(sub: Commands) -> None:
    """`toolqueue connect VENDOR …`."""
    c = sub.add_parser(
        "connect",
        help="link a vendor account: prints a connect link, waits for the account",
        description="Prints a single-use connect link (and opens it when a browser is usable), "
        "waits until the account is connected, then prints its id. " + _EXITS,
    )
    c.add_argument(
        "vendor",
        type=str.lower,
        help="hubspot, salesforce, shopify, github, slack, "
        "jira, zendesk (the tenant's OAuth app for it must be registered)",
    )
    c.add_argument(
        "--user",
        default=_local_user(),
        metavar="ID",
        help="end_user.id: who connects (default: your local user name)",
    )
    c.add_argument("--email", help="end_user.email: the new account is named after it")
    c.add_argument(
        "--account",
        metavar="ACCOUNT_ID",
        help="re-authorize this account (same id; its parked jobs resume)",
    )
    c.add_argument(
        "--scopes",
        metavar="LIST",
        help="ask these scopes instead of the app's (comma or space separated)",
    )
    c.add_argument("--shop", help="Shopify: the shop's subdomain (my-shop)")
    c.add_argument("--subdomain", help="Zendesk: the account's subdomain (acme)")
    c.add_argument("--site", help="Jira: the Atlassian site (acme for acme.atlassian.net)")
    c.add_argument(
        "--return-url",
        metavar="URL",
        help="where the browser lands at the end (default: the API's /connect/done "
        "page under its public URL, which says how it went)",
    )
    c.add_argument(
        "--expires-in",
        type=float,
        metavar="S",
        help="the link works this long (default: the API's, 600 s)",
    )
    c.add_argument("--no-browser", action="store_true", help="print the link, do not open it")
    c.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="stop waiting after S seconds (default: when the link expires)",
    )
    c.set_defaults(fn=cmd_connect)


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no LOGNAME/USER and no passwd entry (some containers)
        return "cli"


_EXITS = "Exit 0 connected or re-authorized, 1 failed, expired or timed out, 130 on Ctrl-C."
