"""`lsp-agent snapshot` as a real subprocess: determinism across hash seeds, and the rolling
prefix across consecutive runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from lsp_agent.commands.snapshot import BOUNDARY


def run_cli(
    *args: str, cache: Path, seed: str = "0", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "LSP_AGENT_CACHE_DIR": str(cache), "PYTHONHASHSEED": seed}
    return subprocess.run(
        [sys.executable, "-m", "lsp_agent", "snapshot", *args],
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_identical_bytes_under_different_hash_seeds(workspace: Path, tmp_path: Path) -> None:
    args = (str(workspace), "--budget", "1500", "--focus", "inventory/report.py",
            "--instruction", "show StockStore totals", "--json", "--no-cache")  # fmt: skip
    first = run_cli(*args, cache=tmp_path / "c1", seed="1")
    second = run_cli(*args, cache=tmp_path / "c2", seed="4242")
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout == second.stdout
    data = json.loads(first.stdout)
    assert set(data) == {"prefix", "tail", "manifest"}
    assert data["manifest"]["prefix_hash"]


def test_an_edit_between_two_runs_keeps_the_prefix(workspace: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = (str(workspace), "--budget", "3000", "--focus", "inventory/cli.py")
    first = run_cli(*args, cache=cache, seed="7")
    assert first.returncode == 0, first.stderr.decode()
    prefix1, tail1 = first.stdout.decode().split(BOUNDARY + "\n")
    store = workspace / "inventory" / "store.py"
    store.write_text(store.read_text().replace("return left", "return left  # checked"))
    second = run_cli(*args, cache=cache, seed="99")
    assert second.returncode == 0, second.stderr.decode()
    prefix2, tail2 = second.stdout.decode().split(BOUNDARY + "\n")
    assert prefix2 == prefix1
    assert "+        return left  # checked" in tail2 and "# checked" not in tail1
    manifest = json.loads(run_cli(*args, "--manifest", cache=cache).stdout)
    assert manifest["rebuilt"] is False and manifest["stale_tokens"] > 0


def test_focus_relative_to_the_current_directory(workspace: Path, tmp_path: Path) -> None:
    done = run_cli(
        ".", "--budget", "2000", "--focus", "inventory/models.py", "--manifest", "--no-cache",
        cache=tmp_path / "c", cwd=workspace,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    files = json.loads(done.stdout)["files"]
    assert any(f["section"] == "tail" and f["path"] == "inventory/models.py" for f in files)


def test_bad_arguments_fail_with_a_message(workspace: Path, tmp_path: Path) -> None:
    missing = run_cli(str(workspace / "nope"), cache=tmp_path)
    assert missing.returncode == 2 and b"no such directory" in missing.stderr
    outside = run_cli(str(workspace), "--focus", str(tmp_path), "--no-cache", cache=tmp_path)
    assert outside.returncode == 2 and b"outside the workspace" in outside.stderr
    budget = run_cli(str(workspace), "--budget", "-5", cache=tmp_path)
    assert budget.returncode == 2 and b"--budget" in budget.stderr
    assert missing.stdout == outside.stdout == budget.stdout == b""


def test_identical_bytes_on_real_code_under_different_hash_seeds(tmp_path: Path) -> None:
    # A copy of the stdlib's email package: real code nobody here wrote, with many shared
    # names, that does not change when this repository's own source does (this package's own
    # source did: each new module shifted the tiers at this budget).
    source = Path(sysconfig.get_paths()["stdlib"]) / "email"
    corpus = tmp_path / "corpus"
    shutil.copytree(source, corpus, ignore=shutil.ignore_patterns("__pycache__"))
    args = (str(corpus), "--budget", "20000", "--focus", "message.py",
            "--instruction", "speed up header parsing", "--json", "--no-cache")  # fmt: skip
    first = run_cli(*args, cache=tmp_path / "c1", seed="3")
    second = run_cli(*args, cache=tmp_path / "c2", seed="123456")
    assert first.returncode == 0, first.stderr.decode()
    assert first.stdout == second.stdout
    manifest = json.loads(first.stdout)["manifest"]
    tiers = {f["tier"] for f in manifest["files"] if f["section"] == "prefix"}
    assert {"full", "signatures"} <= tiers
    assert not any((tmp_path / "c1").rglob("prefix-*"))  # --no-cache persisted nothing
