"""`toolqueue up`: the whole system on one machine, as child processes of this Python.

Local Redis (unless ``TOOLQUEUE_REDIS_URL`` points elsewhere), the vendor sandbox, a Celery
worker per lane group, beat, the HTTP API (``api_workers`` uvicorn processes) and Flower.
Every child gets the same ``TOOLQUEUE_*`` environment (built in :func:`child_env`) so every
process computes the same settings, and writes its output to ``<home>/logs/<name>.log``.
Children stay in our process group, so a tool that kills the group cleans everything up; our
own stop is ordered (front ends first, Redis last) so the worker can ack its last step while
the broker is still there.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from app.cli.localredis import LocalRedis, LocalRedisError, tail
from app.kernel.settings import Settings, get_settings
from sandbox.settings import SandboxSettings

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Stack",
    "StackError",
    "StackInterrupted",
    "child_env",
    "run_foreground",
    "settings_env",
]

# One worker per lane group (app/dispatch/lanes.py): bulk work never takes the capacity of
# interactive steps, webhooks or housekeeping. (name, queues, share of --concurrency)
WORKERS = (
    ("interactive", "interactive", 0.5),
    ("bulk", "bulk", 1.0),
    ("service", "webhooks,housekeeping", 0.5),
)
MAX_RESTARTS = 5  # per component within 5 minutes, like a process supervisor
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(RuntimeError):
    """A component failed to start or died; the message names it and quotes its log."""


class StackInterrupted(Exception):
    """``request_stop()`` (a signal) arrived while the stack was still starting."""


def settings_env(settings: BaseSettings) -> dict[str, str | None]:
    """Env values (``TOOLQUEUE_*``, or the class's own prefix) reproducing ``settings`` in a
    child; None means "unset it".

    Exporting every field (not just what the parent's env had) lets a ``Settings`` built in
    code, e.g. by a test fixture with ``home=tmp_path``, reach the children unchanged.
    """
    prefix = type(settings).model_config.get("env_prefix") or "TOOLQUEUE_"
    out: dict[str, str | None] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        key = f"{prefix}{name}".upper()
        if value is None:
            out[key] = None
        elif isinstance(value, SecretStr):
            out[key] = value.get_secret_value()
        elif isinstance(value, Path):
            out[key] = str(value.absolute())  # children agree even if one changes cwd
        elif isinstance(value, list | dict):
            out[key] = json.dumps(value)
        else:
            out[key] = str(value)
    return out


def child_env(*settings: BaseSettings, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The one place a child's environment is built: ours + settings + unbuffered output."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    for each in settings:
        for key, value in settings_env(each).items():
            for existing in [k for k in env if k.upper() == key]:
                del env[existing]  # pydantic-settings matches env names case-insensitively
            if value is not None:
                env[key] = value
    env.update(extra or {})
    return env


def _connect_host(host: str) -> str:
    """Where to reach a server bound to ``host`` (a wildcard bind is reachable on loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _http_base(host: str, port: int) -> str:
    host = _connect_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _http_status(url: str, headers: Mapping[str, str] | None = None, timeout: float = 3.0) -> int:
    """Status of a GET, or 0 when nothing answered; never goes through an HTTP proxy."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, http.client.HTTPException):
        return 0


def _ensure_port_free(name: str, host: str, port: int, env_name: str) -> None:
    """Fail fast on a taken port: otherwise we might health-check someone else's server."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StackError(
                f"{name}: cannot bind {host}:{port} ({exc.strerror or exc}); another "
                f"`toolqueue up` may be running, or set {env_name}"
            ) from None


def _children_of(pid: int) -> list[int]:
    """The direct children of ``pid`` (from /proc; none where there is no /proc)."""
    out = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(entry.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.parent.name))
    return out


class _Child:
    """One child process and its log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, append: bool = False) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab" if append else "wb") as log:  # the child keeps its fd
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip

    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def stop(self, timeout_s: float) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            orphans = _children_of(proc.pid)  # uvicorn's workers outlive a killed parent
            proc.kill()
            proc.wait()
            for pid in orphans:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.log_path, lines)


class Stack:
    """Every toolqueue process for one machine; ``start()`` returns once all are ready.

    Start order: redis, sandbox, worker, beat, api, flower; ``stop()`` goes in reverse.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        sandbox: bool = True,
        sandbox_settings: SandboxSettings | None = None,
        concurrency: int = 4,
        start_timeout_s: float = 90.0,
        stop_timeout_s: float = 15.0,
    ) -> None:
        self.settings = settings or get_settings()
        self.sandbox = sandbox
        self.sandbox_settings = sandbox_settings or SandboxSettings()  # its own, not ours
        self.concurrency = concurrency
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.home = self.settings.home.absolute()
        self.logs_dir = self.home / "logs"
        self.redis: LocalRedis | None = None
        self.children: list[_Child] = []
        self.stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._started = False

    # -- addresses ---------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        return self.settings.effective_redis_url

    @property
    def api_url(self) -> str:
        return _http_base(self.settings.api_host, self.settings.api_port)

    @property
    def flower_url(self) -> str:
        return _http_base("127.0.0.1", self.settings.flower_port)

    @property
    def sandbox_url(self) -> str:
        return _http_base("127.0.0.1", self.sandbox_settings.port)

    def _masked_redis_url(self) -> str:
        return str(self.settings.public()["effective_redis_url"])  # no password on screen

    def worker_nodename(self, name: str) -> str:
        return f"{name}@{socket.gethostname()}"  # what Celery makes of `-n <name>@%h`

    def worker_concurrency(self, share: float) -> int:
        return max(1, round(self.concurrency * share))

    def urls(self) -> dict[str, str]:
        """Component → address, for the banner and for callers (tests, demo)."""
        out = {
            "api": self.api_url,
            "docs": f"{self.api_url}/docs",
            "openapi": f"{self.api_url}/openapi.json",
            "flower": self.flower_url,
            "redis": self._masked_redis_url(),
            "logs": str(self.logs_dir),
        }
        if self.sandbox:
            out["sandbox"] = self.sandbox_url
        return out

    # -- lifecycle ---------------------------------------------------------------------

    def _children_spec(self) -> list[_Child]:
        s = self.settings
        py = sys.executable
        env = child_env(s, self.sandbox_settings)  # ours and the sandbox's, even if built in code
        env.pop("FLOWER_BASIC_AUTH", None)  # the password goes to Flower only
        level = s.log_level.upper()
        specs: list[tuple[str, list[str], dict[str, str]]] = []
        if self.sandbox:
            specs.append(("sandbox", [py, "-m", "sandbox"], env))
        specs += [
            (
                f"worker-{name}",
                [
                    py,
                    "-m",
                    "celery",
                    "-A",
                    "app.kernel.celery",
                    "worker",
                    f"--loglevel={level}",
                    f"--concurrency={self.worker_concurrency(share)}",
                    "-n",
                    f"{name}@%h",
                    "-Q",
                    queues,
                ],
                env,
            )
            for name, queues, share in WORKERS
        ]
        specs += [
            (
                "beat",
                [py, "-m", "celery", "-A", "app.kernel.celery", "beat", f"--loglevel={level}",
                 "-s", str(self.home / "celerybeat-schedule")],
                env,
            ),
            (
                "api",
                [py, "-m", "uvicorn", "app.api.main:app", "--host", s.api_host,
                 "--port", str(s.api_port), "--workers", str(s.api_workers),
                 "--log-level", level.lower(), "--timeout-graceful-shutdown", "5"],
                env,
            ),
        ]  # fmt: skip
        flower_env = dict(env)
        flower_env.pop("FLOWER_UNAUTHENTICATED_API", None)  # its API must require auth
        # Through the env, not argv: argv is world-readable in `ps`.
        flower_env["FLOWER_BASIC_AUTH"] = s.flower_basic_auth()
        specs.append(
            (
                "flower",
                [py, "-m", "celery", "-A", "app.kernel.celery", "flower", "--address=127.0.0.1",
                 f"--port={s.flower_port}"],
                flower_env,
            )
        )  # fmt: skip
        return [_Child(name, argv, e, self.logs_dir / f"{name}.log") for name, argv, e in specs]

    def start(self) -> Stack:
        """Start every component and wait until each answers; on failure stop all and raise."""
        with self._lock:
            if self._started:
                return self
            self._started = True
            self.redis, self.children = None, []
            self.stop_requested.clear()
            atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        s = self.settings
        deadline = time.monotonic() + self.start_timeout_s
        ports = [("api", s.api_host, s.api_port, "TOOLQUEUE_API_PORT"),
                 ("flower", "127.0.0.1", s.flower_port, "TOOLQUEUE_FLOWER_PORT")]  # fmt: skip
        if self.sandbox:
            ports.append(
                ("sandbox", "127.0.0.1", self.sandbox_settings.port, "TOOLQUEUE_SANDBOX_PORT")
            )
        for name, host, port, env_name in ports:
            _ensure_port_free(name, host, port, env_name)
        self.logs_dir.mkdir(parents=True, exist_ok=True)

        if s.uses_local_redis:
            self.redis = LocalRedis.from_settings(
                s, log_path=self.logs_dir / "redis.log", start_timeout_s=30.0
            )
            try:
                self.redis.start()
            except LocalRedisError as exc:
                raise StackError(f"redis failed to start: {exc}") from None
        else:
            self._wait_until("redis", None, self._external_redis_ready, deadline)

        self.children = self._children_spec()
        for child in self.children:
            child.start()

        checks: dict[str, Callable[[], str | None]] = {
            "sandbox": lambda: self._http_ready(f"{self.sandbox_url}/healthz"),
            **{f"worker-{name}": partial(self._worker_ready, name) for name, _, _ in WORKERS},
            "api": lambda: self._http_ready(f"{self.api_url}/healthz"),
            "flower": self._flower_ready,
        }
        for child in self.children:
            if child.name in checks:
                self._wait_until(child.name, child, checks[child.name], deadline)
        self._raise_if_dead()  # beat has no probe: at least it must still be running

    def _wait_until(
        self,
        name: str,
        child: _Child | None,
        probe: Callable[[], str | None],
        deadline: float,
    ) -> None:
        """Poll ``probe`` (None = ready, else why not) until the shared deadline."""
        why = "not probed yet"
        while True:
            if self.stop_requested.is_set():
                raise StackInterrupted(f"interrupted while waiting for {name}")
            self._raise_if_dead()
            why = probe() or ""
            if not why:
                return
            if time.monotonic() > deadline:
                log = f"; last lines of {child.log_path}:\n{child.log_tail()}" if child else ""
                raise StackError(
                    f"{name} was not ready within {self.start_timeout_s:g}s ({why}){log}"
                )
            self.stop_requested.wait(0.25)

    def _http_ready(self, url: str) -> str | None:
        status = _http_status(url)
        if status == 200:
            return None
        return f"GET {url} answered {status}" if status else f"nothing answers at {url}"

    def _external_redis_ready(self) -> str | None:
        import redis

        client = redis.Redis.from_url(self.redis_url, socket_connect_timeout=1, socket_timeout=2)
        try:
            client.ping()
            return None
        except redis.RedisError as exc:
            return f"{self._masked_redis_url()}: {exc}"
        finally:
            client.close()

    def _worker_ready(self, name: str) -> str | None:
        """Broadcast ping to the worker's node name; it answers once it consumes."""
        from celery import Celery

        probe = Celery("toolqueue-up-probe", broker=self.redis_url, set_as_current=False)
        probe.conf.broker_connection_timeout = 2
        try:
            replies = probe.control.ping(destination=[self.worker_nodename(name)], timeout=1.0)
        except Exception as exc:  # any broker error just means "not yet"
            return f"ping failed: {exc}"
        finally:
            probe.close()
        return None if replies else f"{self.worker_nodename(name)} does not answer a ping"

    def _flower_ready(self) -> str | None:
        token = b64encode(self.settings.flower_basic_auth().encode()).decode()
        url = f"{self.flower_url}/api/workers"
        status = _http_status(url, {"Authorization": f"Basic {token}"})
        if status == 401:
            raise StackError(f"flower rejected our basic-auth credentials at {url}")
        return self._http_ready(url) if status != 200 else None

    def poll(self) -> tuple[str, int] | None:
        """The first component that has exited, with its status; None while all run."""
        if self.redis is not None:
            code = self.redis.returncode()
            if code is not None:
                return "redis", code
        for child in self.children:
            code = child.returncode()
            if code is not None:
                return child.name, code
        return None

    def kill(self, name: str) -> int | None:
        """SIGKILL a component and its pool processes, as a crash would (the demo's bad day);
        its pid, or None when it was not running."""
        for child in self.children:
            proc = child.proc
            if child.name == name and proc is not None and proc.poll() is None:
                pool = _children_of(proc.pid)
                proc.kill()
                proc.wait()
                for pid in pool:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                return proc.pid
        return None

    def restart(self, name: str) -> None:
        """Start a component that died again (a supervisor's job: Redis reloads its AOF)."""
        if name == "redis" and self.redis is not None:
            self.redis.start()
            return
        for child in self.children:
            if child.name == name:
                child.start(append=True)

    def log_tail(self, name: str, lines: int = 20) -> str:
        if name == "redis" and self.redis is not None:
            return self.redis.log_tail(lines)
        for child in self.children:
            if child.name == name:
                return child.log_tail(lines)
        return "(no such component)"

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def _raise_if_dead(self) -> None:
        dead = self.poll()
        if dead is not None:
            name, code = dead
            raise StackError(
                f"{name} exited with status {code}; last lines of {self.log_path(name)}:\n"
                f"{self.log_tail(name)}"
            )

    def request_stop(self) -> None:
        """Ask a running ``start()``/``run_foreground`` to give up; safe from a signal handler."""
        self.stop_requested.set()

    def stop(self) -> None:
        """SIGTERM each component in reverse start order, wait, then SIGKILL. Idempotent."""
        with self._lock:
            for child in reversed(self.children):
                child.stop(self.stop_timeout_s)
            if self.redis is not None:
                self.redis.stop(self.stop_timeout_s)
            self._started = False
            atexit.unregister(self.stop)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _banner(stack: Stack) -> object:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    s = stack.settings
    user, _, password = s.flower_basic_auth().partition(":")
    urls = {name: escape(value) for name, value in stack.urls().items()}
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan")
    table.add_column()
    table.add_row("API", f"{urls['api']}  ({s.api_workers} uvicorn processes)")
    table.add_row("OpenAPI docs", urls["docs"])
    table.add_row("OpenAPI schema", urls["openapi"])
    table.add_row(
        "Flower",
        f"{urls['flower']}  user [bold]{escape(user)}[/] password [bold]{escape(password)}[/]",
    )
    if "sandbox" in urls:
        table.add_row("Vendor sandbox", urls["sandbox"])
    where = f"local, AOF in {stack.home / 'redis'}" if s.uses_local_redis else "external"
    table.add_row("Redis", f"{urls['redis']}  ({escape(where)})")
    for name, queues, share in WORKERS:
        table.add_row(
            f"Worker {name}", f"-Q {queues}, concurrency {stack.worker_concurrency(share)}"
        )
    table.add_row("Logs", urls["logs"])
    return Panel(table, title="toolqueue is up", subtitle="Ctrl-C stops everything")


