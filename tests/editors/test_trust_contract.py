"""The editor clients' trust gates refuse exactly what the server's does (lsp_agent/config.py
STEERING): the Emacs client's list, the VS Code manifest (user-only scopes, Restricted Mode) and
the environment variables the VS Code client takes from user settings only."""

from __future__ import annotations

import json
import re

from lsp_agent import config
from tests.editors.conftest import REPO_ROOT

EXTENSION = REPO_ROOT / "editors" / "vscode"
ELISP = REPO_ROOT / "editors" / "emacs" / "lsp-agent-eglot.el"


def bare(dotted: str) -> str:
    return dotted.split(".")[-1].replace("_", "").lower()


def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def test_emacs_refuses_the_steering_settings() -> None:
    text = ELISP.read_text()
    start = text.index("(defconst lsp-agent-steering-settings")
    end = text.index('"Settings that decide', start)  # the docstring follows the list
    listed = re.findall(r'\("([a-z]+)" \. "([a-z]+)"\)', text[start:end])
    # A .dir-locals.el must not propose commands either (eglot applies it without a prompt).
    refused = config.STEERING | config.PROPOSED_COMMANDS
    expected = {(k.split(".")[0], bare(k)) for k in refused}
    assert set(listed) == expected


def test_vscode_takes_steering_settings_from_user_settings_only() -> None:
    manifest = json.loads((EXTENSION / "package.json").read_text())
    untrusted = manifest["capabilities"]["untrustedWorkspaces"]
    assert untrusted["supported"] == "limited"
    restricted = set(untrusted["restrictedConfigurations"])
    properties = manifest["contributes"]["configuration"]["properties"]
    for dotted in config.STEERING:
        section, name = dotted.split(".")
        for key in (f"lspAgent.{camel(name)}", f"lspAgent.{section}.{camel(name)}"):
            if key in properties:  # api_key_env, extra_body, verify: not VS Code settings
                assert properties[key].get("scope") in ("machine", "application"), key
                assert key in restricted, key
    # The settings that pick the server's command and environment run code: Restricted Mode.
    assert {"lspAgent.server.command", "lspAgent.server.interpreter", "lspAgent.server.env"} <= (
        restricted
    )


def test_vscode_env_gate_covers_the_steering_variables() -> None:
    options = (EXTENSION / "src" / "common" / "options.ts").read_text()
    match = re.search(r"STEERING_ENV = \[([^\]]*)\]", options)
    assert match
    listed = set(re.findall(r"'([A-Z_]+)'", match.group(1)))
    steering_env = {
        var
        for var, (section, key) in config._ENV_KEYS.items()
        if f"{section}.{key}" in config.STEERING
    }
    assert listed == steering_env
