"""count_tokens_upto: exact within the limit, a cheap lower bound past it, on real source text."""

from __future__ import annotations

import inspect
import typing
from itertools import pairwise

from lsp_agent.context import tokens
from lsp_agent.context.render import RenderCache
from lsp_agent.context.tokens import count_tokens, count_tokens_upto
from lsp_agent.index.model import FileEntry

# Real code with odd corners: indentation, blank lines, strings, brackets left open at line ends.
SOURCE = inspect.getsource(typing)


def test_pieces_cut_before_a_non_blank_line_add_up_to_the_whole() -> None:
    cuts = [0, *(m.end() for m in tokens._CUT.finditer(SOURCE)), len(SOURCE)]
    pieces = [SOURCE[a:b] for a, b in pairwise(cuts) if b > a]
    assert len(pieces) > 100
    assert sum(map(count_tokens, pieces)) == count_tokens(SOURCE)


def test_upto_is_exact_within_the_limit_and_a_lower_bound_past_it() -> None:
    real = count_tokens(SOURCE)
    assert len(SOURCE) > 4 * tokens.PIECE_CHARS  # counted in pieces, not in one call
    assert count_tokens_upto(SOURCE, real) == real
    assert count_tokens_upto(SOURCE, real + 1000) == real
    small = 3000
    over = count_tokens_upto(SOURCE, small)
    assert small < over < real  # stopped early, still a true lower bound
    assert count_tokens_upto("x = 1\n", 0) == count_tokens("x = 1\n")  # short: just counted


def test_render_cache_keeps_a_lower_bound_apart_from_exact_counts() -> None:
    entry = FileEntry("typing.py", "python", len(SOURCE), 0, "sha", SOURCE.count("\n"))
    cache = RenderCache()
    bound = cache.tokens(entry, "full", lambda: SOURCE, limit=1000)
    assert bound is not None and bound > 1000
    assert cache.tokens(entry, "full", lambda: SOURCE, limit=bound - 1) == bound  # known over
    higher = cache.tokens(entry, "full", lambda: SOURCE, limit=bound + 500)  # counted further
    assert higher is not None and higher > bound + 500
    exact = cache.tokens(entry, "full", lambda: SOURCE)  # no limit: the real count
    assert exact is not None and exact > bound
    assert exact == count_tokens(cache.render(entry, "full", lambda: SOURCE) or "")
    assert cache.tokens(entry, "full", lambda: SOURCE, limit=10) == exact