def run_foreground(
    settings: Settings | None = None, *, sandbox: bool = True, concurrency: int = 4
) -> int:
    """``toolqueue up``: start, print the URLs, block until SIGINT/SIGTERM, stop in order.

    Returns 0 after a requested stop, 1 when a component failed to start or died.
    """
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True)
    stack = Stack(settings, sandbox=sandbox, concurrency=concurrency)
    handled = (signal.SIGINT, signal.SIGTERM)

    def on_signal(signum: int, frame: object) -> None:
        stack.request_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    try:
        with console.status("starting toolqueue (redis, sandbox, worker, beat, api, flower)…"):
            stack.start()
        console.print(_banner(stack))
        return _supervise(stack, console)
    except StackInterrupted:
        return 0
    except StackError as exc:
        if stack.stop_requested.is_set():
            return 0  # a component died of the same Ctrl-C that stopped us
        console.print(
            f"[bold red]toolqueue up failed:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        return 1
    finally:
        # Ignore repeated Ctrl-C while stopping: the ordered stop is bounded anyway.
        for sig in handled:
            signal.signal(sig, signal.SIG_IGN)
        if stack.children or stack.redis:
            console.print("stopping toolqueue…")
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(stack: Stack, console: Console) -> int:
    """Restart a component that dies until it crash-loops (1); 0 once a stop is requested."""
    from rich.markup import escape

    restarts: dict[str, list[float]] = {}
    while not stack.stop_requested.wait(0.5):
        dead = stack.poll()
        if dead is None or stack.stop_requested.is_set():
            continue
        name, code = dead
        recent = [t for t in restarts.get(name, []) if time.monotonic() - t < 300]
        console.print(
            f"[bold red]{name} exited with status {code}[/]; last lines of "
            f"{escape(str(stack.log_path(name)))}:\n{escape(stack.log_tail(name))}",
            highlight=False,
            soft_wrap=True,
        )
        if len(recent) >= MAX_RESTARTS:  # crash-looping: give up loudly
            console.print(f"[bold red]{name} died {MAX_RESTARTS} times in 5 min; stopping")
            return 1
        restarts[name] = [*recent, time.monotonic()]
        console.print(f"restarting {name} ({len(recent) + 1}/{MAX_RESTARTS})")
        stack.restart(name)
    return 0
