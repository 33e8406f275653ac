"""Which directories the watcher asks the OS to watch: never one inside an ignored tree.

A recursive OS watch of the root would place an inotify watch in every folder of node_modules,
.venv or target/ only to drop their events afterwards, and can exhaust
``fs.inotify.max_user_watches`` on a monorepo. The plan instead watches a directory
recursively only when no ignored (or symlinked, or unreadable) directory sits anywhere below it;
every other directory is watched on its own (non-recursively) and the plan descends into its
non-ignored children. In a git checkout the root is always such a directory (because of .git).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from lsp_agent.index.discovery import IgnoreRules

log = logging.getLogger(__name__)

# Changes to .git/info/exclude change the ignore rules; the rest of .git is never watched.
GIT_INFO = ".git/info"


@dataclass(frozen=True, slots=True)
class WatchPlan:
    recursive: tuple[str, ...]  # relative dirs ("" = the root) watched with their whole subtree
    flat: tuple[str, ...]  # relative dirs watched without their subdirectories
    dirs: frozenset[str]  # every directory the plan covers (what the OS will watch)

    def covers_subtree(self, rel_dir: str) -> bool:
        """Whether ``rel_dir`` lies in a recursively watched subtree (new subdirs auto-watched)."""
        return rel_dir in self.dirs and rel_dir not in self.flat

    def paths(self, root: Path, recursive: bool) -> list[str]:
        rels = self.recursive if recursive else self.flat
        return [str(root / rel) if rel else str(root) for rel in rels]


def _children(root: str, rel_dir: str, rules: IgnoreRules) -> tuple[list[str], bool]:
    """The non-ignored real subdirectories of ``rel_dir``, and whether any subdirectory was left
    out (ignored, a symlink, unreadable) — which makes a recursive watch of ``rel_dir`` unsafe."""
    abs_dir = os.path.join(root, rel_dir) if rel_dir else root
    kept: list[str] = []
    hazard = False
    try:
        with os.scandir(abs_dir) as it:
            # d_type answers is_dir/is_symlink without a stat on most filesystems.
            dirs = sorted((entry.name, entry.is_symlink()) for entry in it if _is_dir(entry))
    except OSError as exc:
        log.debug("watch plan: cannot list %s: %s", abs_dir, exc)
        return [], True
    for name, is_link in dirs:
        rel = f"{rel_dir}/{name}" if rel_dir else name
        # Folder links are left unwatched: a recursive OS watch would follow them out of the
        # root or around a loop.
        if is_link or rules.match(rel, True):
            hazard = True
            continue
        kept.append(rel)
    return kept, hazard


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows symlinks: a link to a folder is a folder here
    except OSError:
        return False


def plan_watches(
    root: Path, extra_ignore: tuple[str, ...] = (), *, rules: IgnoreRules | None = None
) -> WatchPlan:
    """Walk the non-ignored directories of ``root`` (ignored ones are never entered).
    ``rules``: the index's own (IgnoreRules.for_settings), else built from ``extra_ignore``."""
    rules = rules if rules is not None else IgnoreRules(root, extra_ignore)
    children: dict[str, list[str]] = {}
    unsafe: set[str] = set()  # dirs that cannot be watched recursively
    order: list[str] = []  # pre-order: every parent before its children
    stack = [""]
    while stack:
        rel_dir = stack.pop()
        order.append(rel_dir)
        kids, hazard = _children(str(root), rel_dir, rules)
        children[rel_dir] = kids
        if hazard:
            unsafe.add(rel_dir)
        stack.extend(reversed(kids))
    for rel_dir in reversed(order):  # children first: unsafety propagates up to the root
        if any(kid in unsafe for kid in children[rel_dir]):
            unsafe.add(rel_dir)
    recursive: list[str] = []
    flat: list[str] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        if rel_dir in unsafe:
            flat.append(rel_dir)
            pending.extend(reversed(children[rel_dir]))
        else:
            recursive.append(rel_dir)
    if (root / GIT_INFO).is_dir() and not (root / GIT_INFO).is_symlink():
        flat.append(GIT_INFO)
    return WatchPlan(tuple(recursive), tuple(flat), frozenset(order) | set(flat))
