"""``python -m sandbox``: serve the sandbox on 127.0.0.1 in one process (state is in memory)."""

from __future__ import annotations

import uvicorn

from sandbox.app import create_app
from sandbox.settings import SandboxSettings


def main() -> None:
    settings = SandboxSettings()  # fresh, so the environment at process start applies
    uvicorn.run(
        create_app(settings),
        host="127.0.0.1",
        port=settings.port,
        log_level="warning",
        workers=1,
    )


if __name__ == "__main__":
    main()
