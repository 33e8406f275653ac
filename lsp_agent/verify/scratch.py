"""Scratch trees: a private, writable copy of a workspace that nothing copies back.

A verification runs the project's checks on the workspace *as the task read it* with the task's
candidate edits applied, without ever writing the user's files or their repository:

- inside a git repository, the tree is ``HEAD`` checked out through a throw-away index file
  (``git read-tree`` + ``git checkout-index``: nothing is written under ``.git``), then every
  uncommitted change and untracked, non-ignored file is copied over it (deleted files removed);
- outside git, a plain copy of the tree.

Environment folders (``.venv``, ``venv``, ``node_modules``) and tool caches are never copied: the
sandbox binds the workspace's own environment read-only at its usual place. Frozen editor buffers
and candidate edits are written on top with ``ScratchTree.write_texts``.

``add_worktree`` / ``remove_worktree`` manage a real ``git worktree`` (with its own branch), for
callers that want commits, such as goal runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

# Bound read-only from the workspace by the sandbox, never copied.
ENVIRONMENT_DIRS = (".venv", "venv", "node_modules")
# Never copied: derived state a check may rebuild in the scratch tree.
SKIPPED_DIRS = frozenset(
    {".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".tox", ".nox"}
)


class ScratchError(Exception):
    """A scratch tree could not be made; the message says why."""


@dataclass
class ScratchTree:
    """A writable copy of ``source`` at ``path``; ``remove()`` (or ``with``) deletes it."""

    path: Path  # the copy of the workspace root
    top: Path  # the folder this tree owns (path, or the repository copy path lies in)
    source: Path  # the workspace root it copies (resolved)
    kind: Literal["git", "copy"]
    base_hash: str  # content hash of the tree as copied, before write_texts
    written: dict[str, str | None] = field(default_factory=dict)

    def write_texts(self, texts: Mapping[str, str | None]) -> None:
        """Overlay files (POSIX paths relative to the root): text, or None to delete."""
        for rel, text in texts.items():
            target = self._inside(rel)
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                # newline="" keeps the text's own line endings.
                with open(target, "w", encoding="utf-8", newline="") as handle:
                    handle.write(text)
            self.written[rel] = text

    def content_hash(self) -> str:
        """The base hash plus every overlay written so far: equal trees, equal hashes."""
        digest = hashlib.sha256(self.base_hash.encode())
        for rel in sorted(self.written):
            text = self.written[rel]
            digest.update(f"\0{rel}\0".encode())
            digest.update(b"\1" if text is None else b"\2" + text.encode("utf-8"))
        return digest.hexdigest()

    def _inside(self, rel: str) -> Path:
        from lsp_agent.edits import safe_path

        return safe_path(self.path, rel)

    def remove(self) -> None:
        shutil.rmtree(self.top, ignore_errors=True)

    def __enter__(self) -> ScratchTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def create_scratch(
    source: Path,
    parent: Path | None = None,
    *,
    texts: Mapping[str, str | None] | None = None,
    mode: Literal["auto", "git", "copy"] = "auto",
) -> ScratchTree:
    """A scratch copy of the workspace ``source`` in a new folder under ``parent`` (default: the
    system temp dir), with ``texts`` written over it. Never writes inside ``source``.
    ``mode="auto"`` uses git when ``source`` is inside a work tree, else a plain copy."""
    source = source.resolve()
    if not source.is_dir():
        raise ScratchError(f"{source} is not a directory")
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
        if parent.resolve().is_relative_to(source):
            raise ScratchError(f"the scratch folder {parent} must not be inside {source}")
    top = Path(tempfile.mkdtemp(prefix="scratch-", dir=parent))
    try:
        repo = git_toplevel(source) if mode != "copy" else None
        if mode == "git" and repo is None:
            raise ScratchError(f"{source} is not inside a git work tree")
        if repo is not None:
            base = _git_copy(repo, source, top)
            tree = ScratchTree(top / source.relative_to(repo), top, source, "git", base)
        else:
            tree = ScratchTree(top, top, source, "copy", _plain_copy(source, top))
        tree.path.mkdir(parents=True, exist_ok=True)
        if texts:
            tree.write_texts(texts)
        return tree
    except BaseException:
        shutil.rmtree(top, ignore_errors=True)
        raise


def git_toplevel(path: Path) -> Path | None:
    """The root of the git work tree containing ``path``, or None (no git, or not a repo)."""
    try:
        out = _git(path, "rev-parse", "--show-toplevel")
    except ScratchError:
        return None
    return Path(out.strip()).resolve() if out.strip() else None


def _git(cwd: Path, *args: str, env: Mapping[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            # No optional locks: `git status` must not refresh the user's index file.
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", **(env or {})},
            check=False,
        )
    except FileNotFoundError:
        raise ScratchError("git is not installed") from None
    if done.returncode != 0:
        raise ScratchError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _git_copy(repo: Path, source: Path, top: Path) -> str:
    """HEAD through a private index file, then the working tree's differences over it."""
    digest = hashlib.sha256()
    head = ""
    with contextlib.suppress(ScratchError):  # no commits yet: everything is untracked
        head = _git(repo, "rev-parse", "--verify", "-q", "HEAD").strip()
    digest.update(head.encode())
    scope = source.relative_to(repo).as_posix() or "."
    if head:
        with tempfile.TemporaryDirectory(prefix="scratch-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            _git(repo, "read-tree", head, env=env)
            _git(repo, "checkout-index", "-a", "-f", f"--prefix={top}/", env=env)
    status = _git(
        repo,
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        "--ignore-submodules=all",
        "--",
        scope,
    )
    for rel in sorted(_status_paths(status)):
        if _skipped(rel):
            continue
        src, dst = repo / rel, top / rel
        digest.update(b"\0" + rel.encode())
        if src.is_file() and not src.is_symlink():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            digest.update(_file_digest(src))
        elif src.is_symlink():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.unlink(missing_ok=True)
            os.symlink(os.readlink(src), dst)
            digest.update(os.readlink(src).encode())
        else:
            dst.unlink(missing_ok=True)
            digest.update(b"deleted")
    return digest.hexdigest()


def _status_paths(status: str) -> Iterable[str]:
    for entry in status.split("\0"):
        if len(entry) > 3:
            yield entry[3:]


def _skipped(rel: str) -> bool:
    parts = rel.split("/")
    return any(p in SKIPPED_DIRS for p in parts) or parts[0] in ENVIRONMENT_DIRS


def _file_digest(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").digest()


def _plain_copy(source: Path, top: Path) -> str:
    """``cp -a`` of every top-level entry but the environment folders and ``.git`` (one C
    process: ~20x faster than copying file by file in Python); the hash covers the paths, sizes
    and mtimes of what was copied."""
    entries = sorted(
        e for e in os.listdir(source) if e not in SKIPPED_DIRS and e not in ENVIRONMENT_DIRS
    )
    if entries:
        done = subprocess.run(
            ["cp", "-a", "--reflink=auto", "--", *entries, str(top)],
            cwd=source,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise ScratchError(f"copying {source} failed: {done.stderr.strip()[:500]}")
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(top):
        dirs.sort()
        rel_dir = os.path.relpath(folder, top)
        for name in sorted(files):
            try:
                stat = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            digest.update(f"{rel_dir}/{name}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def add_worktree(repo: Path, dest: Path, *, ref: str = "HEAD", branch: str | None = None) -> Path:
    """A real ``git worktree`` of ``repo`` at ``dest`` checked out at ``ref``: on a new
    ``branch`` when given, else detached. Returns ``dest`` resolved."""
    args = ["worktree", "add"]
    args += ["-b", branch] if branch else ["--detach"]
    _git(repo, *args, str(dest), ref)
    return dest.resolve()


def remove_worktree(repo: Path, dest: Path) -> None:
    """Remove a worktree made by ``add_worktree`` (uncommitted changes in it are lost)."""
    try:
        _git(repo, "worktree", "remove", "--force", str(dest))
    except ScratchError:
        shutil.rmtree(dest, ignore_errors=True)
        _git(repo, "worktree", "prune")
