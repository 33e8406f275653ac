"""`lsp-agent index` as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.index.test_discovery import write


def run_cli(*args: str, env_cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LSP_AGENT_CACHE_DIR": str(env_cache)}
    return subprocess.run(
        [sys.executable, "-m", "lsp_agent", "index", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_index_json_then_warm_then_no_cache(tmp_path: Path, isolated_cache: Path) -> None:
    root = tmp_path / "ws"
    write(root, ".gitignore", "out/\n")
    write(root, "main.py", "import util\n\ndef main():\n    util.run()\n")
    write(root, "util.py", "def run():\n    pass\n")
    write(root, "lib.rs", "fn go() {}\n")
    write(root, "out/x.py", "def skipped(): pass\n")
    write(root, "logo.png", b"\x89PNG\x00\x00")

    first = run_cli(str(root), "--json", env_cache=isolated_cache)
    assert first.returncode == 0, first.stderr
    data = json.loads(first.stdout)  # exactly one JSON object on stdout
    assert {"files", "languages", "definitions", "references", "skipped", "seconds"} <= set(data)
    assert data["files"] == 4
    assert data["languages"] == {"python": 2, "rust": 1}
    assert data["definitions"] == 3
    assert data["skipped"] == {"binary": 1, "ignored": 1}
    assert data["parsed"] == 4

    warm = json.loads(run_cli(str(root), "--json", env_cache=isolated_cache).stdout)
    assert warm["from_cache"] == 4 and warm["parsed"] == 0

    cold = run_cli(str(root), "--json", "--no-cache", "--jobs", "1", env_cache=tmp_path / "c2")
    assert json.loads(cold.stdout)["parsed"] == 4
    assert not (tmp_path / "c2").exists()


def test_index_human_summary_and_bad_path(tmp_path: Path, isolated_cache: Path) -> None:
    write(tmp_path, "a.py", "def f(): pass\n")
    done = run_cli(str(tmp_path), env_cache=isolated_cache)
    assert done.returncode == 0
    assert "1 files indexed" in done.stdout and "python 1" in done.stdout
    assert "\x1b[" not in done.stderr  # no progress bar when stderr is not a terminal
    bad = run_cli(str(tmp_path / "missing"), env_cache=isolated_cache)
    assert bad.returncode == 2 and "no such directory" in bad.stderr and bad.stdout == ""


def test_index_keeps_the_ranking_for_the_next_snapshot(
    tmp_path: Path, isolated_cache: Path
) -> None:
    from lsp_agent.config import IndexSettings
    from lsp_agent.context.persist import load_ranks, ranks_key
    from lsp_agent.index.workspace import WorkspaceIndex

    root = tmp_path / "ws"
    write(root, "main.py", "import util\n\ndef main():\n    util.run()\n    util.stop()\n")
    write(root, "util.py", "def run():\n    pass\n\ndef stop():\n    pass\n")
    write(root, "other.py", "from util import run\n\ndef go():\n    run()\n")
    first = json.loads(run_cli(str(root), "--json", env_cache=isolated_cache).stdout)
    assert first["parsed"] == 3 and first["ranking_seconds"] is not None
    (state_dir,) = (isolated_cache / "workspaces").glob("*/snapshot")
    entries = WorkspaceIndex(root, IndexSettings(), cache_path=None)
    entries.build(jobs=1)
    loaded = load_ranks(state_dir, ranks_key(entries.entries()))
    assert loaded is not None
    scores = loaded[0]
    assert list(scores) == ["main.py", "other.py", "util.py"]
    assert scores["util.py"] > scores["main.py"]  # the one both others reference ranks first

    saved = (state_dir / "ranks.bin").stat().st_mtime_ns
    warm = json.loads(run_cli(str(root), "--json", env_cache=isolated_cache).stdout)
    assert warm["parsed"] == 0 and warm["ranking_seconds"] is None  # nothing changed
    assert (state_dir / "ranks.bin").stat().st_mtime_ns == saved

    # The snapshot reads the kept ranking: the same text a run that ranks itself renders.
    env = {**os.environ, "LSP_AGENT_CACHE_DIR": str(isolated_cache)}
    snapshot = [sys.executable, "-m", "lsp_agent", "snapshot", str(root), "--budget", "4000"]
    kept = subprocess.run(snapshot, capture_output=True, text=True, env=env, timeout=120)
    fresh = subprocess.run(
        [*snapshot, "--no-cache"], capture_output=True, text=True, env=env, timeout=120
    )
    assert kept.returncode == 0 and kept.stdout == fresh.stdout and "util.py" in kept.stdout
    assert (state_dir / "ranks.bin").stat().st_mtime_ns == saved  # read, not rewritten
