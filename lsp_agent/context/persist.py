"""Persisting the stable prefix so consecutive CLI runs and a restarted server send the same
bytes (and so keep hitting the provider's prefix cache, which outlives a process).

One file per prefix budget, written atomically: marshal of plain tuples (the index cache's
codec does the same), since a 1M-token prefix of the kernel holds 78k file records and JSON
took about a second to read them back. Anything unreadable or inconsistent is ignored with a
warning and the prefix is rebuilt: the file is a cache, never a source of truth.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import operator
import os
import tempfile
from array import array
from collections.abc import Mapping, Sequence
from pathlib import Path

from lsp_agent.context import fastrank, idgraph, ranking, testfiles
from lsp_agent.context.prefix import FileRecord, FileRecords, PrefixState, Segment
from lsp_agent.context.ranking import FlatRows, RefGraph
from lsp_agent.index import languages
from lsp_agent.index.model import FileEntry

logger = logging.getLogger(__name__)

# Bump when the rendering or the layout changes: old prefixes are then rebuilt, not reused.
# 2: tests ranked down; 3: cut-off secrets withheld; 4: breadth (folder lines, near copies),
# marshal instead of JSON; 5: the file records as columns
FORMAT_VERSION = 5


def state_path(state_dir: Path, budget: int) -> Path:
    return state_dir / f"prefix-{budget}.bin"


def save_state(state_dir: Path, state: PrefixState) -> None:
    # The records' columns as they are (FileRecords), not a tuple per file: 78k small tuples
    # took marshal ~0.1 s more to read back.
    files = state.files
    data = (
        FORMAT_VERSION,
        state.budget,
        state.hash,
        state.tokens,
        state.text,
        tuple((s.start, s.end, s.tokens, s.path, s.kind) for s in state.segments),
        files.paths,
        *files.columns,
    )
    _dump(state_dir, state_path(state_dir, state.budget), data, "the snapshot prefix")


def load_state(state_dir: Path, budget: int) -> PrefixState | None:
    path = state_path(state_dir, budget)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("ignoring unreadable snapshot prefix %s: %s", path, exc)
        return None
    try:
        data = marshal.loads(raw)
        if not isinstance(data, tuple) or not data or data[0] != FORMAT_VERSION:
            return None
        _, saved_budget, digest, tokens, text, segments, paths, *columns = data
        if saved_budget != budget:
            return None
        if hashlib.sha256(text.encode()).hexdigest() != digest:
            raise ValueError("hash mismatch")
        if len(columns) != len(FileRecord._fields):
            raise ValueError("file records of another shape")
        for column in columns:
            if not isinstance(column, tuple) or len(column) != len(paths):
                raise ValueError("files and records differ in number")
        if not isinstance(paths, tuple) or not all(map(operator.lt, paths, paths[1:])):
            raise ValueError("files out of order")
        state = PrefixState(
            budget=budget,
            text=text,
            tokens=int(tokens),
            hash=digest,
            segments=[Segment(*s) for s in segments],
            files=FileRecords(paths, tuple(columns)),
        )
    except (EOFError, KeyError, TypeError, ValueError) as exc:
        logger.warning("ignoring inconsistent snapshot prefix %s: %s", path, exc)
        return None
    return state


RANKS_FILE = "ranks.bin"
RANKS_VERSION = 2  # 2: with why each file was ranked down


def ranks_key(entries: Mapping[str, FileEntry]) -> str:
    """What the stable ranking depends on: every file's path and content, the grammars and
    queries that turn content into names (index.languages), and the code that does it: the
    index's modules (extraction) and the ranking's own."""
    digest = hashlib.sha256(f"{RANKS_VERSION}\0{languages.fingerprint()}\0".encode())
    code = sorted(Path(languages.__file__ or "").parent.glob("*.py"))
    code += [Path(m.__file__ or "") for m in (ranking, idgraph, fastrank, testfiles)]
    for source in code:
        digest.update(source.read_bytes())
    digest.update("".join(f"{p}\0{e.sha256}\n" for p, e in entries.items()).encode())
    return digest.hexdigest()


def save_ranks(
    state_dir: Path, key: str, scores: Mapping[str, float], whys: Mapping[str, str]
) -> None:
    """One ranking per workspace (the latest), written atomically; floats are kept exactly,
    and why each file was ranked down (``rank_down_tests``): the prefix's manifest reasons
    would otherwise run the rule again (~0.1 s on the kernel)."""
    data = (
        RANKS_VERSION,
        key,
        tuple(scores),
        tuple(scores.values()),
        tuple(whys),
        tuple(whys.values()),
    )
    _dump(state_dir, state_dir / RANKS_FILE, data, "the stable ranking")


def load_ranks(state_dir: Path, key: str) -> tuple[dict[str, float], dict[str, str]] | None:
    """(scores, why each file was ranked down) saved under ``key``, or None."""
    try:
        data = marshal.loads((state_dir / RANKS_FILE).read_bytes())
        version, saved_key, paths, scores, why_paths, whys = data
        if version != RANKS_VERSION or saved_key != key or len(paths) != len(scores):
            return None
        if len(why_paths) != len(whys) or not all(isinstance(why, str) for why in whys):
            raise ValueError("reasons of another shape")
        return (
            dict(zip(paths, map(float, scores), strict=True)),
            dict(zip(why_paths, whys, strict=True)),
        )
    except FileNotFoundError:
        return None
    except (OSError, EOFError, TypeError, ValueError) as exc:
        logger.warning("ignoring an unreadable stable ranking in %s: %s", state_dir, exc)
        return None


GRAPH_FILE = "graph.bin"
GRAPH_VERSION = 1


def _flat(rows: Sequence[Sequence[int]]) -> tuple[bytes, bytes]:
    """Rows of ints as (the rows concatenated, int32; their start offsets plus the end)."""
    flat = FlatRows.of(rows)
    return flat.flat.tobytes(), flat.bounds.tobytes()


def _rows(flat: bytes, offsets: bytes) -> FlatRows:
    return FlatRows(_ints("i", flat), _ints("q", offsets))


def _ints(code: str, raw: bytes) -> array[int]:
    out = array(code)
    out.frombytes(raw)
    return out


def save_graph(state_dir: Path, key: str, graph: RefGraph) -> None:
    """The reference graph beside the ranking, under the same key (what both depend on): a
    restarted server's first focused snapshot reads it instead of building it (12 s on the
    kernel). Rows as int32 arrays, which also hold them in a tenth of the memory of lists."""
    data = (
        GRAPH_VERSION,
        key,
        graph.paths,
        graph.names,
        array("i", graph.definer_files).tobytes(),
        array("q", graph.definer_start).tobytes(),
        *_flat(graph.defines),
        *_flat(graph.ref_ids),
        _flat(graph.ref_counts)[0],
    )
    _dump(state_dir, state_dir / GRAPH_FILE, data, "the reference graph")


def load_graph(state_dir: Path, key: str) -> RefGraph | None:
    """The graph saved for ``key``; None when there is none for these files."""
    try:
        data = marshal.loads((state_dir / GRAPH_FILE).read_bytes())
        if not isinstance(data, tuple) or len(data) != 11:
            raise ValueError("not a reference graph")
        version, saved_key, paths, names, definer_files, definer_start, *rows = data
        if version != GRAPH_VERSION or saved_key != key:
            return None
        defines_flat, defines_at, refs_flat, refs_at, counts_flat = rows
        if not isinstance(paths, tuple) or not isinstance(names, tuple):
            raise ValueError("not a reference graph")
        graph = RefGraph(
            paths,
            names,
            _ints("i", definer_files),
            _ints("q", definer_start),
            _rows(defines_flat, defines_at),
            _rows(refs_flat, refs_at),
            _rows(counts_flat, refs_at),
        )
        if not (len(graph.defines) == len(graph.ref_ids) == len(paths)):
            raise ValueError("rows and files differ in number")
        if len(graph.definer_start) != len(names) + 1:
            raise ValueError("names and definers differ in number")
        return graph
    except FileNotFoundError:
        return None
    except (OSError, EOFError, TypeError, ValueError) as exc:
        logger.warning("ignoring an unreadable reference graph in %s: %s", state_dir, exc)
        return None


def _dump(state_dir: Path, target: Path, data: object, what: str) -> None:
    """Write ``data`` as marshal to ``target`` atomically (a reader never sees half a file).
    A cache: no fsync, and a failure is logged, never raised."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=state_dir, prefix=f".{target.stem}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                marshal.dump(data, handle)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, ValueError) as exc:
        logger.warning("cannot persist %s in %s: %s", what, state_dir, exc)
