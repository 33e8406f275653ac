"""The snapshot's records: what a request sends (prefix, tail) and the manifest explaining it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SECTION_PREFIX = "prefix"
SECTION_TAIL = "tail"


@dataclass(frozen=True)
class Selection:
    """A range in one file; 0-based lines, characters as Python string offsets in the line."""

    path: str
    start_line: int
    start_char: int
    end_line: int
    end_char: int


@dataclass(slots=True)  # one per workspace file: 78k on the kernel
class ManifestEntry:
    path: str
    tier: str  # "full" | "signatures" | "path" | "folder" | "omitted"
    tokens: int
    rank: int  # 1-based position in the stable (prefix) ranking; 0 when unranked
    score: float  # PageRank score behind the rank (personalized for the tail's neighbourhood)
    reason: str  # why it is there, in words
    section: str  # "prefix" | "tail"


@dataclass
class Manifest:
    # One entry per workspace file, or what makes them on first use: a process that read its
    # prefix from disk would spend ~0.35 s on the kernel's 78k rows before its first request,
    # and the request does not need them. The prefix's entries are shared by every snapshot
    # built on the same prefix: read-only.
    entries: list[ManifestEntry] | Callable[[], list[ManifestEntry]]
    budget: int
    prefix_tokens: int
    tail_tokens: int
    prefix_hash: str
    rebuilt: bool  # the stable prefix was (re)built for this snapshot
    stale_tokens: int  # size of the changes carried in the tail since the prefix was built
    notes: list[str] = field(default_factory=list)  # e.g. a focus file truncated to fit

    @property
    def files(self) -> list[ManifestEntry]:
        entries = self.entries
        if callable(entries):
            entries = self.entries = entries()
        return entries

    def to_json(self) -> dict[str, Any]:
        # Field by field rather than dataclasses.asdict, whose deep copy took ~1 s on 78k rows.
        data: dict[str, Any] = {
            "files": [
                {
                    "path": e.path,
                    "tier": e.tier,
                    "tokens": e.tokens,
                    "rank": e.rank,
                    "score": float(f"{e.score:.6g}"),  # enough to compare; stable in goldens
                    "reason": e.reason,
                    "section": e.section,
                }
                for e in self.files
            ],
            "budget": self.budget,
            "prefix_tokens": self.prefix_tokens,
            "tail_tokens": self.tail_tokens,
            "prefix_hash": self.prefix_hash,
            "rebuilt": self.rebuilt,
            "stale_tokens": self.stale_tokens,
            "notes": list(self.notes),
        }
        data["total_tokens"] = self.prefix_tokens + self.tail_tokens
        return data

    def summary(self) -> dict[str, Any]:
        """What a task's result journals of its snapshot: the totals, the prefix's files
        counted per tier and the tail's entries (the whole file list of a large workspace is
        tens of thousands of rows; ``to_json`` has it while the session lasts)."""
        tiers: dict[str, dict[str, int]] = {}
        tail = []
        for entry in self.files:
            if entry.section == SECTION_TAIL:
                tail.append({"path": entry.path, "tier": entry.tier, "tokens": entry.tokens,
                             "reason": entry.reason})  # fmt: skip
                continue
            row = tiers.setdefault(entry.tier, {"files": 0, "tokens": 0})
            row["files"] += 1
            row["tokens"] += entry.tokens
        return {
            "budget": self.budget,
            "prefix_tokens": self.prefix_tokens,
            "tail_tokens": self.tail_tokens,
            "total_tokens": self.prefix_tokens + self.tail_tokens,
            "prefix_hash": self.prefix_hash,
            "rebuilt": self.rebuilt,
            "stale_tokens": self.stale_tokens,
            "notes": list(self.notes),
            "tiers": dict(sorted(tiers.items())),
            "tail": tail,
        }


@dataclass
class Snapshot:
    prefix: str  # stable: sent as its own leading message, byte-identical until rebuilt
    tail: str  # volatile: changes since the prefix, focus neighbourhood, focus files, ...
    prefix_hash: str
    manifest: Manifest
    # path -> sha256 of the text shown in full (the prefix's full tier, unchanged, or a focus
    # block): the one copy of that file a request carries; others refer to it.
    shown_in_full: dict[str, str] = field(default_factory=dict)
