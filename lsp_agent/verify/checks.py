"""Which checks verify a workspace: the configured ``[verify] commands``, else detected ones.

Detected commands use the project's own environment: a virtual environment in the workspace
(``.venv/``, ``venv/``; the sandbox binds it read-only in place), else the tools on PATH. What is
detected is what runs; ``describe_checks`` says it for the dry run and ``lspAgent/context``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Kind = Literal["test", "lint"]
# How a check's output is read (outcomes.py): failing test ids, lint messages, or the exit code.
Parser = Literal["pytest", "ruff", "unix", "exit"]

PYTEST_ARGS = ("-q", "-rfE", "--tb=short", "--no-header", "-p", "no:cacheprovider", "--color=no")
PYTEST_CONFIGS = ("pytest.ini", ".pytest.ini", "conftest.py")


@dataclass(frozen=True)
class Check:
    name: str
    argv: tuple[str, ...]
    kind: Kind
    parser: Parser = "exit"
    source: Literal["configured", "detected"] = "detected"
    selectable: bool = False  # accepts test selectors (pytest node ids) after argv
    env: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "command": shlex.join(self.argv),
            "kind": self.kind,
            "source": self.source,
        }


@dataclass(frozen=True)
class Toolchain:
    """Where a workspace's tools come from: its own virtual environment, else PATH."""

    venv: Path | None

    @classmethod
    def of(cls, root: Path) -> Toolchain:
        for name in (".venv", "venv"):
            if (root / name / "bin" / "python").exists():
                return cls(root / name)
        return cls(None)

    def tool(self, name: str) -> str | None:
        if self.venv is not None and (self.venv / "bin" / name).exists():
            return str(self.venv / "bin" / name)
        return shutil.which(name)

    @property
    def python(self) -> str | None:
        return self.tool("python") or shutil.which("python3")


def detect_checks(root: Path, *, environment: Path | None = None) -> tuple[list[Check], list[str]]:
    """The checks a project declares by its layout and config, and notes on what was skipped.
    ``environment`` is the folder whose ``.venv``/``node_modules`` the tools come from (default
    ``root``): a goal run's worktree has the project's files but not its gitignored
    environment, which stays in the workspace."""
    tools = Toolchain.of(environment or root)
    checks: list[Check] = []
    notes: list[str] = []
    pyproject = _toml(root / "pyproject.toml")
    tool_table = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    wants_pytest = (
        any((root / name).exists() for name in PYTEST_CONFIGS)
        or "pytest" in tool_table
        or _ini_has(root / "setup.cfg", "[tool:pytest]")
        or _ini_has(root / "tox.ini", "[pytest]")
        or (root / "tests").is_dir()
        or (root / "test").is_dir()
    )
    if wants_pytest:
        if tools.tool("pytest") and tools.python:
            argv = (tools.python, "-m", "pytest", *PYTEST_ARGS)
            checks.append(Check("pytest", argv, "test", "pytest", selectable=True))
        else:
            notes.append("pytest tests found but pytest is not installed (.venv or PATH)")
    if "ruff" in tool_table or (root / "ruff.toml").exists() or (root / ".ruff.toml").exists():
        ruff = tools.tool("ruff")
        if ruff:
            argv = (ruff, "check", "--no-cache", "--output-format", "concise", ".")
            checks.append(Check("ruff", argv, "lint", "ruff"))
        else:
            notes.append("ruff is configured but not installed (.venv or PATH)")
    checks += _detect_node(root, environment or root, notes)
    if (root / "go.mod").exists() and shutil.which("go"):
        env = {"GOFLAGS": "-mod=mod", "GOCACHE": "/tmp/go-cache", "GOPROXY": "off"}
        checks.append(Check("go test", ("go", "test", "./..."), "test", env=env))
    if (root / "Cargo.toml").exists() and shutil.which("cargo"):
        checks.append(Check("cargo test", ("cargo", "test", "--offline", "-q"), "test"))
    return checks, notes


def _detect_node(root: Path, environment: Path, notes: list[str]) -> list[Check]:
    out: list[Check] = []
    bin_dir = environment / "node_modules" / ".bin"
    configs = ("eslint.config.js", "eslint.config.mjs", "eslint.config.cjs", ".eslintrc.json")
    if any((root / name).exists() for name in (*configs, ".eslintrc.js", ".eslintrc.cjs")):
        if (bin_dir / "eslint").exists():
            out.append(
                Check("eslint", (str(bin_dir / "eslint"), "-f", "unix", "."), "lint", "unix")
            )
        else:
            notes.append("eslint is configured but not installed (node_modules/.bin)")
    try:
        package = json.loads((root / "package.json").read_text("utf-8"))
    except (OSError, ValueError):
        return out
    script = (package.get("scripts") or {}).get("test") if isinstance(package, dict) else None
    if isinstance(script, str) and "no test specified" not in script and shutil.which("npm"):
        out.append(Check("npm test", ("npm", "test", "--silent"), "test"))
    return out


def configured_checks(commands: Mapping[str, Any]) -> tuple[list[Check], list[str]]:
    """``[verify.commands]``: name -> "command line" or {command = str | [str], kind}."""
    checks: list[Check] = []
    problems: list[str] = []
    for name, spec in commands.items():
        entry = {"command": spec} if isinstance(spec, str | list) else spec
        if not isinstance(entry, Mapping):
            problems.append(f"verify.commands.{name}: expected a command or a table")
            continue
        command = entry.get("command")
        argv = shlex.split(command) if isinstance(command, str) else command
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            problems.append(f"verify.commands.{name}: 'command' must be a string or a list")
            continue
        kind = entry.get("kind", "test")
        if kind not in ("test", "lint"):
            problems.append(f"verify.commands.{name}: kind must be 'test' or 'lint'")
            continue
        parser = _parser_for(argv, kind)
        selectable = parser == "pytest"
        checks.append(Check(str(name), tuple(argv), kind, parser, "configured", selectable))
    return checks, problems


def _parser_for(argv: Sequence[str], kind: str) -> Parser:
    words = " ".join(Path(a).name for a in argv)
    if "pytest" in words:
        return "pytest"
    if "ruff" in words and "check" in argv:
        return "ruff"
    return "unix" if kind == "lint" else "exit"


def checks_json(checks: Sequence[Check]) -> list[dict[str, Any]]:
    """What the dry run and ``lspAgent/context`` show of the checks a task would run."""
    return [
        {"name": c.name, "kind": c.kind, "source": c.source, "command": list(c.argv)}
        for c in checks
    ]


def describe_checks(checks: Sequence[Check], notes: Sequence[str] = ()) -> list[str]:
    lines = [f"{c.name} ({c.kind}, {c.source}): {shlex.join(c.argv)}" for c in checks]
    return lines + [f"note: {n}" for n in notes] if checks or notes else ["no checks found"]


def _toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _ini_has(path: Path, section: str) -> bool:
    try:
        return section in path.read_text("utf-8", "replace")
    except OSError:
        return False
