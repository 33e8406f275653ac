"""Which checks verify a workspace: the configured ``[verify] commands``, else detected ones.

Detected commands use the project's own environment: a virtual environment in the workspace
(``.venv/``, ``venv/``; the sandbox binds it read-only in place), else the tools on PATH. What is
detected is what runs; ``describe_checks`` says it for the dry run and ``lspAgent/context``.
"""

from __future__ import annotations

import contextlib
import json
import re
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


def parse_commands(value: Any, key: str = "verify.commands") -> tuple[dict[str, Any], ...]:
    """``verify.commands`` as given -> entries ``{"name", "command": [argv], "kind"}``.

    The form is a list (TOML ``[[verify.commands]]``), each entry a table with ``name``,
    ``command`` (a command line, split like a shell would but never run by one, or a list of
    words) and ``kind`` (``"test"`` | ``"lint"``, default ``"test"``). The older table form
    (``name = "command"`` or ``name = {command, kind}``) is read as the same list. A bad entry
    raises ValueError naming its key (``verify.commands[2].kind``); config.py turns that into
    exit 2 in the CLI and a warning + the default in the server."""
    if isinstance(value, Mapping):
        value = [
            {"name": name, "command": spec} if isinstance(spec, str | list) else _named(name, spec)
            for name, spec in value.items()
        ]
    if not isinstance(value, list | tuple):
        raise ValueError(f"{key} must be a list of {{name, command, kind}} tables, got {value!r}")
    entries: list[dict[str, Any]] = []
    for number, entry in enumerate(value, 1):
        where = f"{key}[{number}]"
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where} must be a table with name, command and kind, got {entry!r}")
        unknown = sorted(set(entry) - {"name", "command", "kind"})
        if unknown:
            raise ValueError(f"{where}: unknown key {unknown[0]!r} (keys: name, command, kind)")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}.name must be a non-empty string, got {name!r}")
        if any(e["name"] == name for e in entries):
            raise ValueError(f"{where}.name {name!r} is used twice")
        entries.append({"name": name, "command": _argv(entry.get("command"), where), "kind": ""})
        kind = entry.get("kind", "test")
        if kind not in ("test", "lint"):
            raise ValueError(f"{where}.kind must be 'test' or 'lint', got {kind!r}")
        entries[-1]["kind"] = kind
    return tuple(entries)


def _named(name: str, spec: Any) -> Any:
    return {"name": name, **spec} if isinstance(spec, Mapping) else spec


def _argv(command: Any, where: str) -> list[str]:
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ValueError(f"{where}.command cannot be read: {exc} in {command!r}") from None
    else:
        argv = command
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError(
            f"{where}.command must be a command line or a non-empty list of strings, "
            f"got {command!r}"
        )
    return list(argv)


def verify_problems(section: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong in a raw ``[verify]`` table (one settings source), by setting name: the
    commands, and ``timeout`` (seconds > 0), ``max_output`` (bytes > 0), ``rounds`` (>= 0)."""
    problems: dict[str, str] = {}
    for raw, value in section.items():
        key = re.sub(r"(?<!^)(?=[A-Z])", "_", raw).lower()
        if key == "commands":
            try:
                parse_commands(value)
            except ValueError as exc:
                problems[raw] = str(exc)
        elif key in _LIMITS:
            kind, low = _LIMITS[key]
            if isinstance(value, str):  # as _coerce reads it ("300" from a string setting)
                with contextlib.suppress(ValueError):
                    value = float(value)
            whole = kind is int
            ok = (
                not isinstance(value, bool)
                and isinstance(value, int | float)
                and (not whole or float(value).is_integer())
                and (value > 0 if low == "positive" else value >= 0)
            )
            if not ok:
                what = "a whole number" if whole else "a number"
                bound = "greater than 0" if low == "positive" else "0 or more"
                problems[raw] = f"verify.{key} must be {what} {bound}, got {value!r}"
    return problems


_LIMITS: dict[str, tuple[type, str]] = {
    "timeout": (float, "positive"),
    "max_output": (int, "positive"),
    "rounds": (int, "zero"),
}


def configured_checks(commands: Any) -> tuple[list[Check], list[str]]:
    """Checks from ``verify.commands`` (``parse_commands`` form); a bad value is a problem."""
    try:
        entries = parse_commands(commands)
    except ValueError as exc:
        return [], [str(exc)]
    checks = []
    for entry in entries:
        argv, kind = entry["command"], entry["kind"]
        parser = _parser_for(argv, kind)
        checks.append(
            Check(entry["name"], tuple(argv), kind, parser, "configured", parser == "pytest")
        )
    return checks, []


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
