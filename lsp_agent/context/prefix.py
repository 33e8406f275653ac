"""The stable prefix: project overview, then the repo map with each file at the best tier that
fits, ranked by the task-independent reference graph only (so it can be reused across tasks).

Tiers degrade in rank order, breadth before depth: the top files are listed by path, then as
many as fit in SIGNATURE_SHARE of the map are shown as signatures, then the best-ranked of them
in full with what is left; the long tail is summarised by folder (a line per folder with its
file count) rather than listed, and only omitted when even that does not fit. A file
byte-identical to a better-ranked one, or one that nearly repeats a shown file (copies.py), is
listed by path as its copy (its text is already there). Two exceptions keep one file from
starving the rest: a file whose full text would take more than 1/32 of the map budget (and more
than 4k tokens) stays at signatures, and sensitive files (.env, keys) are listed by path only.
"""

from __future__ import annotations

import hashlib
import posixpath
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import accumulate, compress, filterfalse, repeat
from operator import attrgetter, itemgetter
from typing import NamedTuple

from lsp_agent.context.copies import NearCopies, copies_of
from lsp_agent.context.model import SECTION_PREFIX, ManifestEntry
from lsp_agent.context.overview import overview_files, render_outline
from lsp_agent.context.ranking import order
from lsp_agent.context.render import (
    FOLDER,
    FULL,
    OMITTED,
    OVERVIEW,
    PATH,
    SIGNATURES,
    TIER_ORDER,
    RenderCache,
)
from lsp_agent.context.sensitive import is_sensitive
from lsp_agent.context.testfiles import rules
from lsp_agent.context.tokens import count_tokens
from lsp_agent.index.model import FileEntry

OVERVIEW_HEADING = "# Project overview\n\n"
MAP_HEADING = "# Repository map: files by rank, in full, as signatures, then as paths\n\n"
PATHS_HEADING = "## Other files (path only)\n"
FOLDERS_HEADING = "## Other folders (files not listed above, counted per folder)\n"
OVERVIEW_SHARE = 0.25  # at most this share of the prefix for README, manifests and outline
PATH_SHARE = 0.08  # the best-ranked files are listed by path first, up to this share
SIGNATURE_SHARE = 0.8  # signatures fill up to this share before full text takes over
FOLDER_SHARE = 0.08  # the folder summary of the files left over may take this share
OMITTED_REASON = "rank {}: omitted, even its path did not fit"
FOLDER_REASON = "rank {}: counted under {}; path did not fit"
FOLDER_DEPTHS = (None, 6, 5, 4, 3, 2, 1)  # None: each file's own folder; then coarser
OVERSIZE_DIVISOR = 32  # breadth: one file in full may not take more than 1/32 of the map
OVERSIZE_FLOOR = 4096  # small budgets: no file is "too large" below this many tokens


class Segment(NamedTuple):
    """A piece of the prefix text: ``text[start:end]`` (a tuple: a kernel prefix has 11k, read
    back from disk on every restart, and a frozen dataclass took ~10 us each to make)."""

    start: int
    end: int
    tokens: int
    path: str | None  # None for headings and the outline
    kind: str  # "heading", OVERVIEW, FULL, SIGNATURES, PATH or FOLDER (path: "dir/")


class FileRecord(NamedTuple):
    """One file of the workspace as the prefix saw it (a tuple: a kernel has 78k of them, read
    back from disk on every restart)."""

    sha256: str
    tier: str  # OVERVIEW, FULL, SIGNATURES, PATH, FOLDER or OMITTED
    rank: int  # 1-based; 0 for overview files
    score: float
    reason: str


# FileRecord(*fields) without NamedTuple.__new__'s Python frame: a prefix makes one per file.
def _new_record(sha256: str, tier: str, rank: int, score: float, reason: str) -> FileRecord:
    return tuple.__new__(FileRecord, (sha256, tier, rank, score, reason))


