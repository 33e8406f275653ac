"""Fixtures for the end-to-end server tests: a small workspace and a clean environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

CALC = "def add(a, b):\n    return a + b\n\n\ndef twice(x):\n    return add(x, x)\n"

_SECRET_VARS = (
    "LSP_AGENT_BASE_URL",
    "LSP_AGENT_API_KEY",
    "LSP_AGENT_MODEL",
    "LSP_AGENT_PROVIDER",
    "DEEPSEEK_API_KEY",
    "MOONSHOT_API_KEY",
    "OPENAI_API_KEY",
)


def make_workspace(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def server_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The server's environment: no real keys, its own cache and config dirs."""
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_VARS}
    env["LSP_AGENT_CACHE_DIR"] = str(tmp / "cache")
    env["XDG_CONFIG_HOME"] = str(tmp / "config")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")
