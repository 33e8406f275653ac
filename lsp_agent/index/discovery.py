"""Which files the index sees: a deterministic walk of the root that honours git's ignore rules.

Rules, lowest precedence first: the extra ignore list from settings and ``.git/info/exclude``
(both relative to the root), then each ``.gitignore`` from the root down to the file's own
directory, each relative to its directory. As in git, the last matching pattern wins, and an
ignored directory is pruned: nothing beneath it is visited or can be re-included.

Inside a git work tree the file set is git's own view: files git tracks (``git ls-files``) are
kept even when an ignore rule matches them, and a folder holding tracked files is walked even
when ignored; untracked files follow the rules. ``use_gitignore=False`` (``--no-ignore``) keeps
only the settings' list. ``/proc``, ``/sys`` and ``/dev`` are never walked, and a walk that
finds more than ``max_files`` files stops with ``TooManyFiles`` (the root is the wrong folder).

Reading a file (binary sniff, size cap) is separate from the walk so pool workers read each file
exactly once; ``read_source`` is the one place that decides "binary" and "unreadable".
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

    from lsp_agent.config import IndexSettings

log = logging.getLogger(__name__)

SNIFF_BYTES = 8192
SKIP_REASONS = ("ignored", "binary", "too_large", "symlink_loop", "outside_root", "unreadable")
ALWAYS_SKIPPED_DIRS = frozenset({".git"})
NEVER_WALKED = ("/proc", "/sys", "/dev")  # pseudo filesystems: endless, and not code
_NEVER_WALKED_BELOW = tuple(t + os.sep for t in NEVER_WALKED)


class TooManyFiles(ValueError):
    """The tree holds more files than ``index.max_files``: almost surely the wrong root."""

    def __init__(self, root: Path, limit: int, counted: str) -> None:
        super().__init__(
            f"{root} holds more than {limit:,} files ({counted}; the limit is the setting "
            "index.max_files): that is a disk, not a project. Name your project's folder as "
            "PATH, or pass --root DIR; raise index.max_files if this really is one workspace"
        )
        self.root = root
        self.limit = limit


def git_tracked(root: Path) -> frozenset[str] | None:
    """Paths under ``root`` that git tracks (relative, POSIX), or None outside a work tree.

    ``git ls-files`` from ``root`` lists the index entries under it, relative to it, which is
    exactly the set that must survive ignore rules. Submodules appear as one path (a folder).
    """
    if not _inside_git(root):
        return None
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--cached"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("git ls-files failed in %s (%s): using ignore rules only", root, exc)
        return None
    if proc.returncode != 0:
        log.warning(
            "git ls-files failed in %s: %s", root, proc.stderr.decode(errors="replace").strip()
        )
        return None
    names = proc.stdout.decode("utf-8", errors="surrogateescape").split("\0")
    return frozenset(name for name in names if name)


def _inside_git(root: Path) -> bool:
    return any((folder / ".git").exists() for folder in (root, *root.parents))


class FoundFile(NamedTuple):
    """A file the walk kept (a tuple: the kernel's walk makes 78k, and a frozen dataclass
    took ~1.5 us each to make)."""

    path: str  # POSIX, relative to the root
    size: int
    mtime_ns: int


@dataclass
class Discovery:
    files: list[FoundFile] = field(default_factory=list)  # sorted by path
    skipped: Counter[str] = field(default_factory=Counter)


def _compiled(lines: list[str]) -> GitIgnoreSpec:
    """The compiled rules of ``lines``. pathspec is imported here, when a rule is first
    compiled: its import took ~30 ms of every start, on trees without ignore files too."""
    from pathspec import GitIgnoreSpec

    return GitIgnoreSpec.from_lines(lines)


def _read_patterns(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


class IgnoreRules:
    """Git ignore semantics over a tree: one compiled spec per directory that has a .gitignore.

    ``tracked`` (git's index) wins over every .gitignore rule; the settings' ``extra`` patterns
    apply to tracked files too (they are the user's own choice for this tool).
    """

    def __init__(
        self,
        root: Path,
        extra: tuple[str, ...] = (),
        *,
        use_gitignore: bool = True,
        tracked: frozenset[str] | None = None,
    ) -> None:
        self.root = root
        self.use_gitignore = use_gitignore
        self._extra = _compiled(list(extra)) if extra else None
        self._extra_lines = list(extra)
        exclude = _read_patterns(root / ".git" / "info" / "exclude") if use_gitignore else []
        self._exclude_lines = exclude
        self._exclude = _compiled(exclude) if exclude else None
        self._specs: dict[str, GitIgnoreSpec | None] = {}  # dir ("" = root) -> spec
        self._lines: dict[str, list[str]] = {}
        self.tracked = tracked if use_gitignore else None
        self._tracked_dirs: frozenset[str] = frozenset()
        if self.tracked:
            dirs = set()
            for path in self.tracked:
                parts = path.split("/")
                for depth in range(1, len(parts)):
                    dirs.add("/".join(parts[:depth]))
            self._tracked_dirs = frozenset(dirs)
        self._pattern_cache: dict[str, bool] = {}
        # folder -> the specs with an opinion on its entries, highest precedence first, each
        # with how many characters of a path to cut to get the path as that spec sees it
        self._chains: dict[str, tuple[tuple[GitIgnoreSpec, int], ...]] = {}

    @classmethod
    def for_settings(cls, root: Path, settings: IndexSettings) -> IgnoreRules:
        """The rules an index with these settings uses (git's tracked set when in git)."""
        tracked = git_tracked(root) if settings.use_gitignore else None
        return cls(root, settings.ignore, use_gitignore=settings.use_gitignore, tracked=tracked)

    def load_dir(self, rel_dir: str) -> None:
        """Read ``rel_dir/.gitignore`` (again, if it changed)."""
        self._load(rel_dir)
        self._pattern_cache.clear()
        self._chains.clear()

    def _load(self, rel_dir: str) -> None:
        lines = _read_patterns(self.root / rel_dir / ".gitignore") if self.use_gitignore else []
        self._lines[rel_dir] = lines
        self._specs[rel_dir] = _compiled(lines) if lines else None

    def has_no_ignore_file(self, rel_dir: str) -> None:
        """The walk listed ``rel_dir`` and saw no .gitignore there: its rules are known
        without trying to open one (a failed open per folder was ~60% of Django's walk)."""
        if rel_dir not in self._specs:
            self._lines[rel_dir] = []
            self._specs[rel_dir] = None

    def _spec(self, rel_dir: str) -> GitIgnoreSpec | None:
        # A first read invalidates nothing: no decision under rel_dir was made without it.
        if rel_dir not in self._specs:
            self._load(rel_dir)
        return self._specs[rel_dir]

    def _chain(self, parent: str) -> tuple[tuple[GitIgnoreSpec, int], ...]:
        """The specs that judge entries of folder ``parent`` in ``_sources`` order, without
        the folders that have no rules (most of them): a walk asks this once per folder."""
        chain = self._chains.get(parent)
        if chain is None:
            if parent:
                # The folder's own rules, then its parent's chain (a walk has made that one
                # already: one lookup per folder, not one per ancestor)
                spec = self._spec(parent)
                above = self._chain(parent.rpartition("/")[0])
                chain = ((spec, len(parent) + 1), *above) if spec is not None else above
            else:
                found = (self._extra, self._spec(""), self._exclude)
                chain = tuple((spec, 0) for spec in found if spec is not None)
            self._chains[parent] = chain
        return chain

    def match(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` itself is ignored; ancestors are not checked (the walk prunes them),
        except folders kept only because they hold tracked files: their rules still cover
        their untracked content, as in git."""
        parts = rel.split("/")
        if parts[-1] in ALWAYS_SKIPPED_DIRS:  # ancestors are checked by the caller
            return True
        if self.tracked is not None:
            if (rel in self._tracked_dirs) if is_dir else (rel in self.tracked):
                # Tracked: no .gitignore rule applies, only the user's own index.ignore.
                extra = (
                    self._extra.check_file(rel + ("/" if is_dir else "")) if self._extra else None
                )
                return bool(extra is not None and extra.include)
            for depth in range(len(parts) - 1, 0, -1):
                parent = "/".join(parts[:depth])
                if parent in self._tracked_dirs and self._pattern_match(parent, True):
                    return True
        return self._pattern_match(rel, is_dir)

    def judges_nothing_in(self, rel_dir: str) -> bool:
        """True when no rule can ignore an entry of folder ``rel_dir`` (no pattern applies
        there and git tracks nothing: ``match`` would say False for each entry but .git)."""
        return self.tracked is None and not self._chain(rel_dir)

    def _sources(self, rel: str, is_dir: bool) -> list[tuple[str, str]]:
        """(source, the path as that source sees it), highest precedence first: .gitignore
        files below the root (deepest first), the settings' index.ignore, the root's
        .gitignore, .git/info/exclude. The first source with an opinion decides."""
        parts = rel.split("/")
        suffix = "/" if is_dir else ""
        order = [
            (f"d:{'/'.join(parts[:d])}", "/".join(parts[d:]) + suffix)
            for d in range(len(parts) - 1, 0, -1)
        ]
        order.append(("extra", rel + suffix))
        order.append(("d:", rel + suffix))
        order.append(("exclude", rel + suffix))
        return order

    def _source_spec(self, source: str) -> tuple[GitIgnoreSpec | None, list[str], str]:
        if source == "extra":
            return self._extra, self._extra_lines, "index.ignore"
        if source == "exclude":
            return self._exclude, self._exclude_lines, ".git/info/exclude"
        rel_dir = source[2:]
        spec = self._spec(rel_dir)
        where = f"{rel_dir}/.gitignore" if rel_dir else ".gitignore"
        return spec, self._lines.get(rel_dir, []), where

    def _pattern_match(self, rel: str, is_dir: bool) -> bool:
        key = rel + ("/" if is_dir else "")
        cached = self._pattern_cache.get(key) if is_dir else None
        if cached is not None:
            return cached
        result = False
        for spec, cut in self._chain(rel.rpartition("/")[0]):
            decided = spec.check_file(key[cut:]).include
            if decided is not None:
                result = decided
                break
        if is_dir:
            self._pattern_cache[key] = result
        return result

    def culprit(self, rel: str, is_dir: bool) -> tuple[str, int, str] | None:
        """The rule that ignores ``rel``: (where, 1-based line, pattern); None if none.

        ``where`` is a .gitignore path relative to the root, ``.git/info/exclude`` or
        ``index.ignore`` (the settings; the line is the list position). Only for messages:
        slow, line by line."""
        for source, subject in self._sources(rel, is_dir):
            _spec, lines, where = self._source_spec(source)
            for number in range(len(lines), 0, -1):
                line = lines[number - 1]
                decided = _compiled([line]).check_file(subject).include
                if decided is True:
                    return where, number, line.strip()
                if decided is False:
                    return None  # re-included there
        return None

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
    max_files: int = 0,
) -> Discovery:
    """Walk ``root`` (or the subdirectory ``start``): files kept, and skips counted by reason.

    ``max_files`` > 0: TooManyFiles as soon as more files than that would be kept (checked
    against git's tracked count first, before any walking)."""
    result = Discovery()
    real_root = os.path.realpath(root)
    if max_files and rules.tracked is not None and len(rules.tracked) > max_files:
        raise TooManyFiles(root, max_files, f"git tracks {len(rules.tracked):,}")
    # (folder, its real path when known: a folder that is no symlink, inside a folder whose
    # real path is known, is that path + its name; realpath() costs an lstat per component)
    stack: list[tuple[str, str | None]] = [(start, None)]
    # Directory symlinks are followed only after every real directory has been walked, so a
    # folder reachable both directly and through a link is indexed under its real path, and
    # whatever the names, the result is the same.
    deferred: list[tuple[str, str | None]] = []
    root_dir = os.fspath(root)
    visited: set[str] = set()
    while stack or deferred:
        if not stack:
            stack.extend(reversed(deferred))
            deferred.clear()
        rel_dir, real_dir = stack.pop()
        abs_dir = f"{root_dir}{os.sep}{rel_dir}" if rel_dir else root_dir
        if real_dir is None:
            real_dir = os.path.realpath(abs_dir)
        if real_dir in visited:  # reached again through a symlink: a loop or a second path
            result.skipped["symlink_loop"] += 1
            continue
        visited.add(real_dir)
        if real_dir in NEVER_WALKED or real_dir.startswith(_NEVER_WALKED_BELOW):
            result.skipped["ignored"] += 1
            continue
        try:
            listing = list_folder(abs_dir)
        except OSError as exc:
            log.warning("cannot list %s: %s", abs_dir, exc)
            result.skipped["unreadable"] += 1
            continue
        if ".gitignore" not in map(_first, listing):
            rules.has_no_ignore_file(rel_dir)
        subdirs: list[tuple[str, str | None]] = []
        unjudged = rules.judges_nothing_in(rel_dir)
        prefix = f"{rel_dir}/" if rel_dir else ""
        for name, kind, size, mtime_ns in listing:
            if name in ALWAYS_SKIPPED_DIRS:
                continue
            rel = prefix + name
            if kind == BROKEN:
                # A dangling symlink, a symlink loop (ELOOP), or a file gone since listing.
                loop = _is_loop(f"{abs_dir}{os.sep}{name}")
                result.skipped["symlink_loop" if loop else "unreadable"] += 1
                continue
            is_dir = kind in (DIR, LINK_DIR)
            if not unjudged and rules.match(rel, is_dir):
                result.skipped["ignored"] += 1
                continue
            if kind >= LINK_FILE:
                target = os.path.realpath(f"{abs_dir}{os.sep}{name}")
                if target != real_root and not target.startswith(real_root + os.sep):
                    result.skipped["outside_root"] += 1
                    continue
                if is_dir and (target in visited or real_dir.startswith(target + os.sep)):
                    result.skipped["symlink_loop"] += 1
                    continue
                if is_dir:
                    deferred.append((rel, None))
                    continue
            if is_dir:
                subdirs.append((rel, f"{real_dir}{os.sep}{name}"))
            elif kind in (FILE, LINK_FILE):
                if size > max_file_bytes:
                    result.skipped["too_large"] += 1
                else:
                    result.files.append(_new_found((rel, size, mtime_ns)))
                    if max_files and len(result.files) > max_files:
                        raise TooManyFiles(root, max_files, "counted while walking")
            # sockets, fifos, devices: not source, not counted
        stack.extend(reversed(subdirs))
    result.files.sort(key=itemgetter(0))  # by path
    return result


# FoundFile without its Python-level __new__ (2.6 us a file under a profiler, 78k of them)
_new_found = partial(tuple.__new__, FoundFile)


_first = itemgetter(0)

# What a folder's listing says of each entry (the order of _walk.c's kinds): a file, a folder,
# anything else (socket, fifo, device), the same three reached through a symlink, or an entry
# whose stat failed.
FILE, DIR, OTHER, LINK_FILE, LINK_DIR, LINK_OTHER, BROKEN = range(7)
Listing = list[tuple[str, int, int, int]]  # (name, kind, size, mtime_ns), sorted by name


def _scandir_listing(path: str) -> Listing:
    """``_walk.list_folder`` in Python, for when the extension was not built. Sizes and mtimes
    are those of the file a symlink leads to; a folder that is no link gets no stat call."""
    out: Listing = []
    with os.scandir(path) as it:
        for entry in it:
            try:
                link = entry.is_symlink()
                if not link and entry.is_dir(follow_symlinks=False):
                    out.append((entry.name, DIR, 0, 0))
                    continue
                st = entry.stat()  # follows symlinks
            except OSError:
                out.append((entry.name, BROKEN, 0, 0))
                continue
            mode = st.st_mode
            kind = FILE if stat.S_ISREG(mode) else DIR if stat.S_ISDIR(mode) else OTHER
            out.append((entry.name, kind + (LINK_FILE if link else 0), st.st_size, st.st_mtime_ns))
    out.sort()
    return out


def _folder_lister() -> Callable[[str], Listing]:
    try:
        from lsp_agent.index._walk import list_folder as listed  # type: ignore[import-not-found]
    except ImportError:
        return _scandir_listing
    return listed  # type: ignore[no-any-return]


list_folder = _folder_lister()


def _is_loop(path: str) -> bool:
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def read_source(path: Path | str, max_file_bytes: int) -> bytes | str:
    """The file's bytes, or the skip reason ("binary", "too_large", "unreadable")."""
    limit = max_file_bytes + 1  # one byte past the limit says "too large"
    try:
        with open(path, "rb") as handle:
            # read(n) allocates n bytes first: sized by the file, not by the limit (a 1 MB
            # buffer per file was a mmap and munmap each, 60-190 us of a ~15 us read)
            wanted = min(os.fstat(handle.fileno()).st_size + 1, limit)
            data = handle.read(wanted)
            if wanted == len(data) < limit:  # it grew since the stat (or a pipe has no size)
                data += handle.read(limit - len(data))
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


SPARSE_SHARE = 0.10  # kept files below this share of the tree: "almost nothing"
_SPARSE_COUNT_LIMIT = 100_000  # counting the ignored part stops here (a message, not a census)


def sparse_ignore_warning(root: Path, rules: IgnoreRules, kept: int) -> str | None:
    """A message when ignore rules leave nothing, or almost nothing, of a non-empty tree.

    Looks at the root's own entries: when most of them are ignored (Debian source packages end
    their .gitignore with ``/*``) and the files kept are under ``SPARSE_SHARE`` of the files
    there, it names the file and the pattern that ignore the most, and how to override. None
    when the rules are ordinary (a node_modules/ or build/ next to the sources)."""
    try:
        with os.scandir(root) as it:
            names = sorted((e.name, _entry_is_dir(e)) for e in it if e.name != ".git")
    except OSError:
        return None
    ignored = [(name, is_dir) for name, is_dir in names if rules.match(name, is_dir)]
    if not ignored:
        return None
    visible = [name for name, _ in names if not name.startswith(".")]
    hidden_share = sum(1 for name, _ in ignored if not name.startswith(".")) / max(len(visible), 1)
    if kept > 0 and hidden_share <= 0.5:
        return None
    limit = min(_SPARSE_COUNT_LIMIT, max(kept, 1) * 20)
    dropped = _count_files(root, [name for name, _ in ignored], limit)
    if dropped == 0 or kept > SPARSE_SHARE * (kept + dropped):
        return None
    culprits: Counter[tuple[str, int, str]] = Counter()
    for name, is_dir in ignored:
        found = rules.culprit(name, is_dir)
        if found is not None:
            culprits[found] += 1
    more = "+" if dropped >= limit else ""
    head = (
        f"the ignore rules left {'nothing' if kept == 0 else f'only {kept:,} files'} of "
        f"{root} ({dropped:,}{more} files ignored)"
    )
    if culprits:
        (where, line, pattern), count = culprits.most_common(1)[0]
        at = f"{where}:{line}" if where != "index.ignore" else f"index.ignore entry {line}"
        head += f": {at} has `{pattern}`, which ignores {count} of the {len(names)} entries there"
    return (
        f"{head}. To index them anyway: re-include with negations in the index.ignore setting "
        '(e.g. index.ignore = ["!/*"] in .lsp-agent.toml), or pass --no-ignore'
    )


def _entry_is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _count_files(root: Path, names: list[str], limit: int) -> int:
    """Files under ``root/name`` for each name, at most ``limit`` (a bounded os.walk)."""
    count = 0
    for name in names:
        path = os.path.join(root, name)
        if not os.path.isdir(path):
            count += 1
        else:
            for _dir, dirs, files in os.walk(path):
                dirs[:] = [d for d in dirs if d != ".git"]
                count += len(files)
                if count >= limit:
                    return limit
        if count >= limit:
            return limit
    return count
