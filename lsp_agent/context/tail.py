"""The volatile tail's blocks: changes since the prefix, the focus neighbourhood, focus files,
diagnostics and the selection. Each block is counted on its own (counts are additive, see
render.py); snapshot.py decides which blocks fit and in what order they appear."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lsp_agent.context.cutsafe import guard_line
from lsp_agent.context.diffs import compact_diff
from lsp_agent.context.model import SECTION_TAIL, ManifestEntry, Selection
from lsp_agent.context.prefix import PrefixState
from lsp_agent.context.render import FULL, SIGNATURES, block, header, truncate_full
from lsp_agent.context.sensitive import is_sensitive
from lsp_agent.context.tokens import count_tokens

CHANGES_HEADING = "# Changes since the snapshot above (diffs of the blocks shown there)\n\n"
RELATED_HEADING = "# Related to the focus\n\n"
FOCUS_HEADING = "# Focus files\n\n"
DIAGNOSTICS_HEADING = "# Diagnostics\n"
SELECTION_HEADING = "# Selection\n\n"


@dataclass
class Block:
    text: str
    tokens: int
    entry: ManifestEntry | None = None

    @classmethod
    def of(cls, text: str, entry: ManifestEntry | None = None) -> Block:
        tokens = count_tokens(text)
        if entry is not None:
            entry.tokens = tokens
        return cls(text, tokens, entry)


NEW = "new"  # the prefix_tier of a Change for a file added since the prefix was built
NEW_FULL_TOKENS = 4_000  # a larger new file is shown as signatures


@dataclass(frozen=True)
class Change:
    """A file whose content differs from what the prefix shows (``prefix_tier`` NEW: a file
    the prefix does not list, shown whole — or as signatures — instead of as a diff)."""

    path: str
    prefix_tier: str
    diff: str  # block text; "" when the rendering in the prefix is unaffected (e.g. path tier)
    tokens: int


def new_file_block(path: str, rendered: str, tier: str) -> tuple[str, int]:
    """A file added since the prefix was built, as its ``tier`` rendering (a header and the
    text, or the signatures) under a header that says it is new."""
    note = "new since the snapshot" + ("" if tier == FULL else ", signatures")
    first, sep, rest = rendered.partition("\n")
    text = header(path, note) + rest if sep and first.startswith("=== ") else rendered
    return text, count_tokens(text)


def diff_block(path: str, old_block: str, new_block: str) -> tuple[str, int]:
    hunks = compact_diff(old_block, new_block)
    if not hunks:
        return "", 0
    text = block(header(path, "changed"), hunks)
    return text, count_tokens(text)


def tail_entry(
    path: str, tier: str, reason: str, rank: int = 0, score: float = 0.0
) -> ManifestEntry:
    return ManifestEntry(path, tier, 0, rank, score, reason, SECTION_TAIL)


def focus_block(
    path: str, text: str, full_block: str, tokens: int, limit: int, rank: int
) -> Block | None:
    """The focus file in full, or truncated with a marker when it alone passes ``limit``."""
    if is_sensitive(path):
        text = block(header(path), "[content withheld: the file looks like it holds secrets]\n")
        return Block.of(text, tail_entry(path, FULL, "focus file; content withheld", rank))
    if tokens <= limit:
        entry = tail_entry(path, FULL, "focus file", rank)
        entry.tokens = tokens
        return Block(full_block, tokens, entry)
    cut, cut_tokens = truncate_full(path, text, limit)
    if not cut:
        return None
    reason = f"focus file, truncated to fit the budget ({tokens} tokens in full)"
    entry = tail_entry(path, FULL, reason, rank)
    entry.tokens = cut_tokens
    return Block(cut, cut_tokens, entry)


def focus_reference(path: str, rank: int) -> Block:
    """A focus file the prefix already shows in full and unchanged: named, not copied."""
    text = f"=== {path} (focus file: shown in full in the repository map above; unchanged) ===\n\n"
    return Block.of(text, tail_entry(path, FULL, "focus file; in full in the prefix", rank))


def diagnostics_block(diagnostics: list[str]) -> Block | None:
    lines = [" ".join(d.split()) for d in diagnostics if d.strip()]
    if not lines:
        return None
    return Block.of(DIAGNOSTICS_HEADING + "\n".join(f"- {line}" for line in lines) + "\n\n")


def selection_block(selection: Selection, text: str, rank: int) -> Block:
    lines = text.splitlines()
    first = max(0, min(selection.start_line, len(lines)))
    last = max(first, min(selection.end_line, len(lines) - 1))
    if selection.end_line > selection.start_line and selection.end_char == 0:
        last = max(first, last - 1)  # a range ending at column 0 does not include that line
    note = f"selection, lines {first + 1}-{last + 1}"
    shown = lines[first : last + 1]
    # The selection's leading lines lack the lines above them: a secret named there is withheld.
    for offset, line in enumerate(shown):
        shown[offset] = guard_line(line, lines, first + offset)
        if line.strip():
            break
    body = "\n".join(shown) + "\n" if lines else ""
    if is_sensitive(selection.path):
        body = "[content withheld: the file looks like it holds secrets]\n"
    text_block = SELECTION_HEADING + block(header(selection.path, note), body)
    return Block.of(text_block, tail_entry(selection.path, FULL, note, rank))


def related_list(items: list[tuple[str, str]]) -> str:
    """One line naming the most related files and where each can be found."""
    parts = [f"{path} ({where})" for path, where in items]
    return "Most related to the focus: " + ", ".join(parts) + "\n\n"


def related_where(prefix_tier: str | None, changed: bool) -> str:
    if prefix_tier == FULL and not changed:
        return "in full above"
    if prefix_tier == SIGNATURES and not changed:
        return "signatures above"
    return "signatures below"


def change_blocks(
    changes: list[Change], focus: set[str], sent: set[str], left: int, notes: list[str]
) -> tuple[list[Block], int]:
    """Diffs of changed files that fit in ``left`` tokens (focus files are in full anyway; a
    file cut from this request's prefix has no block to diff against); the others are named."""
    shown: list[Block] = []
    unshown: list[str] = []
    heading = Block.of(CHANGES_HEADING)
    for change in changes:
        if change.path in focus:
            continue
        cost = change.tokens + (0 if shown else heading.tokens)
        added = change.prefix_tier == NEW
        if change.diff and (added or change.path in sent) and cost <= left:
            reason = (
                "added since the prefix was built"
                if added
                else "changed since the prefix was built: diff"
            )
            entry = tail_entry(change.path, change.prefix_tier, reason)
            entry.tokens = change.tokens
            shown.append(Block(change.diff, change.tokens, entry))
            left -= cost
        else:
            unshown.append(change.path)
    if unshown:
        line = Block.of(
            "Also changed since the snapshot (not shown): " + ", ".join(unshown) + "\n\n"
        )
        if line.tokens + (0 if shown else heading.tokens) <= left:
            left -= line.tokens + (0 if shown else heading.tokens)
            shown.append(line)
        else:
            notes.append(f"{len(unshown)} changed files not mentioned: no room")
    if shown:
        shown.insert(0, heading)
    return shown, left


def related_blocks(
    top: list[str],
    scores: Mapping[str, float],
    state: PrefixState,
    changed: set[str],
    sent: set[str],
    left: int,
    signatures: Callable[[str], tuple[str, int]],
) -> tuple[list[Block], int]:
    """The focus neighbourhood: one line naming the ``top`` files and where each is shown, then
    the signatures of those the prefix does not show (or shows out of date)."""
    if not top:
        return [], left
    where = {
        p: related_where(state.files[p].tier if p in sent else None, p in changed) for p in top
    }
    heading = Block.of(RELATED_HEADING)
    listing = Block.of(related_list([(p, where[p]) for p in top]))
    if heading.tokens + listing.tokens > left:
        return [], left
    blocks = [heading, listing]
    left -= heading.tokens + listing.tokens
    for rank, path in enumerate(top, start=1):
        if where[path] != "signatures below":
            continue
        text, tokens = signatures(path)
        if tokens > left:
            continue
        reason = f"related to the focus (#{rank} by personalized rank)"
        entry = tail_entry(path, SIGNATURES, reason, state.files[path].rank, scores[path])
        entry.tokens = tokens
        blocks.append(Block(text, tokens, entry))
        left -= tokens
    return blocks, left
