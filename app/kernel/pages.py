"""The one HTML shell of the pages a person sees (the connect page, the MCP sign-in page,
the approval pages): English, readable on a phone, a visible focus ring, no script and no
outside resource, so a strict Content-Security-Policy and a browser without JavaScript both
show it whole."""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "line-height:1.5}a.button,button{display:inline-block;padding:.6rem 1.2rem;font:inherit;"
    "border:0;border-radius:.3rem;background:#1a56db;color:#fff;text-decoration:none;"
    "cursor:pointer}button.secondary{background:#e5e7eb;color:#111}input{font:inherit;"
    "padding:.4rem;width:100%;box-sizing:border-box}a:focus,button:focus,input:focus"
    "{outline:3px solid #f59e0b}"
)


# what every such page is sent with: never cached, no Referer to where it links, and never
# framed (a framed Approve button is a clickjacking target)
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
}


def document(title: str, body: str) -> str:
    """A whole page: `title` is escaped here; `body` is HTML its caller escaped."""
    return (
        '<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><main>{body}</main></body>\n</html>\n"
    )
