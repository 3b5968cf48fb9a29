"""Settings: one class for the product, one for the sandbox; env prefix, secrets masked,
unsafe timeouts refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from app.kernel.settings import Settings
from sandbox.settings import SandboxSettings


def test_config_json_masks_secrets(tmp_path):
    env = {"TOOLQUEUE_HOME": str(tmp_path), "TOOLQUEUE_SECRET_KEY": "k" * 44,
           "TOOLQUEUE_REDIS_URL": "redis://:hunter2@127.0.0.1:6399/0", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "app.cli", "config", "--json"], env=env,
                         capture_output=True, text=True, check=True).stdout
    conf = json.loads(out)
    assert "hunter2" not in out and "k" * 44 not in out
    assert conf["secret_key"] == "********"
    assert conf["redis_url"] == "redis://:********@127.0.0.1:6399/0"
    assert conf["spool_max_bytes"] == 131072
    assert conf["api_port"] == 8000 and conf["flower_port"] == 5555
    assert not [name for name in conf if name.startswith("sandbox_")]  # SandboxSettings' own


def test_sandbox_settings_are_their_own_class_with_the_same_env_names(monkeypatch):
    for name in [n for n in os.environ if n.upper().startswith("TOOLQUEUE_SANDBOX_")]:
        monkeypatch.delenv(name)  # tests/conftest.py exports some for the integration stack
    conf = SandboxSettings().model_dump()
    assert conf["port"] == 8100
    monkeypatch.setenv("TOOLQUEUE_SANDBOX_PORT", "8123")
    monkeypatch.setenv("TOOLQUEUE_SANDBOX_ERROR_RATE", "0.25")
    assert (SandboxSettings().port, SandboxSettings().error_rate) == (8123, 0.25)


def test_defaults_and_local_redis(tmp_path):
    s = Settings(home=tmp_path, redis_url=None, secret_key=None)
    assert s.uses_local_redis
    assert s.effective_redis_url == f"redis://127.0.0.1:{s.local_redis_port}/0"
    key = s.fernet_keys()
    # generated once, then reused
    assert key == Settings(home=tmp_path, secret_key=None).fernet_keys()
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600


def test_step_limit_must_fit_in_visibility_timeout():
    with pytest.raises(ValidationError, match="visibility_timeout_s"):
        Settings(visibility_timeout_s=30, step_time_limit_s=30)


def test_cap_cannot_exceed_128_kib():
    with pytest.raises(ValidationError):
        Settings(spool_max_bytes=131073)


def test_long_webhook_delays_are_allowed_they_are_parked():
    # delays past half the visibility timeout are parked in Redis (tasks/webhooks.py), not
    # refused; the default schedule runs to 10 h
    s = Settings(visibility_timeout_s=60, webhook_retry_schedule_s=[0, 5, 31])
    assert s.webhook_retry_schedule_s == [0, 5, 31]
    default = Settings.model_fields["webhook_retry_schedule_s"].default
    assert default == [0, 5, 300, 1800, 7200, 18000, 36000, 36000]
    with pytest.raises(ValidationError, match="webhook_retry_schedule_s"):
        Settings(webhook_retry_schedule_s=[0, -1])
