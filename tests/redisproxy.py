"""A loopback TCP proxy in front of the session's real Redis that can lose answers: armed with
a byte pattern, it forwards the first command that carries it and from then on passes no
reply back and opens no new upstream connection, until released. That is Redis stopping
just after it ran a command and before its answer left, at a chosen command (a SIGSTOP
lands at a random instant)."""

from __future__ import annotations

import contextlib
import socket
import threading


class LosingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.lock = threading.Lock()
        self.pattern: bytes | None = None
        self.holding = False
        self.passed = 0  # commands forwarded that carried the pattern
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, pattern: bytes) -> None:
        with self.lock:
            self.pattern, self.holding, self.passed = pattern, False, 0

    def release(self) -> None:
        """Answers flow again; connections that lost one are closed (their client reconnects)."""
        with self.lock:
            self.pattern, self.holding = None, False
            held, self.sockets = self.sockets, []
        for s in held:
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self.lock:
            self.sockets.append(client)
            holding = self.holding
        if holding:  # a retry's fresh connection: Redis "is stopped", nothing answers
            return
        server = socket.create_connection(self.upstream)
        with self.lock:
            self.sockets.append(server)
        threading.Thread(target=self._replies, args=(server, client), daemon=True).start()
        with contextlib.suppress(OSError):
            while chunk := client.recv(65536):
                with self.lock:
                    if self.holding:
                        continue
                    if self.pattern is not None and self.pattern in chunk:
                        self.passed += 1
                        self.holding = True
                server.sendall(chunk)

    def _replies(self, server: socket.socket, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := server.recv(65536):
                with self.lock:
                    if self.holding:
                        continue
                client.sendall(chunk)
