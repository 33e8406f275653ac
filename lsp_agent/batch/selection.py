"""Which files a batch run covers (the root is workspace_root.choose_root's decision).

PATH arguments are files, folders or globs, relative to the current directory. Folders and
globs select indexed files only (discovery already dropped ignored, binary and oversized
files); a folder selects the files with a grammar (source code), so `refactor "..." .` does not
send the README and lock files to the model. A named file is taken as given if the index has it.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lsp_agent.batch.errors import UsageError
from lsp_agent.workspace_root import is_glob


def _relative(root: Path, path: Path, arg: str) -> str:
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        raise UsageError(f"{arg}: outside the workspace root {root}") from None
    return rel.as_posix()


def select_files(
    root: Path,
    args: Sequence[str],
    entries: Mapping[str, Any],
    *,
    cwd: Path,
) -> list[str]:
    """Resolve PATH arguments against the index ``entries`` (path -> FileEntry); sorted, unique.

    Raises UsageError for a path outside the root, a missing path, a file the index does not
    have, or a selection that ends up empty.
    """
    root = root.resolve()
    selected: set[str] = set()
    for arg in args or ["."]:
        absolute = Path(arg) if Path(arg).is_absolute() else cwd / arg
        if is_glob(arg):
            matches = [Path(m) for m in glob.glob(str(absolute), recursive=True)]
            hits = set()
            for match in matches:
                if match.is_file():
                    rel = _relative(root, match, arg)
                    if rel in entries:
                        hits.add(rel)
                elif match.is_dir():
                    hits.update(_folder(root, match, arg, entries))
            if not hits:
                raise UsageError(f"{arg}: matches no indexed file")
            selected |= hits
            continue
        if not absolute.exists():
            raise UsageError(f"{arg}: no such file or directory")
        if absolute.is_dir():
            hits = _folder(root, absolute, arg, entries)
            if not hits:
                raise UsageError(f"{arg}: contains no indexed source file")
            selected |= hits
            continue
        rel = _relative(root, absolute, arg)
        if rel not in entries:
            raise UsageError(f"{arg}: not in the index (ignored, binary or too large)")
        selected.add(rel)
    if not selected:
        raise UsageError("no files selected")
    return sorted(selected)


def _folder(root: Path, folder: Path, arg: str, entries: Mapping[str, Any]) -> set[str]:
    rel = _relative(root, folder, arg)
    prefix = "" if rel == "." else rel + "/"
    return {
        path
        for path, entry in entries.items()
        if path.startswith(prefix) and getattr(entry, "language", None) is not None
    }
