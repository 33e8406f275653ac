"""Secrets: the one list of secret shapes, reversible redaction for the model, scrubbing for logs.

Two uses of the same shapes:
- ``Redactor`` (everything sent to a model): each secret-shaped match becomes a placeholder
  ``«redacted:<16 hex>»`` derived from a keyed hash of the secret, so the same text redacts to
  the same bytes in every request and task (the snapshot prefix stays byte-identical and provider
  prefix caches still hit). The redactor remembers placeholder -> original in memory only, and
  ``restore`` puts the originals back into what the model answers, so an edit that quotes a
  placeholder applies to, and keeps, the real secret.
- ``scrub`` (logs, transcripts): the same shapes become ``[REDACTED]``, irreversibly.

The hash is keyed by a random per-user salt kept in the cache directory: without it a
placeholder would let whoever reads the prompts test guesses of a weak password offline.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import secrets as _random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

REDACTED = "[REDACTED]"
# Environment variables whose values are API keys; their values are redacted literally.
SECRET_ENV_VARS = ("LSP_AGENT_API_KEY", "DEEPSEEK_API_KEY", "MOONSHOT_API_KEY", "OPENAI_API_KEY")
# Shapes of keys and tokens. The part replaced never holds a quote, a backslash or a guillemet,
# so scrubbing a serialised JSON line never breaks its syntax and no match ever contains a
# placeholder (redaction is idempotent). A pattern with a group keeps group 1 (the name or the
# scheme) and replaces the rest. Word boundaries and the name before `=` are checked on each
# match rather than in the pattern: a pattern that starts with a literal is searched ~25x
# faster by `re` (a 4 MB prefix: ~90 ms instead of ~440 ms).
_NAME = re.compile(r"(?:api[_-]?key|secret|token|passw(?:or)?d)\w*\\?[\"']?\s*\Z", re.IGNORECASE)
NAME_WINDOW = 96  # characters before `=`/`:` searched for the name


@dataclass(frozen=True)
class Shape:
    pattern: re.Pattern[str]
    word_start: bool = True  # the match must not continue a word on the left
    word_end: bool = False  # ... nor on the right
    named: bool = False  # `name = value`: a secret-like name must precede group 1


SECRET_SHAPES = (
    Shape(re.compile(r"sk-[A-Za-z0-9_\-]{8,}")),
    Shape(re.compile(r"((?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)),
    Shape(re.compile(r"[0-9a-fA-F]{32,}"), word_end=True),
    Shape(re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}")),
    Shape(re.compile(r"(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    Shape(re.compile(r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}")),
    # name = value where the value has a digit: catches `password: "hunter22"` but not code
    # such as `token = get_token()`. Quotes may be JSON-escaped (\") in a serialised line.
    Shape(
        re.compile(r"([:=]\s*\\?[\"']?)(?=[A-Za-z0-9._~+/\-]*\d)[A-Za-z0-9._~+/\-]{8,}"),
        word_start=False,
        named=True,
    ),
)
SECRET_PATTERNS = tuple(shape.pattern for shape in SECRET_SHAPES)
PLACEHOLDER = re.compile(r"«redacted:[0-9a-f]{16}»")
_PLACEHOLDER_START = "«redacted:"
_PLACEHOLDER_SPLIT = re.compile(f"({PLACEHOLDER.pattern})")  # odd parts are placeholders
MIN_LITERAL = 4  # shorter configured "secrets" would redact ordinary words
CACHE_MIN_CHARS = 4096  # shorter texts are redacted on every call (well under a millisecond)
CACHE_ENTRIES = 64
CACHE_CHARS = 64_000_000  # of cached source texts; the snapshot prefix alone can be ~4 MB

Pairs = tuple[tuple[str, str], ...]  # (placeholder, original)


def environment_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    return [env[name] for name in SECRET_ENV_VARS if env.get(name)]


def literal_secrets(values: Iterable[str]) -> tuple[str, ...]:
    """Configured secret values, normalised: long enough, unique, longest first (a key that
    holds another one must be replaced whole)."""
    kept = {v for v in values if v and len(v) >= MIN_LITERAL and "«" not in v}
    return tuple(sorted(kept, key=lambda v: (-len(v), v)))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Replace literal secret values and key-shaped strings with ``[REDACTED]`` (for logs).

    A literal is also replaced in its JSON-escaped form, since log lines are serialised JSON."""
    for secret in literal_secrets(secrets):
        text = text.replace(secret, REDACTED)
        escaped = json.dumps(secret)[1:-1]
        if escaped != secret:
            text = text.replace(escaped, REDACTED)
    return substitute(text, lambda _: REDACTED)


