"""Every setting an editor client can send is one the server's settings parser accepts.

The VS Code extension's settings (package.json) go through its own converter (compiled
options.ts, run in Node) and then through `config.merge_settings`, exactly as the server merges
initializationOptions; the Helix example config goes straight to `merge_settings`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from typing import Any

import pytest

from lsp_agent.config import Settings, merge_settings
from tests.editors.conftest import REPO_ROOT

EXTENSION = REPO_ROOT / "editors" / "vscode"
# Client-side settings: they shape how the server is started, not what it does.
CLIENT_ONLY = ("lspAgent.server.", "lspAgent.trace.")


def sample_value(name: str, schema: dict[str, Any]) -> Any:
    """A non-default value of the setting's JSON-schema type."""
    if "enum" in schema:
        return next(v for v in schema["enum"] if v)
    kind = schema["type"]
    if kind == "string":
        return "http://127.0.0.1:9/v1" if name.endswith("baseUrl") else "some-model"
    if kind == "integer":
        return 4096
    if kind == "number":
        return 30.5
    if kind == "boolean":
        return not schema.get("default", False)
    if kind == "array":
        return ["generated/"]
    if kind == "object":
        return {
            key: sample_value(key, sub)
            for key, sub in schema["properties"].items()
            if "deprecationMessage" not in sub  # still passed on, for the server to warn about
        }
    raise AssertionError(f"no sample for {name}: {schema}")


def vscode_settings() -> dict[str, Any]:
    package = json.loads((EXTENSION / "package.json").read_text())
    props = package["contributes"]["configuration"]["properties"]
    return {
        name.removeprefix("lspAgent."): sample_value(name, schema)
        for name, schema in props.items()
        if not name.startswith(CLIENT_ONLY)
    }


def to_initialization_options(raw: dict[str, Any]) -> dict[str, Any]:
    if shutil.which("node") is None or not (EXTENSION / "node_modules" / ".bin" / "tsc").exists():
        pytest.skip("node or editors/vscode/node_modules missing: run scripts/install-editors.sh")
    subprocess.run(
        [str(EXTENSION / "node_modules" / ".bin" / "tsc"), "-p", "."],
        cwd=EXTENSION,
        check=True,
        capture_output=True,
        timeout=120,
    )
    script = (
        "const o = require('./out/common/options.js');"
        "process.stdout.write(JSON.stringify(o.toInitializationOptions(JSON.parse(process.argv[1]))))"
    )
    out = subprocess.run(
        ["node", "-e", script, json.dumps(raw)],
        cwd=EXTENSION,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return json.loads(out)


def test_every_vscode_setting_reaches_the_server_settings() -> None:
    raw = vscode_settings()
    assert {"provider", "baseUrl", "model", "models", "contextBudget", "budgets"} <= set(raw)
    options = to_initialization_options(raw)
    # Nothing the user set is dropped on the way.
    assert set(options) == set(raw), (set(raw) - set(options), options)
    settings, warnings = merge_settings(Settings(), options)
    assert warnings == []
    assert settings.model.provider == raw["provider"]
    assert settings.model.base_url == raw["baseUrl"]
    assert settings.model.model == raw["model"]
    assert dict(settings.model.role_models) == raw["models"]
    assert settings.context.budget == raw["contextBudget"]
    assert settings.index.ignore == tuple(raw["ignore"])
    assert settings.confirm_edits is raw["confirmEdits"]
    assert settings.budgets.max_steps == raw["budgets"]["maxSteps"]
    assert settings.budgets.max_seconds == raw["budgets"]["maxSeconds"]


def test_helix_example_config_is_accepted() -> None:
    data = tomllib.loads((REPO_ROOT / "editors" / "helix" / "languages.toml").read_text())
    server = data["language-server"]["lsp-agent"]
    # The clone's server (editors/README.md, "The server comes from your clone").
    assert [server["command"], *server["args"]] == [
        "/path/to/lsp-agent/.venv/bin/lsp-agent",
        "serve",
    ]
    settings, warnings = merge_settings(Settings(), server["config"]["lspAgent"])
    assert warnings == []
    assert settings.model.provider == "deepseek"
    assert all("lsp-agent" in lang["language-servers"] for lang in data["language"])
