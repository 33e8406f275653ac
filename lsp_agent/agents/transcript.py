"""The per-task JSONL transcript: every message, tool call, usage figure and timing.

One file per task at ``<transcript_dir>/<task-id>.jsonl``. Events are buffered in memory and
flushed by the agent loop's ``finally`` (and the orchestrator's), so a crash or a cancellation
still leaves what happened on disk. Every line is scrubbed of secrets before it is written: the
configured API key values and anything shaped like a key or a bearer token.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REDACTED = "[REDACTED]"
DEDUPE_CHARS = 2048
# Environment variables whose values are API keys; their values are scrubbed literally.
SECRET_ENV_VARS = ("LSP_AGENT_API_KEY", "DEEPSEEK_API_KEY", "MOONSHOT_API_KEY", "OPENAI_API_KEY")
# Shapes of keys and tokens. The part replaced never holds a quote or a backslash, so scrubbing a
# serialised JSON line never breaks its syntax.
_SECRET_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\b((?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE),
    re.compile(r"\b[0-9a-fA-F]{32,}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"),
    # name = value where the value has a digit: catches `password: "hunter22"` but not code
    # such as `token = get_token()`. Quotes may be JSON-escaped (\") in a serialised line.
    re.compile(
        r"((?:api[_-]?key|secret|token|passw(?:or)?d)\w*\\?[\"']?\s*[:=]\s*\\?[\"']?)"
        r"(?=[A-Za-z0-9._~+/\-]*\d)[A-Za-z0-9._~+/\-]{8,}",
        re.IGNORECASE,
    ),
)


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace literal secret values and key-shaped strings with ``[REDACTED]``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
            escaped = json.dumps(secret)[1:-1]
            if escaped != secret:
                text = text.replace(escaped, REDACTED)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


# Stands in for a long content while the rest of its record is scrubbed; NUL never occurs in a
# scrub pattern, so no pattern can match across it.
_PLACEHOLDER = "\x00lsp-agent-long-content\x00"


@functools.lru_cache(maxsize=32)
def _scrub_cached(content: str, secrets: tuple[str, ...]) -> str:
    """Scrub a long content once per process: every task of a session sends the same snapshot
    prefix, and scrubbing 500 KB costs ~50 ms of GIL time that a language server's event loop
    would otherwise wait on."""
    return scrub(content, secrets)


def environment_secrets(env: dict[str, str] | None = None) -> list[str]:
    env = dict(os.environ) if env is None else env
    return [env[name] for name in SECRET_ENV_VARS if env.get(name)]


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
            escaped = json.dumps(_scrub_cached(_long_content, tuple(self._secrets)))[1:-1]
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