def substitute(text: str, replace: Callable[[str], str]) -> str:
    """Every secret-shaped match replaced by ``replace(secret)`` (a kept group 1 stays)."""
    for shape in SECRET_SHAPES:

        def one(m: re.Match[str], shape: Shape = shape) -> str:
            if not _fits(shape, m):
                return m.group(0)
            kept = m.group(1) if m.re.groups else ""
            return kept + replace(m.group(0)[len(kept) :])

        text = shape.pattern.sub(one, text)
    return text


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _fits(shape: Shape, m: re.Match[str]) -> bool:
    text, start, end = m.string, m.start(), m.end()
    if shape.word_start and start > 0 and _is_word(text[start - 1]):
        return False
    if shape.word_end and end < len(text) and _is_word(text[end]):
        return False
    return not shape.named or _NAME.search(text, max(0, start - NAME_WINDOW), start) is not None


def scrub_long(text: str, secrets: Iterable[str] = ()) -> str:
    """``scrub`` of a raw (not JSON-escaped) long text through the per-process redaction cache:
    the snapshot prefix that every task logs and sends is scanned once per process."""
    redacted, _ = _redact_cached(text, literal_secrets(secrets), default_salt())
    return PLACEHOLDER.sub(REDACTED, redacted)


class Redactor:
    """Reversible redaction for one task. Thread-safe; the originals stay in memory only."""

    def __init__(self, secrets: Iterable[str] = (), *, salt: bytes | None = None) -> None:
        self._literals = literal_secrets(secrets)
        self._salt = default_salt() if salt is None else salt
        self._originals: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the originals
        return f"Redactor({len(self._originals)} secrets)"

    @property
    def known(self) -> int:
        return len(self._originals)

    def redact(self, text: str) -> str:
        if len(text) >= CACHE_MIN_CHARS:
            out, pairs = _redact_cached(text, self._literals, self._salt)
        else:
            out, pairs = _redact(text, self._literals, self._salt)
        if pairs:
            self._remember(pairs)
        return out

    def restore(self, text: str) -> str:
        if _PLACEHOLDER_START not in text:
            return text
        with self._lock:
            originals = self._originals
            return PLACEHOLDER.sub(lambda m: originals.get(m.group(0), m.group(0)), text)

    def restore_value(self, value: Any) -> Any:
        """``restore`` inside parsed JSON (tool-call arguments)."""
        if isinstance(value, str):
            return self.restore(value)
        if isinstance(value, list):
            return [self.restore_value(v) for v in value]
        if isinstance(value, dict):
            return {self.restore(k): self.restore_value(v) for k, v in value.items()}
        return value

    def unknown_placeholders(self, text: str) -> list[str]:
        """Placeholders in ``text`` this redactor never issued (a model that invented one)."""
        if _PLACEHOLDER_START not in text:
            return []
        with self._lock:
            return [p for p in PLACEHOLDER.findall(text) if p not in self._originals]

    def redact_messages(self, messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Chat messages as the model may see them: every content, tool-call argument and
        reasoning text redacted; system messages (the fixed prompts) are sent as they are."""
        out = []
        for message in messages:
            copy = dict(message)
            if copy.get("role") != "system":
                for key in ("content", "reasoning_content"):
                    if isinstance(copy.get(key), str):
                        copy[key] = self.redact(copy[key])
                if copy.get("tool_calls"):
                    copy["tool_calls"] = [self._redact_call(c) for c in copy["tool_calls"]]
            out.append(copy)
        return out

    def restore_reply(self, reply: Any) -> Any:
        """Put originals back into a model reply (content, reasoning, tool calls), in place."""
        reply.content = self.restore(reply.content or "")
        if isinstance(getattr(reply, "reasoning_content", None), str):
            reply.reasoning_content = self.restore(reply.reasoning_content)
        for call in getattr(reply, "tool_calls", None) or ():
            call.arguments = self.restore(call.arguments)
            if call.parsed is not None:
                call.parsed = self.restore_value(call.parsed)
        return reply

    def _redact_call(self, call: Mapping[str, Any]) -> dict[str, Any]:
        copy = dict(call)
        function = copy.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("arguments"), str):
            copy["function"] = {**function, "arguments": self.redact(function["arguments"])}
        return copy

    def _remember(self, pairs: Pairs) -> None:
        with self._lock:
            for placeholder, original in pairs:
                known = self._originals.setdefault(placeholder, original)
                if known != original:  # 64-bit collision: the second value stays unrestorable
                    log.error("redaction placeholder collision; an edit may fail to apply")


def placeholder(original: str, salt: bytes) -> str:
    digest = hashlib.blake2b(original.encode("utf-8"), key=salt[:64], digest_size=8)
    return f"«redacted:{digest.hexdigest()}»"


def _redact(text: str, literals: tuple[str, ...], salt: bytes) -> tuple[str, Pairs]:
    found: dict[str, str] = {}

    def mark(original: str) -> str:
        token = placeholder(original, salt)
        found[token] = original
        return token

    if literals:
        # Placeholders already in the text (a re-redacted tool result) are kept whole: a short
        # configured key such as "1f0c" must not be replaced inside one.
        parts = _PLACEHOLDER_SPLIT.split(text) if _PLACEHOLDER_START in text else [text]
        for i in range(0, len(parts), 2):
            for secret in literals:
                if secret in parts[i]:
                    parts[i] = parts[i].replace(secret, mark(secret))
        text = "".join(parts)
    return substitute(text, mark), tuple(found.items())


_cache: OrderedDict[tuple[str, tuple[str, ...], bytes], tuple[str, Pairs]] = OrderedDict()
_cache_chars = 0
_cache_lock = threading.Lock()


def _redact_cached(text: str, literals: tuple[str, ...], salt: bytes) -> tuple[str, Pairs]:
    """Redact a long text once per process. The key is the text itself: a dict lookup hashes a
    str once per object and compares equal candidates with memcmp, far cheaper than a scan."""
    global _cache_chars
    key = (text, literals, salt)
    with _cache_lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
    value = _redact(text, literals, salt)  # outside the lock: parallel coders do not queue
    with _cache_lock:
        if key not in _cache:
            _cache[key] = value
            _cache_chars += len(text)
            while len(_cache) > CACHE_ENTRIES or (_cache_chars > CACHE_CHARS and len(_cache) > 1):
                old, _ = _cache.popitem(last=False)
                _cache_chars -= len(old[0])
    return value


def clear_cache() -> None:
    global _cache_chars
    with _cache_lock:
        _cache.clear()
        _cache_chars = 0


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters without splitting a placeholder (redact first: a
    cut through a raw secret could leave a prefix no pattern recognises)."""
    if len(text) <= limit:
        return text
    start = text.rfind("«", max(0, limit - len("«redacted:0123456789abcdef»")), limit)
    crossing = PLACEHOLDER.match(text, start) if start != -1 else None
    return text[: start if crossing and crossing.end() > limit else limit]


_TOKEN_TAIL = re.compile(r"[A-Za-z0-9._~+/=\-]+\Z")


def drop_cut_token(text: str) -> str:
    """``text`` that someone else already cut short, without its last token: a cut through a
    key (e.g. an index signature of 200 characters) leaves a piece no secret shape matches."""
    return _TOKEN_TAIL.sub("", text)


_salt_lock = threading.Lock()


@functools.cache
def default_salt() -> bytes:
    with _salt_lock:  # functools.cache does not stop two threads from racing to create it
        return _load_salt()


def _load_salt() -> bytes:
    """The per-user salt: ``<cache root>/redact.salt`` (created 0600 on first use), so the
    placeholders are the same in every process (batch runs share the server's prefix cache).
    If it cannot be stored, a per-process salt: placeholders then differ between processes."""
    from lsp_agent.config import cache_root

    path = Path(cache_root()) / "redact.salt"
    stored = _read_salt(path)
    if stored is not None:
        return stored
    salt = _random.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: another process sees no file or a whole one.
        temporary = path.with_name(f".redact.salt.{os.getpid()}.{_random.token_hex(4)}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(salt)
            os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return salt
    except FileExistsError:  # another process won the race: use its salt
        stored = _read_salt(path)
        if stored is not None:
            return stored
        reason = "the stored salt is too short"
    except OSError as exc:
        reason = str(exc)
    log.warning("cannot use the redaction salt %s (%s); using a per-process one", path, reason)
    return salt


def _read_salt(path: Path) -> bytes | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data[:64] if len(data) >= 16 else None
