"""Tests for rtctl.cli.devsecret: where the state directory is and how the dev secret is kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rtctl.cli.devsecret import (
    dev_secret_path,
    existing_dev_secret,
    load_or_create_dev_secret,
    state_dir,
)
from rtctl.exceptions import ConfigError
from rtctl.gateway.auth import AuthConfig, Authenticator
from rtctl.tokens import issue_token


def test_state_dir_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RTCTL_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "rtctl"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    assert state_dir() == tmp_path / "home" / ".local" / "state" / "rtctl"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "rtctl"
    monkeypatch.setenv("RTCTL_STATE_DIR", str(tmp_path / "own"))
    assert state_dir() == tmp_path / "own"
    assert dev_secret_path() == tmp_path / "own" / "dev-secret"


def test_dev_secret_created_once_then_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RTCTL_STATE_DIR", str(tmp_path / "a" / "b"))
    secret, path, created = load_or_create_dev_secret()
    assert created
    assert path == tmp_path / "a" / "b" / "dev-secret"
    assert len(secret) >= 40
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_dev_secret() == (secret, path, False)
    assert [p.name for p in path.parent.iterdir()] == ["dev-secret"]  # no temp files left
    token = issue_token(secret, sub="dev", ttl=60)
    assert Authenticator(AuthConfig(secret=secret)).authenticate(token).user == "dev"


def test_empty_dev_secret_is_replaced(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RTCTL_STATE_DIR", str(tmp_path))
    (tmp_path / "dev-secret").write_text("\n")
    secret, path, created = load_or_create_dev_secret()
    assert created
    assert secret
    assert path.read_text().strip() == secret


def test_unreadable_dev_secret_is_one_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RTCTL_STATE_DIR", str(tmp_path))
    (tmp_path / "dev-secret").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match=r"cannot read the dev secret at .*: it is not text"):
        load_or_create_dev_secret()


def test_existing_dev_secret_never_creates_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RTCTL_STATE_DIR", str(tmp_path / "state"))
    assert existing_dev_secret() is None
    assert not (tmp_path / "state").exists()
    secret, _, _ = load_or_create_dev_secret()
    assert existing_dev_secret() == secret
