"""A config file the server cannot read never fails `initialize`: defaults, and a message."""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from tests.server.conftest import CALC, make_workspace, server_env
from tests.server.lsp_helpers import start_server, stop_server


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (bytes(range(256)) * 8, "not UTF-8 text"),
        (b"[model\nprovider = 'deepseek'\n", "not valid TOML"),
    ],
)
async def test_bad_workspace_config_keeps_defaults_and_says_so(
    tmp_path: Path, content: bytes, needle: str
) -> None:
    root = make_workspace(tmp_path / "ws", {"a.py": CALC})
    (root / ".lsp-agent.toml").write_bytes(content)
    server = await start_server(root, env=server_env(tmp_path))
    try:
        assert server.init_result is not None
        assert server.init_result.capabilities.execute_command_provider is not None
        shown = await server.wait_for(
            lambda: [m for m in server.client.messages if needle in m.message],
            "the config warning",
        )
        assert ".lsp-agent.toml" in shown[0].message
        assert shown[0].type == types.MessageType.Warning
    finally:
        await stop_server(server)


async def test_unknown_provider_in_the_user_config_is_named(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", {"a.py": CALC})
    user = tmp_path / "config" / "lsp-agent" / "config.toml"  # server_env's XDG_CONFIG_HOME
    user.parent.mkdir(parents=True)
    user.write_text("[model]\nprovider = 'nosuch'\n")
    server = await start_server(root, env=server_env(tmp_path))
    try:
        shown = await server.wait_for(
            lambda: [m for m in server.client.messages if "does not exist" in m.message],
            "the provider warning",
        )
        assert "provider 'nosuch' does not exist" in shown[0].message
        assert str(user) in shown[0].message
    finally:
        await stop_server(server)
