"""The official MCP SDK client signing in to /mcp with OAuth, shared by the HTTP-driven tests
(tests/api/test_mcp_oauth.py) and the browser ones (tests/browser): its token storage, its
auth provider (discovery, registration, PKCE, tokens, refresh), a client over it, and a tool
result's JSON body."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from mcp_types import CallToolResult
from pydantic import AnyUrl


def body(result: CallToolResult) -> dict[str, Any]:
    assert len(result.content) == 1 and result.content[0].type == "text", result
    out: dict[str, Any] = json.loads(result.content[0].text)
    return out


class Memory:
    """The SDK client's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def provider(
    api_url: str,
    redirect: str,
    storage: Memory,
    on_redirect: Callable[[str], Awaitable[None]],
    on_callback: Callable[[], Awaitable[AuthorizationCodeResult]],
) -> OAuthClientProvider:
    """The SDK's OAuth client flow for /mcp: discovery, registration, PKCE, tokens, refresh."""
    return OAuthClientProvider(
        server_url=f"{api_url}/mcp",
        client_metadata=OAuthClientMetadata(
            client_name="test agent <b>",
            redirect_uris=[AnyUrl(redirect)],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=on_redirect,
        callback_handler=on_callback,
    )


@asynccontextmanager
async def signed_in(api_url: str, auth: OAuthClientProvider) -> AsyncIterator[Client]:
    """An SDK client on /mcp that signs in with OAuth (no API key in its headers)."""
    http = httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(30, read=120))
    client = Client(streamable_http_client(f"{api_url}/mcp", http_client=http))
    async with http, client:
        yield client
