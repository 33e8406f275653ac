"""File-set cost: discovery inside a git work tree (git ls-files + the walk) against the same
tree outside git (the walk alone), side by side in one run, on a copy of the standard library.

    .venv/bin/python bench/bench_file_set.py [--repeat N]

Prints files kept and the median seconds of IgnoreRules.for_settings + discover for each.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sysconfig
import tempfile
import time
from pathlib import Path

from lsp_agent.config import IndexSettings
from lsp_agent.index.discovery import IgnoreRules, discover


def measure(root: Path, repeat: int) -> tuple[int, float]:
    settings = IndexSettings()
    times = []
    kept = 0
    for _ in range(repeat):
        started = time.perf_counter()
        rules = IgnoreRules.for_settings(root, settings)
        kept = len(discover(root, rules, settings.max_file_bytes).files)
        times.append(time.perf_counter() - started)
    return kept, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "plain"
        shutil.copytree(
            stdlib, plain, ignore=shutil.ignore_patterns("__pycache__", "site-packages")
        )
        (plain / ".gitignore").write_text("*.pyc\ntest/\n")
        bare = Path(tmp) / "bare"  # the same files as the git view: no ignore rules at all
        shutil.copytree(plain, bare)
        (bare / ".gitignore").unlink()
        repo = Path(tmp) / "repo"
        shutil.copytree(plain, repo)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(repo), "add", "-f", "test"], check=True)
        cases = (
            ("outside git, test/ ignored", plain),
            ("outside git, no rules", bare),
            ("git view, test/ tracked", repo),
        )
        for name, root in cases:
            kept, seconds = measure(root, args.repeat)
            print(f"{name:<28} {kept:>6} files  {seconds * 1000:7.1f} ms (median of {args.repeat})")


if __name__ == "__main__":
    main()