class FileRecords(Mapping[str, FileRecord]):
    """Every file's record, by path, held as columns (one tuple per field, in path order): a
    restarted server reads the kernel's 78k back before its first snapshot, and making a
    FileRecord and a dict slot per file took longer than the rest of that load. Records are
    made when one is asked for; the columns serve the whole-tree passes (``column``)."""

    __slots__ = ("_at", "columns", "paths")

    def __init__(self, paths: tuple[str, ...], columns: tuple[tuple[object, ...], ...]) -> None:
        self.paths = paths  # sorted
        self.columns = columns  # sha256s, tiers, ranks, scores, reasons
        self._at: dict[str, int] | None = None  # made for the first bulk lookup (not_in)

    def _positions(self) -> dict[str, int]:
        at = self._at
        if at is None:
            at = self._at = dict(zip(self.paths, range(len(self.paths)), strict=True))
        return at

    def _find(self, path: object) -> int:
        """The position of ``path``, or -1: a binary search of the sorted paths, so a lookup
        (an edit's, the focus's) never waits for a dict of all of them (~20 ms on 78k)."""
        paths = self.paths
        if not isinstance(path, str):
            return -1
        i = bisect_left(paths, path)
        return i if i < len(paths) and paths[i] == path else -1

    def __getitem__(self, path: str) -> FileRecord:
        i = self._find(path)
        if i < 0:
            raise KeyError(path)
        return _new_record(*(column[i] for column in self.columns))  # type: ignore[arg-type]

    def __contains__(self, path: object) -> bool:
        return self._find(path) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def same_paths(self, paths: Mapping[str, object]) -> bool:
        """Whether ``paths`` has exactly these files, in this order: the usual case on a
        restart, checked without a lookup per file."""
        return len(paths) == len(self.paths) and tuple(paths) == self.paths

    def not_in(self, paths: Iterable[str]) -> list[str]:
        """The ``paths`` that have no record, in their order (one C-level pass)."""
        return list(filterfalse(self._positions().__contains__, paths))

    def column(self, field: str) -> tuple[object, ...]:
        """One field of every record, in path order."""
        return self.columns[FileRecord._fields.index(field)]

    def records(self) -> Iterator[FileRecord]:
        """Every record in path order, made in one pass (``values()`` would look each up)."""
        return map(_new_record, *self.columns)

    def items(self) -> Iterator[tuple[str, FileRecord]]:  # type: ignore[override]
        return zip(self.paths, self.records(), strict=True)

    def values(self) -> Iterator[FileRecord]:  # type: ignore[override]
        return self.records()


@dataclass
class PrefixState:
    budget: int
    text: str
    tokens: int
    hash: str
    segments: list[Segment]
    files: FileRecords  # every file of the workspace when it was built
    # Built once per prefix, not per request: thousands of records per build would cost more
    # than the rest of an update, and keep the garbage collector busy.
    _rows: list[ManifestEntry] | None = field(default=None, init=False, repr=False, compare=False)
    _file_set: frozenset[str] | None = field(default=None, init=False, repr=False, compare=False)
    _full: list[tuple[str, str]] | None = field(default=None, init=False, repr=False, compare=False)

    def block(self, path: str) -> str | None:
        for segment in self.segments:
            if segment.path == path:
                return self.text[segment.start : segment.end]
        return None

    def rank_of(self, path: str) -> int:
        """The stable rank of ``path`` (0 for overview files and files not in the prefix)."""
        record = self.files.get(path)
        return record.rank if record is not None else 0

    def file_set(self) -> frozenset[str]:
        """Every file of the workspace when it was built; shared, computed once."""
        if self._file_set is None:
            self._file_set = frozenset(self.files)
        return self._file_set

    def full_paths(self) -> list[tuple[str, str]]:
        """(path, sha256) of the files shown in full; shared, computed once."""
        if self._full is None:
            files = self.files
            shown = map(FULL.__eq__, files.column("tier"))
            pairs = zip(files.paths, files.column("sha256"), strict=True)
            self._full = list(compress(pairs, shown))
        return self._full

    def manifest_entries(self, dropped: set[str]) -> list[ManifestEntry]:
        """One entry per workspace file, overview first, then by rank; ``dropped`` files were
        cut from the prefix sent with this request. Without drops the entries are the same
        objects for every request on this prefix (read-only by contract); the list is new."""
        if dropped:
            return self._manifest_rows(dropped)
        if self._rows is None:
            self._rows = self._manifest_rows(dropped)
        return list(self._rows)

    def _manifest_rows(self, dropped: set[str]) -> list[ManifestEntry]:
        tokens = {s.path: s.tokens for s in self.segments if s.path is not None}
        out = []
        for path, record in _by_rank(self.files):
            tier = FULL if record.tier == OVERVIEW else record.tier
            reason = record.reason
            if path in dropped:
                tier, reason = OMITTED, f"{reason}; cut from this request to fit the focus"
            count = 0 if path in dropped else tokens.get(path, 0)
            out.append(
                ManifestEntry(path, tier, count, record.rank, record.score, reason, SECTION_PREFIX)
            )
        return out

    def cut(self, max_tokens: int) -> tuple[str, int, list[str]]:
        """The longest run of leading segments within ``max_tokens``: still a byte prefix of the
        stable prefix, so a provider cache hits on it. Returns text, tokens, dropped paths."""
        used = 0
        keep = 0
        for segment in self.segments:
            if used + segment.tokens > max_tokens:
                break
            used += segment.tokens
            keep += 1
        dropped = [s.path for s in self.segments[keep:] if s.path is not None and s.kind != FOLDER]
        cut_folders = {s.path for s in self.segments[keep:] if s.kind == FOLDER}
        if cut_folders:
            keys = {s.path for s in self.segments if s.kind == FOLDER and s.path is not None}
            dropped += [
                path
                for path, record in self.files.items()
                if record.tier == FOLDER and _folder_of(path, keys) in cut_folders
            ]
        end = self.segments[keep - 1].end if keep else 0
        return self.text[:end], used, dropped


