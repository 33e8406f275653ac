"""The per-task JSONL transcript: every message, tool call, usage figure and timing.

One file per task at ``<transcript_dir>/<task-id>.jsonl``. Events are buffered in memory and
flushed by the agent loop's ``finally`` (and the orchestrator's), so a crash or a cancellation
still leaves what happened on disk. Every line is scrubbed of secrets before it is written: the
configured API key values and anything shaped like a key or a bearer token.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# The secret shapes and the scrubbing live in lsp_agent/redact.py (shared with the redaction of
# what the model sees); these names stay importable from here.
from lsp_agent.redact import (
    REDACTED,
    SECRET_ENV_VARS,
    SECRET_PATTERNS,
    environment_secrets,
    scrub,
    scrub_long,
)

__all__ = [
    "REDACTED",
    "SECRET_ENV_VARS",
    "SECRET_PATTERNS",
    "Transcript",
    "environment_secrets",
    "read_transcript",
    "scrub",
]

log = logging.getLogger(__name__)

DEDUPE_CHARS = 2048

# Stands in for a long content while the rest of its record is scrubbed; NUL never occurs in a
# scrub pattern, so no pattern can match across it.
_PLACEHOLDER = "\x00lsp-agent-long-content\x00"


class Transcript:
    """Collects events for one task; ``path=None`` keeps them in memory only (tests, dry runs)."""

    def __init__(self, path: Path | None, *, secrets: Iterable[str] = ()) -> None:
        self.path = path
        self._secrets = [s for s in secrets if s]
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._seen: set[str] = set()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def event(self, kind: str, *, _long_content: str | None = None, **data: Any) -> None:
        record = {"t": round(time.monotonic() - self._started, 4), "event": kind, **data}
        line = scrub(json.dumps(record, ensure_ascii=False, default=str), self._secrets)
        if _long_content is not None:
            # The placeholder went through json.dumps too, so it appears escaped in the line.
            # Scrubbed through the per-process redaction cache: every task of a session logs
            # the same snapshot prefix, and a 4 MB scan costs ~100 ms of GIL time.
            escaped = json.dumps(scrub_long(_long_content, self._secrets))[1:-1]
            line = line.replace(json.dumps(_PLACEHOLDER)[1:-1], escaped, 1)
        with self._lock:
            self._pending.append(line)

    def messages(self, agent: str, messages: list[dict[str, Any]], *, start: int) -> None:
        """Log new messages; a long content already logged (the snapshot prefix, sent by every
        agent) is written once and referred to by a short hash afterwards."""
        for offset, message in enumerate(messages):
            record = dict(message)
            content = record.get("content")
            if isinstance(content, str) and len(content) > DEDUPE_CHARS:
                digest = hashlib.sha256(content.encode()).hexdigest()[:12]
                if digest in self._seen:
                    record["content"] = f"<same as content #{digest}, {len(content)} chars>"
                else:
                    self._seen.add(digest)
                    record["content_id"] = digest
                    record["content"] = _PLACEHOLDER
                    self.event(
                        "message",
                        agent=agent,
                        index=start + offset,
                        message=record,
                        _long_content=content,
                    )
                    continue
            self.event("message", agent=agent, index=start + offset, message=record)

    def flush(self) -> None:
        """Append buffered lines to the file. Never raises: a transcript must not fail a task."""
        with self._lock:
            lines, self._pending = self._pending, []
        if self.path is None or not lines:
            return
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
        except OSError as exc:
            log.warning("cannot write transcript %s: %s", self.path, exc)


def read_transcript(path: Path) -> list[dict[str, Any]]:
    """Load a transcript file (tests and the ``tasks`` command use it)."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
