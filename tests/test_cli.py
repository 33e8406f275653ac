from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from lsp_agent import __version__
from lsp_agent.cli import EXIT_BROKEN_PIPE, main


def test_version_and_help(capsys) -> None:  # type: ignore[no-untyped-def]
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("serve", "index", "snapshot", "refactor", "fix", "tasks", "trust"):
        assert command in out


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    # Enough output to outgrow the pipe buffer once the reader has gone.
    for n in range(300):
        (tmp_path / f"m{n}.py").write_text(f"def f{n}():\n    return {n}\n")
    writer = subprocess.Popen(
        [sys.executable, "-m", "lsp_agent", "index", str(tmp_path), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdout is not None
    writer.stdout.close()  # the reader goes away at once
    _, err = writer.communicate(timeout=60)
    assert b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()
    assert writer.returncode in (0, EXIT_BROKEN_PIPE)