def _by_rank(files: FileRecords) -> list[tuple[str, FileRecord]]:
    """Files by (rank, path) without a sort: ranks 1..n are unique, 0 (the overview) comes
    first in path order (``files`` is sorted by path). Falls back to sorting otherwise."""
    overview = [(p, r) for p, r in files.items() if r.rank == 0]
    slots: list[tuple[str, FileRecord] | None] = [None] * (len(files) - len(overview))
    for path, record in files.items():
        i = record.rank - 1
        if record.rank == 0:
            continue
        if not 0 <= i < len(slots) or slots[i] is not None:
            return sorted(files.items(), key=lambda item: (item[1].rank, item[0]))
        slots[i] = (path, record)
    return overview + slots  # type: ignore[operator]  # every slot was filled


def build_prefix(
    entries: Mapping[str, FileEntry],
    text_of: Callable[[str], str],
    cache: RenderCache,
    scores: Mapping[str, float],
    budget: int,
    whys: Mapping[str, str] | None = None,
) -> PrefixState:
    """``whys``: the reason each file was ranked down, by path (testfiles.rank_down_tests
    gives them with the scores); without them the rule runs again here."""
    pieces: list[tuple[str, int, str | None, str]] = []  # text, tokens, path, kind
    files: dict[str, FileRecord] = {}
    used = 0

    def add(text: str, tokens: int, path: str | None, kind: str) -> None:
        nonlocal used
        pieces.append((text, tokens, path, kind))
        used += tokens

    def loader(path: str) -> Callable[[], str]:
        return lambda: text_of(path)

    # Overview: README head, manifests, outline; each only if it fits in the overview share.
    overview_cap = int(budget * OVERVIEW_SHARE)
    heading_tokens = count_tokens(OVERVIEW_HEADING)
    if heading_tokens <= overview_cap:
        add(OVERVIEW_HEADING, heading_tokens, None, "heading")
    in_overview = set()
    for path in overview_files(entries):
        entry = entries[path]
        rendered = cache.render(entry, OVERVIEW, loader(path)) or ""
        tokens = cache.tokens(entry, OVERVIEW, loader(path)) or 0
        if pieces and used + tokens <= overview_cap:
            add(rendered, tokens, path, OVERVIEW)
            in_overview.add(path)
            files[path] = FileRecord(entry.sha256, OVERVIEW, 0, 0.0, "project overview")
    outline = render_outline(entries)
    outline_tokens = count_tokens(outline)
    if outline and pieces and used + outline_tokens <= overview_cap:
        add(outline, outline_tokens, None, "heading")

    if len(pieces) == 1:  # a heading over nothing
        pieces.clear()
        used = 0

    map_heading_tokens = count_tokens(MAP_HEADING)
    paths_heading_tokens = count_tokens(PATHS_HEADING)
    available = max(budget - used - map_heading_tokens - paths_heading_tokens, 0)
    ranked = order(scores, [p for p in entries if p not in in_overview])
    ranked_entries = list(map(entries.__getitem__, ranked))  # one lookup per file, kept
    copies = copies_of(ranked, ranked_entries)
    near = NearCopies(entries, text_of)
    depth, reserve = None, 0
    folder_counts: Counter[str] = Counter()  # files per folder, when a summary is reserved
    # A tree far larger than the budget will not fit even by path: reserve the folder summary
    # at once rather than after a first pass that finds files left over (bytes / 6 is a
    # generous tokens guess: source averages 3-4 bytes per token).
    hopeless = sum(map(attrgetter("size"), ranked_entries)) // 6 > 4 * available
    choice = None
    if not hopeless:
        choice = _choose_tiers(ranked, entries, loader, cache, available, copies, near)
    if choice is None or OMITTED in choice[0]:
        # Not everything fits: keep room for a folder summary of what is left over, sized on
        # every file (an upper bound: the shown files' folders need no line of their own).
        folder_counts = _folder_counts(ranked)
        depth, reserve = _folder_reserve(folder_counts, int(available * FOLDER_SHARE))
        if reserve or choice is None:
            near = NearCopies(entries, text_of)
            room = available - reserve
            choice = _choose_tiers(ranked, entries, loader, cache, room, copies, near)
    tiers, reasons = choice
    # The files listed are the first ranked ones, up to the first omitted (6k of the kernel's
    # 78k): the passes below go over them only.
    first_left = tiers.index(OMITTED) if OMITTED in tiers else len(tiers)
    assert tiers.count(OMITTED) == len(tiers) - first_left  # _choose_tiers: "from m on"
    listed = ranked[:first_left]

    if listed and available > 0:
        add(MAP_HEADING, map_heading_tokens, None, "heading")
    for tier_group in (FULL, SIGNATURES):
        for i, path in enumerate(listed):
            if tiers[i] == tier_group:
                entry = entries[path]
                add(
                    cache.render(entry, tier_group, loader(path)) or "",
                    cache.tokens(entry, tier_group, loader(path)) or 0,
                    path,
                    tier_group,
                )
    if PATH in tiers:
        add(PATHS_HEADING, paths_heading_tokens, None, "heading")
        for i, path in enumerate(listed):
            if tiers[i] != PATH:
                continue
            if path in copies:
                line = f"{path} (copy of {copies[path]})\n"
                add(line, count_tokens(line), path, PATH)
            elif path in near.found:
                original, differ = near.found[path]
                line = f"{path} (near copy of {original}: {_differ(differ)})\n"
                add(line, count_tokens(line), path, PATH)
            else:
                entry = entries[path]
                add(
                    cache.render(entry, PATH, loader(path)) or "",
                    cache.tokens(entry, PATH, loader(path)) or 0,
                    path,
                    PATH,
                )
    # The files left over (72k of the kernel's 78k): one slice, its reasons made by C-level maps.
    left_over = ranked[first_left:]
    fitted = None
    if left_over and reserve:
        fitted = _fit_folders(folder_counts - _folder_counts(listed), depth, budget - used)
        if fitted:
            lines, key_of = fitted
            add(FOLDERS_HEADING, count_tokens(FOLDERS_HEADING), None, "heading")
            for key, line, tokens in lines:
                add(line, tokens, key, FOLDER)
            # every file left over is in one of the lines
            tiers[first_left:] = repeat(FOLDER, len(left_over))
            keys = map(key_of.__getitem__, map(itemgetter(0), _folders_of(left_over)))
            reasons[first_left:] = map(
                FOLDER_REASON.format, range(first_left + 1, len(ranked) + 1), keys
            )
    if not fitted:
        reasons[first_left:] = map(OMITTED_REASON.format, range(first_left + 1, len(ranked) + 1))
    if whys is None:
        why_of = list(
            map(itemgetter(1), rules(ranked, map(attrgetter("generated"), ranked_entries)))
        )
    else:
        why_of = list(map(whys.get, ranked, repeat("")))
    # The records as columns, ranked files then overview files, put in path order by one
    # gather per column: no record object is made for the 78k files of a kernel.
    overview = list(files)
    rows = [*ranked, *overview]
    columns = (
        [*map(attrgetter("sha256"), ranked_entries), *(files[p].sha256 for p in overview)],
        [*tiers, *(files[p].tier for p in overview)],
        [*range(1, len(ranked) + 1), *(files[p].rank for p in overview)],
        [*map(scores.get, ranked, repeat(0.0)), *(files[p].score for p in overview)],
        [
            *(
                f"{reason}; {why}" if why else reason
                for reason, why in zip(reasons, why_of, strict=True)
            ),
            *(files[p].reason for p in overview),
        ],
    )
    # ``rows`` holds every path of ``entries`` once; the builder keeps ``entries`` sorted
    # (then this sort is one pass)
    paths = tuple(sorted(entries))
    at = list(map(dict(zip(rows, range(len(rows)), strict=True)).__getitem__, paths))
    records = FileRecords(paths, tuple(tuple(map(column.__getitem__, at)) for column in columns))

    texts, counts, owners, kinds = zip(*pieces, strict=True) if pieces else ((), (), (), ())
    ends = list(accumulate(map(len, texts)))
    # tuple.__new__ by map: a NamedTuple's own __new__ is a Python call each (11k on the kernel)
    segments = list(
        map(
            tuple.__new__,
            repeat(Segment),
            zip([0, *ends[:-1]], ends, counts, owners, kinds, strict=True),
        )
    )
    text = "".join(texts)
    return PrefixState(
        budget=budget,
        text=text,
        tokens=used,
        hash=hashlib.sha256(text.encode()).hexdigest(),
        segments=segments,
        files=records,
    )


