"""The grammar fingerprint that keys the index cache: it must move when a grammar changes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from lsp_agent.index import languages


def test_a_package_stamp_moves_when_its_compiled_parser_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "tree_sitter_fakelang"
    package.mkdir()
    (package / "__init__.py").write_text("def language(): ...\n")
    binary = package / "_binding.abi3.so"
    binary.write_bytes(b"\x7fELF" + b"\0" * 64)
    monkeypatch.syspath_prepend(str(tmp_path))
    first = languages._package_stamp("tree_sitter_fakelang")
    assert first == languages._package_stamp("tree_sitter_fakelang")
    assert b"_binding.abi3.so" in first
    binary.write_bytes(b"\x7fELF" + b"\1" * 80)  # an upgrade: another parser
    assert languages._package_stamp("tree_sitter_fakelang") != first
    stat = binary.stat()
    os.utime(binary, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a rebuild
    moved = languages._package_stamp("tree_sitter_fakelang")
    assert moved != first and moved != languages._package_stamp("tree_sitter_missing_lang")
    assert languages._package_stamp("tree_sitter_missing_lang") == b"?"
    assert "tree_sitter_fakelang" not in sys.modules  # stamped without importing it


def test_the_fingerprint_covers_every_installed_grammar() -> None:
    for spec in languages.LANGUAGES:
        assert languages._package_stamp(spec.module) != b"?", spec.module
    assert len(languages.fingerprint()) == 16
