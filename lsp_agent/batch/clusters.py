"""Splitting a file set into tasks: one per file, or one per cluster of files that reference
each other (connected components of the def/ref graph within the selection), capped in size.

A cluster lets one task change a function and its callers together; the cap keeps a task's
context and its blast radius small. The split is deterministic, so a resumed run finds the
same task keys.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# A name defined in more selected files than this is too generic ("run", "get") to mean that
# the files belong together.
MAX_DEFINERS = 3


def reference_graph(
    definitions: Mapping[str, Iterable[str]], references: Mapping[str, Iterable[str]]
) -> dict[str, set[str]]:
    """Undirected adjacency: A -- B when A references a name defined in B (A != B)."""
    definers: dict[str, set[str]] = {}
    for path, names in definitions.items():
        for name in names:
            if name.startswith("__") and name.endswith("__"):
                continue
            definers.setdefault(name, set()).add(path)
    graph: dict[str, set[str]] = {path: set() for path in definitions}
    for path in references:
        graph.setdefault(path, set())
    for path, names in references.items():
        for name in set(names):
            targets = definers.get(name, set())
            if len(targets) > MAX_DEFINERS:
                continue
            for target in targets:
                if target != path:
                    graph[path].add(target)
                    graph[target].add(path)
    return graph


def cluster_files(graph: Mapping[str, set[str]], max_size: int) -> list[list[str]]:
    """Connected components, each split into chunks of at most ``max_size`` in BFS order
    (neighbours stay together). Components are ordered by their first path."""
    if max_size < 1:
        raise ValueError("max_size must be at least 1")
    seen: set[str] = set()
    clusters: list[list[str]] = []
    for start in sorted(graph):
        if start in seen:
            continue
        order: list[str] = []
        queue = deque([start])
        seen.add(start)
        while queue:
            node = queue.popleft()
            order.append(node)
            for neighbour in sorted(graph[node]):
                if neighbour not in seen:
                    seen.add(neighbour)
                    queue.append(neighbour)
        for i in range(0, len(order), max_size):
            clusters.append(sorted(order[i : i + max_size]))
    return clusters


def split_files(
    files: Sequence[str], entries: Mapping[str, Any], *, mode: str, max_size: int
) -> list[list[str]]:
    """``mode`` is "file" or "cluster"; ``entries`` maps path -> FileEntry (definitions and
    references are read from it)."""
    if mode == "file":
        return [[path] for path in sorted(files)]
    if mode != "cluster":
        raise ValueError(f"unknown split mode {mode!r}")
    selected = set(files)
    definitions = {
        path: [d.name for d in getattr(entries.get(path), "definitions", ())] for path in selected
    }
    references = {
        path: [r.name for r in getattr(entries.get(path), "references", ())] for path in selected
    }
    return cluster_files(reference_graph(definitions, references), max_size)


def task_key(files: Sequence[str]) -> str:
    """A stable, readable name for a task within a run."""
    return "\n".join(sorted(files))
