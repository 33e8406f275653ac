"""Benchmark verification; prints figures (not a test).

    python bench/bench_verify.py [--repeat N]

- scratch: ``create_scratch`` on the running interpreter's standard library (site-packages and
  __pycache__ left out), as a plain copy and as a git repository with one uncommitted change and
  one untracked file;
- sandbox start: ``true`` run bare vs ``run_sandboxed(["true"])`` (bwrap + prlimit + cgroup);
- verify: on a generated project whose pytest suite takes ~1 s (a real .venv seeing this
  interpreter's pytest), the bare test command vs the same check through ``Verifier.check``
  (candidate file written into the scratch tree + the sandboxed run + parsing), interleaved.

Target: verify wall <= 1.1x the bare command + 100 ms.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from lsp_agent.verify.checks import detect_checks
from lsp_agent.verify.sandbox import run_sandboxed
from lsp_agent.verify.scratch import create_scratch
from lsp_agent.verify.verifier import Verifier

TEST_FILE = """import time

from calc import add


def _spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.parametrize("n", range(20))
def test_add(n):
    _spin(0.05)
    assert add(n, 1) == n + 1
""".replace("import time\n", "import time\n\nimport pytest\n", 1)


def git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com"}
    env |= {"GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - start)
        if hasattr(result, "remove"):
            result.remove()
    return out


def fmt(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:8.1f} ms  (min {min(values) * 1000:.1f})"


def bench_scratch(work: Path, repeat: int) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    plain = work / "stdlib"
    shutil.copytree(
        stdlib, plain, ignore=shutil.ignore_patterns("site-packages", "__pycache__"), symlinks=True
    )
    files = sum(1 for p in plain.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in plain.rglob("*") if p.is_file()) / 1e6
    print(f"stdlib tree: {files} files, {size:.1f} MB")
    copies = timed(lambda: create_scratch(plain, work / "s", mode="copy"), repeat)
    print(f"  scratch, plain copy     {fmt(copies)}")
    repo = work / "stdlib-git"
    shutil.copytree(plain, repo, symlinks=True)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "stdlib")
    (repo / "abc.py").write_text((repo / "abc.py").read_text() + "\n# changed\n")
    (repo / "untracked_mod.py").write_text("X = 1\n")
    checkouts = timed(lambda: create_scratch(repo, work / "s", mode="git"), repeat)
    print(f"  scratch, git + changes  {fmt(checkouts)}")


def make_project(root: Path) -> None:
    (root / "tests").mkdir(parents=True)
    (root / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (root / "tests" / "test_calc.py").write_text(TEST_FILE)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\npythonpath = ["."]\n')
    (root / ".gitignore").write_text(".venv/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "p")
    venv = root / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    lib = next((venv / "lib").glob("python*")) / "site-packages"
    (lib / "_outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (venv / "bin" / "pytest").symlink_to(Path(sys.executable).parent / "pytest")


def bench_verify(work: Path, repeat: int) -> None:
    project = work / "proj"
    make_project(project)
    checks, _ = detect_checks(project)
    [check] = checks
    scratch = create_scratch(project, work / "s")
    bare_s, box_s = [], []
    for _ in range(max(3, repeat)):
        start = time.perf_counter()
        bare = subprocess.run(list(check.argv), cwd=project, capture_output=True, check=False)
        bare_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        out = run_sandboxed(["true"], tree=scratch.path, workspace=project)
        box_s.append(time.perf_counter() - start)
        assert out.ok and bare.returncode == 0, bare.stdout[-500:]
    true_s = timed(lambda: subprocess.run(["true"], check=True), max(3, repeat))
    print(f"sandbox start: bare true {fmt(true_s)}")
    print(f"               sandboxed {fmt(box_s)}")
    scratch.remove()

    verifier = Verifier(project, checks, scratch_parent=work / "s")
    t0 = time.perf_counter()
    verifier.baseline()
    first = (time.perf_counter() - t0) * 1000
    print(f"verify: baseline (scratch + first sandboxed run) {first:.1f} ms")
    bare_s, verify_s = [], []
    text = "def add(a, b):\n    return b + a\n"
    for n in range(max(3, repeat)):
        start = time.perf_counter()
        subprocess.run(list(check.argv), cwd=project, capture_output=True, check=False)
        bare_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = verifier.check({"calc.py": text + f"# {n}\n"})
        verify_s.append(time.perf_counter() - start)
        assert result.new_failures == 0, result.failure_text()
    verifier.close()
    bare, verify = statistics.median(bare_s), statistics.median(verify_s)
    print(f"  bare test command  {fmt(bare_s)}")
    print(f"  verify round       {fmt(verify_s)}")
    print(
        f"  ratio {verify / bare:.3f}x, overhead {(verify - bare) * 1000:+.1f} ms; "
        f"target <= 1.1x + 100 ms = {(1.1 * bare + 0.1) * 1000:.0f} ms: "
        f"{'met' if verify <= 1.1 * bare + 0.1 else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        work = Path(tmp)
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        bench_scratch(work, args.repeat)
        bench_verify(work, args.repeat)


if __name__ == "__main__":
    main()
