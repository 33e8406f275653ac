"""Linter output to LSP diagnostics, grouped by workspace-relative path.

Accepted inputs, detected from the JSON's shape: ``ruff check --output-format json``,
``pyright --outputjson``, ``eslint -f json``, and LSP ``PublishDiagnosticsParams`` (one object
or a list). Every diagnostic becomes an LSP ``Diagnostic`` dict with a 0-based range, so the
worker sees one shape whatever the source.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsp_agent.batch.errors import UsageError

Diagnostic = dict[str, Any]
FORMATS = ("ruff", "pyright", "eslint", "lsp")

_PYRIGHT_SEVERITY = {"error": 1, "warning": 2, "information": 3, "hint": 4}
_ESLINT_SEVERITY = {2: 1, 1: 2}


def _range(line: int, col: int, end_line: int | None, end_col: int | None) -> dict[str, Any]:
    """1-based line/column (ruff, eslint) to an LSP range."""
    start = {"line": max(line - 1, 0), "character": max(col - 1, 0)}
    if end_line is None:
        end = dict(start)
    else:
        end = {"line": max(end_line - 1, 0), "character": max((end_col or 1) - 1, 0)}
    return {"start": start, "end": end}


def _ruff(data: list[dict[str, Any]]) -> Iterable[tuple[str, Diagnostic]]:
    for item in data:
        loc = item.get("location") or {}
        end = item.get("end_location") or {}
        yield (
            item["filename"],
            {
                "range": _range(
                    loc.get("row", 1), loc.get("column", 1), end.get("row"), end.get("column")
                ),
                "severity": 1 if (item.get("code") or "").startswith(("E9", "F")) else 2,
                "code": item.get("code"),
                "source": "ruff",
                "message": item.get("message", ""),
            },
        )


def _pyright(data: dict[str, Any]) -> Iterable[tuple[str, Diagnostic]]:
    for item in data.get("generalDiagnostics") or []:
        diagnostic: Diagnostic = {
            "range": item.get("range") or _range(1, 1, None, None),
            "severity": _PYRIGHT_SEVERITY.get(item.get("severity", "error"), 1),
            "source": "pyright",
            "message": item.get("message", ""),
        }
        if item.get("rule"):
            diagnostic["code"] = item["rule"]
        yield item["file"], diagnostic


def _eslint(data: list[dict[str, Any]]) -> Iterable[tuple[str, Diagnostic]]:
    for result in data:
        for msg in result.get("messages") or []:
            yield (
                result["filePath"],
                {
                    "range": _range(
                        msg.get("line", 1),
                        msg.get("column", 1),
                        msg.get("endLine"),
                        msg.get("endColumn"),
                    ),
                    "severity": _ESLINT_SEVERITY.get(msg.get("severity", 2), 1),
                    "code": msg.get("ruleId"),
                    "source": "eslint",
                    "message": msg.get("message", ""),
                },
            )


def _lsp(data: dict[str, Any] | list[dict[str, Any]]) -> Iterable[tuple[str, Diagnostic]]:
    for params in [data] if isinstance(data, dict) else data:
        uri = params["uri"]
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise UsageError(f"diagnostics for {uri!r}: only file:// URIs are supported")
        for diagnostic in params.get("diagnostics") or []:
            yield unquote(parsed.path), dict(diagnostic)


def detect_format(data: Any) -> str:
    if isinstance(data, dict):
        if "generalDiagnostics" in data:
            return "pyright"
        if "uri" in data and "diagnostics" in data:
            return "lsp"
    elif isinstance(data, list):
        if not data:
            return "lsp"  # an empty list of anything: no diagnostics
        first = data[0]
        if isinstance(first, dict):
            if "filePath" in first and "messages" in first:
                return "eslint"
            if "filename" in first and "location" in first:
                return "ruff"
            if "uri" in first and "diagnostics" in first:
                return "lsp"
    raise UsageError(
        "cannot tell the diagnostics format; expected JSON from `ruff check --output-format json`,"
        " `pyright --outputjson`, `eslint -f json`, or LSP PublishDiagnosticsParams"
    )


_PARSERS: dict[str, Callable[[Any], Iterable[tuple[str, Diagnostic]]]] = {
    "ruff": _ruff,
    "pyright": _pyright,
    "eslint": _eslint,
    "lsp": _lsp,
}


def parse_diagnostics(
    text: str, root: Path, *, cwd: Path | None = None
) -> tuple[dict[str, list[Diagnostic]], list[str]]:
    """Parse linter JSON; returns diagnostics per relative path and warnings (files skipped).

    Relative file names are taken relative to ``cwd`` (where the linter presumably ran).
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"diagnostics file is not JSON: {exc}") from None
    fmt = detect_format(data)
    base = (cwd or Path.cwd()).resolve()
    root = root.resolve()
    grouped: dict[str, list[Diagnostic]] = {}
    warnings: list[str] = []
    try:
        pairs = list(_PARSERS[fmt](data))
    except (KeyError, TypeError, AttributeError) as exc:
        raise UsageError(f"malformed {fmt} diagnostics: missing or wrong field {exc}") from None
    for filename, diagnostic in pairs:
        absolute = (base / filename).resolve()
        try:
            rel = absolute.relative_to(root).as_posix()
        except ValueError:
            warnings.append(f"{filename}: outside the workspace root {root}; skipped")
            continue
        grouped.setdefault(rel, []).append(diagnostic)
    for diagnostics in grouped.values():
        diagnostics.sort(
            key=lambda d: (d["range"]["start"]["line"], d["range"]["start"]["character"])
        )
    return dict(sorted(grouped.items())), warnings


def render_diagnostic(path: str, diagnostic: Diagnostic) -> str:
    """One line for the model and for people: 1-based, like a compiler message."""
    start = diagnostic["range"]["start"]
    code = diagnostic.get("code")
    source = diagnostic.get("source")
    tag = " ".join(str(x) for x in (code, f"[{source}]" if source else None) if x)
    head = f"{path}:{start['line'] + 1}:{start['character'] + 1}:"
    return f"{head} {tag} {diagnostic.get('message', '')}".replace("  ", " ")
