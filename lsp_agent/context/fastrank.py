"""PageRank's power iteration with numpy, when numpy is installed: the same numbers, bit for
bit, as the plain-Python loop in ranking.py, about ten times faster on a large graph.

numpy is a dependency, imported lazily: on a small graph, where its import (~40-100 ms, once
per process) would cost more than it saves, ranking.py iterates in plain Python, and it does so
too in an environment that lacks numpy. Identity holds because every floating-point operation
is the same one, in the same order: products elementwise; the per-name and per-file sums by
``bincount``, which adds its weights one by one in input order from 0.0, as ``sum()`` does;
and the two scalar sums (dangling mass, the L1 change) with Python's own ``sum`` on the
values. numpy's ``sum`` (pairwise) is never used. tests/context/test_ranking.py checks the identity.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lsp_agent.context.ranking import Walk

logger = logging.getLogger(__name__)

MIN_EDGES = 20_000  # below this the plain loop takes a few ms: not worth importing numpy

_numpy: Any = None
_missing = False


def _np() -> Any:
    global _numpy, _missing
    if _numpy is None and not _missing:
        try:
            import numpy

            _numpy = numpy
        except ImportError:
            _missing = True
            logger.debug("numpy is not installed: PageRank iterates in plain Python")
    return _numpy


def edges(walk: Walk) -> int:
    return len(walk.single_srcs) + sum(map(len, walk.srcs))


class Arrays:
    """A walk's transitions as numpy arrays, in the plain loop's order."""

    def __init__(self, np: Any, walk: Walk) -> None:
        n = len(walk.self_share)
        slots = len(walk.single_srcs) + len(walk.srcs)
        self.n, self.slots = n, slots
        self.src = np.fromiter(
            chain(walk.single_srcs, chain.from_iterable(walk.srcs)), dtype=np.intp
        )
        self.coeff = np.fromiter(
            chain(walk.single_coeffs, chain.from_iterable(walk.coeffs)), dtype=np.float64
        )
        singles = len(walk.single_srcs)
        self.slot = np.fromiter(
            chain(
                range(singles),
                chain.from_iterable(map(repeat, range(singles, slots), map(len, walk.srcs))),
            ),
            dtype=np.intp,
        )
        self.inc = np.fromiter(chain.from_iterable(walk.incoming), dtype=np.intp)
        self.inc_file = np.fromiter(
            chain.from_iterable(map(repeat, range(n), map(len, walk.incoming))), dtype=np.intp
        )
        self.self_share = np.array(walk.self_share, dtype=np.float64)
        self.dangling = np.array(walk.dangling, dtype=np.intp)


def power_iteration(
    walk: Walk,
    teleport: Sequence[float],
    damping: float,
    max_iterations: int,
    tolerance: float,
) -> list[float] | None:
    """The ranks after power iteration, or None when numpy is missing or not worth it."""
    if edges(walk) < MIN_EDGES:
        return None
    np = _np()
    if np is None:
        return None
    arrays = walk.arrays
    if not isinstance(arrays, Arrays):
        arrays = walk.arrays = Arrays(np, walk)  # one conversion per walk
    bincount = np.bincount
    tele = np.array(teleport, dtype=np.float64)
    rank = tele.copy()
    for _ in range(max_iterations):
        unit = bincount(
            arrays.slot, weights=rank[arrays.src] * arrays.coeff, minlength=arrays.slots
        )
        incoming = bincount(arrays.inc_file, weights=unit[arrays.inc], minlength=arrays.n)
        leak = damping * sum(rank[arrays.dangling].tolist()) + (1.0 - damping)
        new = damping * (incoming - rank * arrays.self_share) + leak * tele
        delta = sum(np.abs(new - rank).tolist())
        rank = new
        if delta < tolerance:
            break
    return rank.tolist()  # type: ignore[no-any-return]
