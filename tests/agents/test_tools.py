"""The agents' tools over a real WorkspaceIndex: results, refusals, secrets, schemas."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lsp_agent.agents.loop import Submitted, ToolError
from lsp_agent.agents.roles import validate_plan
from lsp_agent.agents.tools import (
    Tool,
    Workspace,
    is_secret_path,
    research_tools,
    submit_plan_tool,
    submit_review_tool,
)
from tests.agents.test_orchestrator import make_workspace

FILES = {
    "pkg/__init__.py": "",
    "pkg/core.py": "def helper(x):\n    return x + 1\n\n\nclass Thing:\n    def go(self):\n"
    "        return helper(2)\n",
    "pkg/use.py": "from pkg.core import helper\n\nVALUE = helper(3)\n",
    "notes.txt": "remember the helper\n",
    ".env": "API_TOKEN=abc123secretvalue\n",
    "deploy/server.pem": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    "conf/settings.py": "-----BEGIN RSA PRIVATE KEY-----\nhelper\n",
    ".gitignore": "build/\n",
    "build/out.py": "def helper(): pass\n",
}


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(make_workspace(tmp_path / "ws", FILES))


def call(tools: list[Tool], tool: str, **args: Any) -> str:
    return next(t for t in tools if t.name == tool).handler(args)


def test_list_files_hides_secrets_and_ignored(ws):
    tools = research_tools(ws)
    listed = call(tools, "list_files").splitlines()
    assert "pkg/core.py" in listed and "notes.txt" in listed
    assert ".env" not in listed and "deploy/server.pem" not in listed
    assert "build/out.py" not in listed
    assert call(tools, "list_files", glob="pkg/*.py").splitlines() == [
        "pkg/__init__.py",
        "pkg/core.py",
        "pkg/use.py",
    ]


def test_read_file_ranges_are_one_based_and_numbered(ws):
    out = call(research_tools(ws), "read_file", path="pkg/core.py", start_line=5, end_line=6)
    assert out.splitlines()[0] == "pkg/core.py lines 5-6 of 7"
    assert out.splitlines()[1:] == ["    5| class Thing:", "    6|     def go(self):"]
    with pytest.raises(ToolError, match="1-based"):
        call(research_tools(ws), "read_file", path="pkg/core.py", start_line=0)
    with pytest.raises(ToolError, match="integer"):
        call(research_tools(ws), "read_file", path="pkg/core.py", start_line="2")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (".env", "secret"),
        ("deploy/server.pem", "secret"),
        ("../outside.py", "outside the workspace"),
        ("/etc/passwd", "outside the workspace"),
        ("pkg/../../x.py", "outside the workspace"),
        ("build/out.py", "ignored"),
        ("missing.py", "does not exist"),
        ("pkg", "not a text file"),
    ],
)
def test_read_file_refusals(ws, path, reason):
    with pytest.raises(ToolError, match=reason):
        call(research_tools(ws), "read_file", path=path)


def test_private_key_content_is_never_read(ws):
    with pytest.raises(ToolError, match="private key"):
        call(research_tools(ws), "read_file", path="conf/settings.py")


def test_symlink_out_of_the_root_is_outside(tmp_path, ws):
    (tmp_path / "elsewhere.py").write_text("x = 1\n")
    os.symlink(tmp_path / "elsewhere.py", ws.root / "link.py")
    with pytest.raises(ToolError, match="outside the workspace"):
        call(research_tools(ws), "read_file", path="link.py")


def test_definitions_references_and_grep(ws):
    tools = research_tools(ws)
    assert call(tools, "find_definitions", name="helper").splitlines() == [
        "pkg/core.py:1: function def helper(x):"
    ]
    refs = call(tools, "find_references", name="helper")
    assert "pkg/use.py:3" in refs and "pkg/core.py:7" in refs
    grep = call(tools, "grep", pattern="helper").splitlines()
    assert "notes.txt:1: remember the helper" in grep
    assert not any(line.startswith(("conf/", ".env", "build/")) for line in grep)
    assert call(tools, "grep", pattern="abc123secret") == "no matches for 'abc123secret'"
    assert call(tools, "grep", pattern=r"help\w+\(\d\)", regex=True).count("\n") == 1
    with pytest.raises(ToolError, match="regular expression"):
        call(tools, "grep", pattern="(", regex=True)


def test_texts_override_the_index(tmp_path):
    index = make_workspace(tmp_path / "ws", {"a.py": "old = 1\n"})
    ws = Workspace(index, {"a.py": "new = 2\n"})
    assert "new = 2" in call(research_tools(ws), "read_file", path="a.py")


def test_every_schema_property_has_a_type(ws):
    tools = [*research_tools(ws), submit_plan_tool(lambda a: a), submit_review_tool()]

    def check(schema: dict[str, Any], where: str) -> None:
        assert "type" in schema, where
        for name, prop in (schema.get("properties") or {}).items():
            check(prop, f"{where}.{name}")
        if "items" in schema:
            check(schema["items"], f"{where}[]")

    for tool in tools:
        assert tool.schema()["type"] == "function"
        check(tool.schema()["function"]["parameters"], tool.name)


def test_submit_plan_validates_targets(ws):
    tool = submit_plan_tool(lambda args: validate_plan(ws, args))
    good = {"targets": [{"path": "./pkg/core.py", "instructions": "x"}], "notes": "n"}
    with pytest.raises(Submitted) as done:
        tool.handler(good)
    assert done.value.payload.targets[0].path == "pkg/core.py"
    new_file = {"targets": [{"path": "pkg/new.py", "instructions": "create", "new": True}]}
    with pytest.raises(Submitted):
        tool.handler({**new_file, "notes": ""})
    for bad, reason in [
        ({"targets": [{"path": "../x.py", "instructions": "x"}], "notes": ""}, "outside"),
        ({"targets": [{"path": ".env", "instructions": "x"}], "notes": ""}, "secret"),
        ({"targets": [{"path": "pkg/core.py", "instructions": " "}], "notes": ""}, "instructions"),
        ({"targets": "pkg/core.py", "notes": ""}, "list"),
    ]:
        with pytest.raises(ToolError, match=reason):
            tool.handler(bad)


def test_submit_review_requires_findings_to_reject():
    tool = submit_review_tool()
    with pytest.raises(ToolError, match="at least one finding"):
        tool.handler({"approved": False, "findings": []})
    with pytest.raises(ToolError, match="true or false"):
        tool.handler({"approved": "yes", "findings": []})
    with pytest.raises(Submitted) as done:
        tool.handler({"approved": False, "findings": [{"message": "m"}]})
    assert done.value.payload == {"approved": False, "findings": [{"path": "", "message": "m"}]}


@pytest.mark.parametrize(
    ("path", "secret"),
    [
        (".env", True),
        ("app/.env.production", True),
        ("keys/id_rsa", True),
        ("keys/id_ed25519.pub", True),
        ("a/b/cert.PEM", True),
        ("credentials.json", True),
        ("src/environment.py", False),
        ("src/keyboard.py", False),
    ],
)
def test_secret_names(path, secret):
    assert is_secret_path(path) is secret
