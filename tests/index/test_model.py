"""new_entry makes the FileEntry its __init__ makes, field for field."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from lsp_agent.index.model import Definition, FileEntry, Reference, new_entry


def test_new_entry_takes_every_field_in_order() -> None:
    names = [f.name for f in dataclasses.fields(FileEntry)]
    assert list(inspect.signature(new_entry).parameters) == names


def test_new_entry_is_the_entry_init_makes() -> None:
    values = dict(
        path="pkg/mod.py",
        language="python",
        size=120,
        mtime_ns=1_700_000_000_000_000_123,
        sha256="ab" * 32,
        lines=7,
        definitions=(Definition("f", "function", 0, 0, 1, 4, "def f():", ""),),
        references=(Reference("g", "call", 1, 4),),
        decode_errors=True,
        generated=True,
        syntax_errors=2,
        from_buffer=True,
    )
    made = new_entry(*values.values())
    want = FileEntry(**values)  # type: ignore[arg-type]
    assert made == want and hash(made) == hash(want) and repr(made) == repr(want)
    for name, value in values.items():  # every slot set, none left to a default
        assert getattr(made, name) is value
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.size = 0  # type: ignore[misc]
    assert dataclasses.replace(made, size=1).size == 1
