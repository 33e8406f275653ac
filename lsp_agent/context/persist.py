"""Persisting the stable prefix so consecutive CLI runs and a restarted server send the same
bytes (and so keep hitting the provider's prefix cache, which outlives a process).

One JSON file per prefix budget, written atomically. Anything unreadable or inconsistent is
ignored with a warning and the prefix is rebuilt: the file is a cache, never a source of truth.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from lsp_agent.context.prefix import FileRecord, PrefixState, Segment

logger = logging.getLogger(__name__)

# Bump when the rendering or the layout changes: old prefixes are then rebuilt, not reused.
# 2: tests ranked down; 3: cut-off secrets withheld; 4: breadth (folder lines, near copies)
FORMAT_VERSION = 4


def state_path(state_dir: Path, budget: int) -> Path:
    return state_dir / f"prefix-{budget}.json"


def save_state(state_dir: Path, state: PrefixState) -> None:
    data = {
        "version": FORMAT_VERSION,
        "budget": state.budget,
        "hash": state.hash,
        "tokens": state.tokens,
        "text": state.text,
        "segments": [[s.start, s.end, s.tokens, s.path, s.kind] for s in state.segments],
        "files": {
            path: [r.sha256, r.tier, r.rank, r.score, r.reason]
            for path, r in sorted(state.files.items())
        },
    }
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=".prefix-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, ensure_ascii=False, sort_keys=True)
            os.replace(tmp, state_path(state_dir, state.budget))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        logger.warning("cannot persist the snapshot prefix in %s: %s", state_dir, exc)


def load_state(state_dir: Path, budget: int) -> PrefixState | None:
    path = state_path(state_dir, budget)
    try:
        with path.open(encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        logger.warning("ignoring unreadable snapshot prefix %s: %s", path, exc)
        return None
    try:
        if data["version"] != FORMAT_VERSION or data["budget"] != budget:
            return None
        text = data["text"]
        if hashlib.sha256(text.encode()).hexdigest() != data["hash"]:
            raise ValueError("hash mismatch")
        state = PrefixState(
            budget=budget,
            text=text,
            tokens=int(data["tokens"]),
            hash=data["hash"],
            segments=[Segment(int(a), int(b), int(t), p, k) for a, b, t, p, k in data["segments"]],
            files={
                p: FileRecord(sha, tier, int(rank), float(score), reason)
                for p, (sha, tier, rank, score, reason) in data["files"].items()
            },
        )
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("ignoring inconsistent snapshot prefix %s: %s", path, exc)
        return None
    return state