def _differ(n: int) -> str:
    return "1 line differs" if n == 1 else f"{n} lines differ"


def _choose_tiers(
    ranked: list[str],
    entries: Mapping[str, FileEntry],
    loader: Callable[[str], Callable[[], str]],
    cache: RenderCache,
    available: int,
    copies: Mapping[str, str],
    near: NearCopies,
) -> tuple[list[str], list[str]]:
    n = len(ranked)
    tiers = [OMITTED] * n
    reasons = [""] * n  # the omitted files' reasons are build_prefix's (OMITTED_REASON)
    # The best tier each file may have, decided when the choice reaches it (a few thousand
    # files of the kernel's 78k are ever listed).
    best = _Best(ranked, copies)

    def cost(i: int, tier: str, limit: int | None = None) -> int:
        entry = entries[ranked[i]]
        return cache.tokens(entry, tier, loader(ranked[i]), limit=limit) or 0

    total = 0
    m = 0  # files [0, m) are listed at least by path
    path_cap = int(available * PATH_SHARE)
    while m < n and total + (path_cost := cost(m, PATH)) <= path_cap:
        total += path_cost
        m += 1

    def upgrade_to_signatures(i: int, limit: int) -> bool:
        nonlocal total
        if TIER_ORDER[best[i]] > TIER_ORDER[SIGNATURES]:
            return True  # stays at path; does not block the files below it
        if near.check(ranked[i]) is not None:
            best[i] = PATH  # its text is (nearly) there under another path
            return True
        delta = cost(i, SIGNATURES) - cost(i, PATH)
        if total + delta > limit:
            return False
        total += delta
        near.shown(ranked[i])
        return True

    k = 0  # files [0, k) are at signatures or better
    while True:
        if k >= m:  # signatures may list files beyond the path share
            if m >= n or total + cost(m, PATH) > available:
                break
            total += cost(m, PATH)
            m += 1
        if not upgrade_to_signatures(k, int(available * SIGNATURE_SHARE)):
            break
        k += 1
    f = 0  # files [0, f) are at their best tier
    oversize = max(available // OVERSIZE_DIVISOR, OVERSIZE_FLOOR)
    while True:
        while f < k:
            if best[f] == FULL:
                full = cost(f, FULL, oversize)  # exact unless over ``oversize``
                if full > oversize:
                    best[f] = SIGNATURES
                elif total + full - cost(f, SIGNATURES) > available:
                    break
                else:
                    total += full - cost(f, SIGNATURES)
            f += 1
        if f < k or k >= m or not upgrade_to_signatures(k, available):
            break
        k += 1
    while m < n and total + (path_cost := cost(m, PATH)) <= available:  # room left: more paths
        total += path_cost
        m += 1

    for i in range(m):  # files from m on stay omitted
        rank = i + 1
        if i < f:
            tiers[i] = best[i]
        elif i < k:
            tiers[i] = SIGNATURES if best[i] != PATH else PATH
        elif i < m:
            tiers[i] = PATH
        if tiers[i] == FULL:
            reasons[i] = f"rank {rank}: full text fits"
        elif tiers[i] == SIGNATURES:
            reasons[i] = (
                f"rank {rank}: signatures; full text is too large for the prefix"
                if best[i] == SIGNATURES
                else f"rank {rank}: signatures; full text did not fit"
            )
        elif tiers[i] == PATH:
            if ranked[i] in copies:
                reasons[i] = f"rank {rank}: path only; same content as {copies[ranked[i]]}"
            elif ranked[i] in near.found:
                original, differ = near.found[ranked[i]]
                reasons[i] = f"rank {rank}: path only; nearly {original} ({_differ(differ)})"
            elif is_sensitive(ranked[i]):
                reasons[i] = f"rank {rank}: path only; content withheld (looks sensitive)"
            else:
                reasons[i] = f"rank {rank}: path only; signatures did not fit"
    return tiers, reasons


class _Best(dict[int, str]):
    """Rank index -> the best tier that file may have: path only for a copy of a better-ranked
    file or a sensitive one, else full text; made on first use, then narrowed by the choice."""

    def __init__(self, ranked: list[str], copies: Mapping[str, str]) -> None:
        super().__init__()
        self._ranked, self._copies = ranked, copies

    def __missing__(self, i: int) -> str:
        path = self._ranked[i]
        tier = self[i] = PATH if path in self._copies or is_sensitive(path) else FULL
        return tier


def folder_key(path: str, depth: int | None) -> str:
    """The folder line that counts ``path``: its folder, cut to ``depth`` parts ("./" for
    files at the root)."""
    folder = posixpath.dirname(path)
    if not folder:
        return "./"
    return ("/".join(folder.split("/")[:depth]) if depth else folder) + "/"


def _folder_of(path: str, keys: set[str]) -> str | None:
    """The longest folder key that counts ``path`` (the keys of one summary do not overlap
    except a shallow folder's own files beside its deeper subfolders)."""
    folder = posixpath.dirname(path)
    if not folder:
        return "./" if "./" in keys else None
    parts = folder.split("/")
    for depth in range(len(parts), 0, -1):
        key = "/".join(parts[:depth]) + "/"
        if key in keys:
            return key
    return None


def _folders_of(paths: Iterable[str]) -> Iterator[tuple[str, str, str]]:
    """Each path's (folder, "/", name), by a C-level map ("" for a file at the root)."""
    return map(str.rpartition, paths, repeat("/"))


def _folder_counts(paths: Iterable[str]) -> Counter[str]:
    """Files per folder (each file's own folder): 78k files, 5k folders on the kernel."""
    return Counter(map(itemgetter(0), _folders_of(paths)))


def _folder_lines(
    counts: Mapping[str, int], depth: int | None
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """The summary's lines at ``depth`` as (key, line), by key, and each folder's key."""
    key_of = {folder: folder_key(f"{folder}/x" if folder else "x", depth) for folder in counts}
    groups: Counter[str] = Counter()
    for folder, n in counts.items():
        groups[key_of[folder]] += n
    lines = [
        (key, f"{key} ({n} file{'s' if n != 1 else ''})\n") for key, n in sorted(groups.items())
    ]
    return lines, key_of


def _folder_reserve(counts: Mapping[str, int], cap: int) -> tuple[int | None, int]:
    """(depth, tokens) of the finest folder summary of all files (``counts``: files per folder)
    that fits ``cap``; (None, 0) when none does."""
    for depth in FOLDER_DEPTHS:
        lines, _ = _folder_lines(counts, depth)
        tokens = count_tokens(FOLDERS_HEADING + "".join(line for _, line in lines))
        if tokens <= cap:
            return depth, tokens
    return None, 0


def _fit_folders(
    counts: Mapping[str, int], depth: int | None, room: int
) -> tuple[list[tuple[str, str, int]], dict[str, str]] | None:
    """The folder lines of the files ``counts`` counts per folder, at ``depth`` or coarser, as
    (key, line, tokens), that fit ``room`` with their heading, and each file's folder -> its
    line's key; None when none does."""
    heading = count_tokens(FOLDERS_HEADING)
    depths = FOLDER_DEPTHS[FOLDER_DEPTHS.index(depth) :]
    for candidate in depths:
        lines, key_of = _folder_lines(counts, candidate)
        counted = [(key, line, count_tokens(line)) for key, line in lines]
        if heading + sum(t for *_, t in counted) <= room:
            return counted, key_of
    return None
