"""Which files the index sees: a deterministic walk of the root that honours git's ignore rules.

Rules, lowest precedence first: the extra ignore list from settings and ``.git/info/exclude``
(both relative to the root), then each ``.gitignore`` from the root down to the file's own
directory, each relative to its directory. As in git, the last matching pattern wins, and an
ignored directory is pruned: nothing beneath it is visited or can be re-included.

Reading a file (binary sniff, size cap) is separate from the walk so pool workers read each file
exactly once; ``read_source`` is the one place that decides "binary" and "unreadable".
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pathspec import GitIgnoreSpec

log = logging.getLogger(__name__)

SNIFF_BYTES = 8192
SKIP_REASONS = ("ignored", "binary", "too_large", "symlink_loop", "outside_root", "unreadable")
ALWAYS_SKIPPED_DIRS = frozenset({".git"})


@dataclass(frozen=True, slots=True)
class FoundFile:
    path: str  # POSIX, relative to the root
    size: int
    mtime_ns: int


@dataclass
class Discovery:
    files: list[FoundFile] = field(default_factory=list)  # sorted by path
    skipped: Counter[str] = field(default_factory=Counter)


def _read_patterns(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


class IgnoreRules:
    """Git ignore semantics over a tree: one compiled spec per directory that has a .gitignore."""

    def __init__(self, root: Path, extra: tuple[str, ...] = ()) -> None:
        self.root = root
        base = list(extra) + _read_patterns(root / ".git" / "info" / "exclude")
        self._base = GitIgnoreSpec.from_lines(base) if base else None
        self._specs: dict[str, GitIgnoreSpec | None] = {}  # dir ("" = root) -> spec

    def load_dir(self, rel_dir: str) -> None:
        """Read ``rel_dir/.gitignore`` (again, if it changed)."""
        lines = _read_patterns(self.root / rel_dir / ".gitignore")
        self._specs[rel_dir] = GitIgnoreSpec.from_lines(lines) if lines else None

    def _spec(self, rel_dir: str) -> GitIgnoreSpec | None:
        if rel_dir not in self._specs:
            self.load_dir(rel_dir)
        return self._specs[rel_dir]

    def match(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` itself matches (ancestors are not checked: the walk prunes them)."""
        parts = rel.split("/")
        if parts[-1] in ALWAYS_SKIPPED_DIRS:  # ancestors are checked by the caller
            return True
        suffix = "/" if is_dir else ""
        # Deepest .gitignore first: the first one with an opinion decides.
        for depth in range(len(parts) - 1, -1, -1):
            spec = self._spec("/".join(parts[:depth]))
            if spec is None:
                continue
            result = spec.check_file("/".join(parts[depth:]) + suffix).include
            if result is not None:
                return result
        if self._base is not None:
            return bool(self._base.check_file(rel + suffix).include)
        return False

    def is_ignored(self, rel: str, is_dir: bool = False) -> bool:
        """Whether ``rel`` or any directory above it is ignored."""
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            if self.match("/".join(parts[:depth]), True):
                return True
        return self.match(rel, is_dir)


def discover(
    root: Path,
    rules: IgnoreRules,
    max_file_bytes: int,
    start: str = "",
) -> Discovery:
    """Walk ``root`` (or the subdirectory ``start``): files kept, and skips counted by reason."""
    result = Discovery()
    real_root = os.path.realpath(root)
    visited: set[str] = set()
    stack = [start]
    # Directory symlinks are followed only after every real directory has been walked, so a
    # folder reachable both directly and through a link is indexed under its real path, and
    # whatever the names, the result is the same.
    deferred: list[str] = []
    while stack or deferred:
        if not stack:
            stack.extend(reversed(deferred))
            deferred.clear()
        rel_dir = stack.pop()
        abs_dir = os.path.join(root, rel_dir) if rel_dir else str(root)
        real_dir = os.path.realpath(abs_dir)
        if real_dir in visited:  # reached again through a symlink: a loop or a second path
            result.skipped["symlink_loop"] += 1
            continue
        visited.add(real_dir)
        try:
            with os.scandir(abs_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            log.warning("cannot list %s: %s", abs_dir, exc)
            result.skipped["unreadable"] += 1
            continue
        subdirs: list[str] = []
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.name in ALWAYS_SKIPPED_DIRS:
                continue
            try:
                is_link = entry.is_symlink()
                st = entry.stat()  # follows symlinks
            except OSError:
                # A dangling symlink, a symlink loop (ELOOP), or a file gone since listing.
                result.skipped["symlink_loop" if _is_loop(entry.path) else "unreadable"] += 1
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if rules.match(rel, is_dir):
                result.skipped["ignored"] += 1
                continue
            if is_link:
                target = os.path.realpath(entry.path)
                if target != real_root and not target.startswith(real_root + os.sep):
                    result.skipped["outside_root"] += 1
                    continue
                if is_dir and (target in visited or real_dir.startswith(target + os.sep)):
                    result.skipped["symlink_loop"] += 1
                    continue
                if is_dir:
                    deferred.append(rel)
                    continue
            if is_dir:
                subdirs.append(rel)
            elif stat.S_ISREG(st.st_mode):
                if st.st_size > max_file_bytes:
                    result.skipped["too_large"] += 1
                else:
                    result.files.append(FoundFile(rel, st.st_size, st.st_mtime_ns))
            # sockets, fifos, devices: not source, not counted
        stack.extend(reversed(subdirs))
    result.files.sort(key=lambda f: f.path)
    return result


def _is_loop(path: str) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def read_source(path: Path | str, max_file_bytes: int) -> bytes | str:
    """The file's bytes, or the skip reason ("binary", "too_large", "unreadable")."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_file_bytes + 1)
    except OSError:
        return "unreadable"
    return skip_reason(data, max_file_bytes) or data


def skip_reason(data: bytes, max_file_bytes: int) -> str | None:
    """Why content is not indexed ("too_large", "binary"), or None: the one rule for files
    on disk and open buffers alike."""
    if len(data) > max_file_bytes:
        return "too_large"
    if b"\0" in data[:SNIFF_BYTES]:
        return "binary"
    return None
