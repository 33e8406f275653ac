"""Which folder is the workspace root of a command: the one decision every subcommand shares.

The root comes from the PATH arguments, never from where the command happens to run: the git
work tree containing PATH, else the nearest folder above it with a project marker
(``pyproject.toml``, ``package.json``, ...), else PATH itself (a folder) or its folder (a file).
``--root`` overrides. A filesystem root or a home directory is never a root (a home that is a
git repository of dotfiles, or holds a stray ``package.json``, is passed over on the way up), so
a command run in the wrong place stops at once with a message instead of crawling the disk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROJECT_MARKERS = (
    ".lsp-agent.toml",
    "pyproject.toml",
    "setup.py",
    "setup.cfg",
    "package.json",
    "deno.json",
    "go.mod",
    "Cargo.toml",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "composer.json",
    "Gemfile",
    "mix.exs",
)
# Pseudo filesystems: never a root, never walked (discovery skips them too).
SYSTEM_TREES = ("/proc", "/sys", "/dev")
_GLOB_CHARS = frozenset("*?[")

HOW_TO_CHOOSE = (
    "name your project's folder as PATH (the root is the git work tree or the nearest folder "
    "with a project marker such as pyproject.toml or package.json above it), or pass --root DIR"
)


class RootError(ValueError):
    """No acceptable root; the message says which and how to choose one."""


@dataclass(frozen=True)
class WorkspaceRoot:
    path: Path  # resolved
    reason: str  # why this folder: shown next to it

    def describe(self) -> str:
        return f"{self.path} ({self.reason})"


def is_glob(arg: str) -> bool:
    return any(c in _GLOB_CHARS for c in arg)


def literal_prefix(arg: str) -> str:
    """The folder part of a glob before its first wildcard ("src/**/*.py" -> "src")."""
    literal: list[str] = []
    for part in Path(arg).parts:
        if is_glob(part):
            break
        literal.append(part)
    return str(Path(*literal)) if literal else "."


def is_home(path: Path) -> bool:
    """$HOME, /root, or an account's folder directly under /home (``path`` resolved)."""
    home = Path(os.path.expanduser("~"))
    with contextlib.suppress(OSError):
        home = home.resolve()
    return path in (home, Path("/root")) or path.parent == Path("/home")


def refusal(path: Path) -> str | None:
    """Why ``path`` (resolved) cannot be a workspace root, or None when it can."""
    if path == Path(path.anchor):
        return f"{path} is the root of the filesystem"
    if any(path == Path(t) or Path(t) in path.parents for t in SYSTEM_TREES):
        return f"{path} is a system pseudo-filesystem, not code"
    if is_home(path):
        return f"{path} is a home directory, not a project"
    return None


def _start_folder(arg: str, cwd: Path) -> Path:
    literal = literal_prefix(arg) if is_glob(arg) else arg
    path = Path(literal).expanduser()
    path = path if path.is_absolute() else cwd / path
    if not path.exists():
        if is_glob(arg):
            raise RootError(f"{arg}: its folder {path} does not exist")
        raise RootError(f"{arg}: no such file or directory")
    path = path.resolve()
    return path if path.is_dir() else path.parent


def _root_of(start: Path, label: str) -> WorkspaceRoot:
    candidates = [start, *start.parents]
    for folder in candidates:
        if is_home(folder) or folder == Path(folder.anchor):
            continue
        if (folder / ".git").exists():  # a folder, or a file in worktrees and submodules
            return WorkspaceRoot(folder, f"git work tree containing {label}")
    for folder in candidates:
        if is_home(folder) or folder == Path(folder.anchor):
            continue
        marker = next((m for m in PROJECT_MARKERS if (folder / m).is_file()), None)
        if marker is not None:
            return WorkspaceRoot(folder, f"nearest folder above {label} with {marker}")
    return WorkspaceRoot(start, f"the folder of {label}; no git work tree or project marker above")


def choose_root(
    paths: Sequence[str],
    cwd: Path,
    explicit: Path | str | None = None,
    *,
    explicit_flag: str = "--root",
) -> WorkspaceRoot:
    """The workspace root for a command given ``paths`` (files, folders or globs, relative to
    ``cwd``; none = ``cwd``) and an explicit root (``--root``, or the PATH of a command whose
    PATH is the root: ``explicit_flag`` names it in messages). RootError: a PATH that does not
    exist, PATHs under different roots, an explicit root that is missing, or a root that is
    ``/``, a system tree or a home directory."""
    cwd = cwd.resolve()
    if explicit is not None:
        given = Path(explicit).expanduser()
        given = given if given.is_absolute() else cwd / given
        named = f"{explicit_flag} {explicit}" if explicit_flag.startswith("-") else str(explicit)
        if not given.exists():
            raise RootError(f"{named}: no such directory")
        if not given.is_dir():
            raise RootError(f"{named}: not a directory")
        root = WorkspaceRoot(given.resolve(), f"given as {explicit_flag}")
    else:
        chosen: dict[Path, tuple[str, WorkspaceRoot]] = {}
        by_start: dict[Path, WorkspaceRoot] = {}
        for arg in paths or ["."]:
            start = _start_folder(arg, cwd)
            if start not in by_start:
                by_start[start] = _root_of(start, arg if paths else "the current folder")
            found = by_start[start]
            chosen.setdefault(found.path, (arg, found))
        if len(chosen) > 1:
            (arg_a, a), (arg_b, b) = list(chosen.values())[:2]
            raise RootError(
                f"the PATHs are in different workspaces: {arg_a} is under {a.path}, "
                f"{arg_b} under {b.path}; run once per workspace, or pass --root DIR "
                "containing both"
            )
        root = next(iter(chosen.values()))[1]
    why_not = refusal(root.path)
    if why_not is not None:
        raise RootError(f"will not index {why_not}: {HOW_TO_CHOOSE}")
    return root
