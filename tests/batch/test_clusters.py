"""Splitting a selection into per-file tasks or reference clusters."""

from __future__ import annotations

import pytest

from lsp_agent.batch.clusters import cluster_files, reference_graph, task_key


def test_files_that_reference_each_other_cluster_together() -> None:
    definitions = {
        "a.py": ["helper"],
        "b.py": ["Model"],
        "c.py": ["main"],
        "d.py": ["lonely"],
        "e.py": ["__init__"],
    }
    references = {
        "a.py": [],
        "b.py": ["helper"],
        "c.py": ["Model", "print"],
        "d.py": [],
        "e.py": ["__init__"],
    }
    graph = reference_graph(definitions, references)
    assert graph["b.py"] == {"a.py", "c.py"}
    assert graph["e.py"] == set()  # dunder names do not tie files together
    assert cluster_files(graph, 8) == [["a.py", "b.py", "c.py"], ["d.py"], ["e.py"]]
    assert cluster_files(graph, 2) == [["a.py", "b.py"], ["c.py"], ["d.py"], ["e.py"]]


def test_generic_names_do_not_connect() -> None:
    definitions = {f"m{i}.py": ["run"] for i in range(5)}
    references = {"user.py": ["run"]}
    graph = reference_graph(definitions, references)
    assert graph["user.py"] == set()
    assert len(cluster_files(graph, 4)) == 6


def test_cap_must_be_positive_and_keys_are_order_free() -> None:
    with pytest.raises(ValueError):
        cluster_files({}, 0)
    assert task_key(["b.py", "a.py"]) == task_key(["a.py", "b.py"]) == "a.py\nb.py"
