"""Sandbox app factory: one router per vendor, each under its own prefix, plus ``/_sandbox``."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import FastAPI

import sandbox
from sandbox import admin
from sandbox.common import RequestLogMiddleware
from sandbox.settings import SandboxSettings
from sandbox.state import SandboxState

# Every module or subpackage of this package with NAME (= path prefix), router and
# ROTATES_REFRESH_TOKENS is a vendor: adding one is adding one file (or one package).
VENDOR_MODULES = tuple(
    module
    for module in (
        importlib.import_module(f"sandbox.{info.name}")
        for info in sorted(pkgutil.iter_modules(sandbox.__path__), key=lambda i: i.name)
        if not info.name.startswith("_")
    )
    if all(hasattr(module, a) for a in ("NAME", "router", "ROTATES_REFRESH_TOKENS"))
)


def create_app(settings: SandboxSettings | None = None) -> FastAPI:
    """Fresh app with its own state; settings from the environment by default."""
    settings = settings if settings is not None else SandboxSettings()
    state = SandboxState(settings, {m.NAME: m.ROTATES_REFRESH_TOKENS for m in VENDOR_MODULES})
    app = FastAPI(
        title="toolqueue vendor sandbox",
        docs_url="/_sandbox/docs",
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    app.state.sandbox = state
    app.add_middleware(RequestLogMiddleware, state=state)
    for module in VENDOR_MODULES:
        app.include_router(module.router)
    app.include_router(admin.router)

    @app.get("/healthz")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app
