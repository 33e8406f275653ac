"""Atomic, hash-checked writes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from lsp_agent.batch.apply import APPLIED, CHANGED_UNDERNEATH, ERROR, SKIPPED, apply_changes


def _change(path: str, old: str, new: str) -> dict[str, str]:
    return {
        "path": path,
        "original_sha256": hashlib.sha256(old.encode()).hexdigest(),
        "original_text": old,
        "new_text": new,
    }


def test_applies_keeps_mode_and_leaves_no_temp_files(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("echo old\r\n")
    os.chmod(script, 0o751)
    outcomes = apply_changes(tmp_path, [_change("run.sh", "echo old\r\n", "echo new\r\n")])
    assert [o.status for o in outcomes] == [APPLIED]
    assert script.read_bytes() == b"echo new\r\n"
    assert (script.stat().st_mode & 0o777) == 0o751
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.sh"]


def test_file_changed_underneath_blocks_the_whole_task(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a = 1\n")
    (tmp_path / "b.py").write_text("b = 2  # edited by a human\n")
    outcomes = apply_changes(
        tmp_path, [_change("a.py", "a = 1\n", "a = 10\n"), _change("b.py", "b = 2\n", "b = 20\n")]
    )
    assert [(o.path, o.status) for o in outcomes] == [
        ("a.py", SKIPPED),
        ("b.py", CHANGED_UNDERNEATH),
    ]
    assert (tmp_path / "a.py").read_text() == "a = 1\n"
    assert (tmp_path / "b.py").read_text() == "b = 2  # edited by a human\n"


def test_new_file_and_paths_outside_root(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    outcomes = apply_changes(
        root, [_change("pkg/new.py", "", "x = 1\n"), _change("../evil.py", "", "boom\n")]
    )
    assert [o.status for o in outcomes] == [SKIPPED, ERROR]
    assert not (root / "pkg" / "new.py").exists()
    assert [o.status for o in apply_changes(root, [_change("pkg/new.py", "", "x = 1\n")])] == [
        APPLIED
    ]
    assert (root / "pkg" / "new.py").read_text() == "x = 1\n"
    assert not (tmp_path / "evil.py").exists()
    # A file deleted after the task read it is "changed underneath", not recreated.
    outcomes = apply_changes(root, [_change("gone.py", "y = 1\n", "y = 2\n")])
    assert outcomes[0].status == CHANGED_UNDERNEATH and not (root / "gone.py").exists()


def test_new_files_get_the_umask_mode_not_0600(tmp_path: Path) -> None:
    apply_changes(tmp_path, [_change("fresh.py", "", "z = 1\n")])
    mask = os.umask(0o022)
    os.umask(mask)
    assert ((tmp_path / "fresh.py").stat().st_mode & 0o777) == 0o666 & ~mask
