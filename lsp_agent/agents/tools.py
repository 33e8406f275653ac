"""Tools the agents may call, with their JSON schemas, over a read-only view of the workspace.

Every path a model names goes through ``Workspace.resolve``: a path outside the root, an ignored
file or a secret file (``.env``, keys, credentials) comes back to the model as a tool error, and
a secret file's content is never read (``read_file`` refuses, ``grep`` skips it). A secret
inside an ordinary file is redacted when the agent loop sends the result (``redact.py``); a
result cut to a length limit is redacted first, so the cut never leaves part of a secret.
Line numbers the model sees are 1-based; the engine's are 0-based.
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lsp_agent.agents.loop import Submitted, ToolError
from lsp_agent.context.sensitive import is_sensitive
from lsp_agent.context.view import TaskView
from lsp_agent.edits import safe_path
from lsp_agent.index.languages import language_for_path
from lsp_agent.index.symbols import MAX_SIGNATURE, extract
from lsp_agent.redact import Redactor, clip, drop_cut_token

MAX_READ_LINES = 2000
MAX_READ_CHARS = 120_000
MAX_LIST = 500
MAX_HITS = 200
MAX_HIT_CHARS = 300

_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


# One list of secret file names serves the snapshot and the tools alike.
is_secret_path = is_sensitive


class IndexLike(Protocol):
    """The slice of ``WorkspaceIndex`` the tools use."""

    root: Path

    def entries(self) -> Mapping[str, Any]: ...
    def text(self, path: str) -> str | None: ...
    def is_ignored(self, path: str) -> bool: ...
    def definitions(self, name: str) -> list[tuple[str, Any]]: ...
    def references(self, name: str) -> list[tuple[str, Any]]: ...
    def grep(
        self, pattern: str, *, regex: bool = False, limit: int = 200
    ) -> list[tuple[str, int, str]]: ...


class Workspace:
    """What an agent may see: the index, with ``texts`` (frozen buffers) taking precedence.

    Every tool reads one version (``context/view.TaskView``): ``index`` is the task's view (the
    one its snapshot was built from), or a plain index that ``texts`` are pinned over here, so
    ``find_*`` and ``grep`` answer from the same texts ``read_file`` shows."""

    def __init__(
        self,
        index: IndexLike,
        texts: Mapping[str, str] | None = None,
        *,
        redactor: Redactor | None = None,
    ) -> None:
        self.texts = dict(texts or {})
        if self.texts and not isinstance(index, TaskView):
            index = TaskView(index, self.texts)
        self.index = index
        self.root = Path(index.root).resolve()
        self.redactor = redactor if redactor is not None else Redactor()
        # Texts every tool sees instead of the file's (``revise``): a reviewer's merged results.
        self.revised: dict[str, str] = {}

    def revise(self, texts: Mapping[str, str]) -> None:
        """Make ``read_file``, ``grep``, ``list_files`` and ``find_*`` see ``texts`` (path ->
        changed text) instead of the index's and the buffers' texts, replacing earlier ones."""
        self.revised = dict(texts)

    def definitions(self, name: str) -> list[tuple[str, Any]]:
        hits = [(p, d) for p, d in self.index.definitions(name) if p not in self.revised]
        return self._revised_symbols(0, name) + hits

    def references(self, name: str) -> list[tuple[str, Any]]:
        hits = [(p, r) for p, r in self.index.references(name) if p not in self.revised]
        return self._revised_symbols(1, name) + hits

    def _revised_symbols(self, which: int, name: str) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for path, text in sorted(self.revised.items()):
            language = language_for_path(path)
            if language is not None:
                symbols = extract(language, text.encode("utf-8", "replace"))[which]
                out.extend((path, item) for item in symbols if item.name == name)
        return out

    def grep(self, pattern: str, *, regex: bool, limit: int) -> list[tuple[str, int, str]]:
        """Lines holding ``pattern``; the revised texts first, instead of their old versions."""
        if not self.revised:
            return self.index.grep(pattern, regex=regex, limit=limit)
        try:
            compiled = re.compile(pattern if regex else re.escape(pattern))
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
        hits = [
            (path, number, line)
            for path, text in sorted(self.revised.items())
            for number, line in enumerate(text.splitlines())
            if compiled.search(line)
        ]
        rest = self.index.grep(pattern, regex=regex, limit=limit)
        return (hits + [h for h in rest if h[0] not in self.revised])[:limit]

    def clip(self, text: str, limit: int) -> str:
        """``text`` cut to ``limit`` characters; redacted first when it is cut."""
        return text if len(text) <= limit else clip(self.redactor.redact(text), limit)

    def normalize(self, path: str) -> str:
        """A POSIX path relative to the root; ``ValueError`` when it leaves the root."""
        if not isinstance(path, str) or not path.strip():
            raise ValueError("path must be a non-empty string")
        raw = path.strip().replace("\\", "/")
        if raw.startswith("file://"):
            raw = raw[len("file://") :]
        if posixpath.normpath(raw) in ("", ".", self.root.as_posix()):
            raise ValueError(f"{path!r} is the workspace root, not a file")
        # The one inside-the-root rule (symlinks followed: a link pointing out is outside).
        resolved = safe_path(self.root, raw)
        return resolved.relative_to(self.root.resolve()).as_posix()

    def resolve(self, path: str, *, must_exist: bool = True) -> str:
        """Validate a path named by a model; raises ``ToolError`` with the reason."""
        try:
            rel = self.normalize(path)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        if is_secret_path(rel):
            raise ToolError(f"{rel} is a secret file (keys, credentials); it cannot be read")
        if rel not in self.texts and rel not in self.revised and self.index.is_ignored(rel):
            raise ToolError(f"{rel} is ignored by the workspace settings")
        raw = self._raw(rel)
        if raw is not None and _PRIVATE_KEY.search(raw):
            raise ToolError(f"{rel} holds a private key; it cannot be read or edited")
        if raw is None and (must_exist or (self.root / rel).exists()):
            # An existing file the index cannot read (binary, too large) must not be recreated.
            raise ToolError(f"{rel} does not exist or is not a text file (see list_files)")
        return rel

    def _raw(self, rel: str) -> str | None:
        if rel in self.revised:
            return self.revised[rel]
        return self.texts[rel] if rel in self.texts else self.index.text(rel)

    def read(self, rel: str) -> str | None:
        """The text a model may see; None for missing, secret or private-key files."""
        if is_secret_path(rel):
            return None
        text = self._raw(rel)
        if text is not None and _PRIVATE_KEY.search(text):
            return None
        return text

    def paths(self) -> list[str]:
        """Every file a model may name: the index's (discovery already dropped ignored files)
        plus open buffers that are not ignored; never a secret file."""
        names = set(self.index.entries())
        names.update(p for p in self.texts if p not in names and not self.index.is_ignored(p))
        names.update(self.revised)  # a file the task creates
        return sorted(p for p in names if not is_secret_path(p))


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]
    handler: Callable[[dict[str, Any]], str]

    def schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _int_arg(args: Mapping[str, Any], name: str) -> int | None:
    value = args.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ToolError(f"{name} must be an integer (1-based line number)")
    return value


def research_tools(ws: Workspace) -> list[Tool]:
    """Read-only tools over the index (researcher; the reviewer gets them too)."""

    def list_files(args: dict[str, Any]) -> str:
        pattern = args.get("glob") or "*"
        if not isinstance(pattern, str):
            raise ToolError("glob must be a string")
        hits = [p for p in ws.paths() if fnmatch.fnmatch(p, pattern)]
        more = f"\n... {len(hits) - MAX_LIST} more" if len(hits) > MAX_LIST else ""
        return "\n".join(hits[:MAX_LIST]) + more if hits else f"no files match {pattern!r}"

    def read_file(args: dict[str, Any]) -> str:
        rel = ws.resolve(str(args.get("path", "")))
        text = ws.read(rel)
        if text is None:
            raise ToolError(f"{rel} cannot be read (secret content)")
        lines = text.splitlines()
        start = _int_arg(args, "start_line")
        end = _int_arg(args, "end_line")
        start = 1 if start is None else start
        end = len(lines) if end is None else end
        if start < 1 or end < start:
            raise ToolError(f"bad line range {start}-{end}; lines are 1-based, inclusive")
        if start > max(len(lines), 1):
            raise ToolError(f"{rel} has only {len(lines)} lines")
        end = min(end, len(lines), start + MAX_READ_LINES - 1)
        body = "\n".join(f"{n:>5}| {lines[n - 1]}" for n in range(start, end + 1))
        if len(body) > MAX_READ_CHARS:
            body = ws.clip(body, MAX_READ_CHARS) + "\n... (truncated; read a smaller range)"
        return f"{rel} lines {start}-{end} of {len(lines)}\n{body}"

    def find_definitions(args: dict[str, Any]) -> str:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            raise ToolError("name must be a non-empty string")
        hits = [(p, d) for p, d in ws.definitions(name) if not is_secret_path(p)]
        rows = [
            f"{p}:{d.start_line + 1}: {d.kind} {_signature(d.signature)}"
            for p, d in hits[:MAX_HITS]
        ]
        return "\n".join(rows) if rows else f"no definition of {name!r}"

    def find_references(args: dict[str, Any]) -> str:
        name = args.get("name")
        if not isinstance(name, str) or not name:
            raise ToolError("name must be a non-empty string")
        hits = [(p, r) for p, r in ws.references(name) if not is_secret_path(p)]
        rows = [f"{p}:{r.line + 1}: {r.kind} {r.name}" for p, r in hits[:MAX_HITS]]
        return "\n".join(rows) if rows else f"no references to {name!r}"

    def grep(args: dict[str, Any]) -> str:
        pattern = args.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise ToolError("pattern must be a non-empty string")
        regex = bool(args.get("regex", False))
        try:
            hits = ws.grep(pattern, regex=regex, limit=MAX_HITS * 2)
        except (re.error, ValueError) as exc:
            raise ToolError(f"invalid regular expression: {exc}") from None
        readable: dict[str, bool] = {}
        rows = []
        for p, line, text in hits:
            if p not in readable:
                readable[p] = ws.read(p) is not None and not ws.index.is_ignored(p)
            if readable[p]:
                rows.append(f"{p}:{line + 1}: {ws.clip(text.strip(), MAX_HIT_CHARS)}")
        return "\n".join(rows[:MAX_HITS]) if rows else f"no matches for {pattern!r}"

    s, i = {"type": "string"}, {"type": "integer"}
    return [
        Tool(
            "list_files",
            "List workspace files (POSIX paths relative to the root), optionally filtered by "
            "a glob such as 'src/**/*.py'.",
            _object({"glob": {**s, "description": "fnmatch-style glob"}}, []),
            list_files,
        ),
        Tool(
            "read_file",
            "Read a file, or a range of its lines (1-based, inclusive), with line numbers.",
            _object({"path": s, "start_line": i, "end_line": i}, ["path"]),
            read_file,
        ),
        Tool(
            "find_definitions",
            "Where a symbol (function, class, method, ...) is defined.",
            _object({"name": s}, ["name"]),
            find_definitions,
        ),
        Tool(
            "find_references",
            "Where a symbol is used (calls, type uses, imports).",
            _object({"name": s}, ["name"]),
            find_references,
        ),
        Tool(
            "grep",
            "Search file contents for a literal string, or a regular expression when regex=true.",
            _object({"pattern": s, "regex": {"type": "boolean"}}, ["pattern"]),
            grep,
        ),
    ]


def _signature(text: str) -> str:
    # The index cuts signatures at MAX_SIGNATURE characters, maybe through a key.
    return drop_cut_token(text) if len(text) >= MAX_SIGNATURE else text


def submit_plan_tool(validate: Callable[[dict[str, Any]], dict[str, Any]]) -> Tool:
    """Ends the researcher. ``validate`` returns the cleaned plan or raises ``ToolError``."""

    def submit(args: dict[str, Any]) -> str:
        raise Submitted(validate(args))

    target = _object(
        {
            "path": {"type": "string", "description": "file to change or create"},
            "instructions": {"type": "string", "description": "what to change in that file"},
            "new": {"type": "boolean", "description": "true only for a file to create"},
        },
        ["path", "instructions"],
    )
    return Tool(
        "submit_plan",
        "Finish research: the files to change (one coder per file) and notes for the coders.",
        _object(
            {"targets": {"type": "array", "items": target}, "notes": {"type": "string"}},
            ["targets", "notes"],
        ),
        submit,
    )


def submit_review_tool() -> Tool:
    def submit(args: dict[str, Any]) -> str:
        approved = args.get("approved")
        if not isinstance(approved, bool):
            raise ToolError("approved must be true or false")
        findings = args.get("findings") or []
        if not isinstance(findings, list) or not all(
            isinstance(f, dict) and isinstance(f.get("message"), str) for f in findings
        ):
            raise ToolError('findings must be a list of {"path": str, "message": str}')
        if not approved and not findings:
            raise ToolError("a rejection needs at least one finding the coders can act on")
        clean = [{"path": str(f.get("path") or ""), "message": f["message"]} for f in findings]
        raise Submitted({"approved": approved, "findings": clean})

    finding = _object({"path": {"type": "string"}, "message": {"type": "string"}}, ["message"])
    return Tool(
        "submit_review",
        "Finish the review: approve the combined diff, or reject it with findings per file.",
        _object(
            {"approved": {"type": "boolean"}, "findings": {"type": "array", "items": finding}},
            ["approved", "findings"],
        ),
        submit,
    )


def describe(tools: list[Tool]) -> str:
    """Schemas as pretty JSON, for docs/protocol.md."""
    return json.dumps([t.schema() for t in tools], indent=2)
