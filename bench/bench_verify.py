"""Benchmark verification; prints figures (not a test).

    python bench/bench_verify.py [--repeat N]

- scratch: ``create_scratch`` on the running interpreter's standard library (site-packages and
  __pycache__ left out), as a git repository with one uncommitted change and one untracked file
  and as a plain folder: the copies (``git`` / ``copy``, what main did before) against the
  overlay tree (``overlay``: nothing copied; its cost is hashing the base), in the same run;
- sandbox start: ``true`` run bare vs ``run_sandboxed(["true"])`` on a folder (bwrap + prlimit +
  cgroup) and on an overlay tree of the stdlib (+ the private mount namespace and the overlayfs
  mount of every run);
- verify: on a generated project whose pytest suite takes ~1 s (a real .venv seeing this
  interpreter's pytest), the bare test command vs the same check through ``Verifier.check``
  (candidate file written into the scratch tree + the sandboxed run + parsing) with an overlay
  tree and with a copy, interleaved.

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
from lsp_agent.verify.scratch import create_scratch, overlay_problem
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


def bench_scratch(work: Path, repeat: int) -> Path:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    plain = work / "stdlib"
    shutil.copytree(
        stdlib, plain, ignore=shutil.ignore_patterns("site-packages", "__pycache__"), symlinks=True
    )
    files = sum(1 for p in plain.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in plain.rglob("*") if p.is_file()) / 1e6
    print(f"stdlib tree: {files} files, {size:.1f} MB")
    repo = work / "stdlib-git"
    shutil.copytree(plain, repo, symlinks=True)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "stdlib")
    (repo / "abc.py").write_text((repo / "abc.py").read_text() + "\n# changed\n")
    (repo / "untracked_mod.py").write_text("X = 1\n")
    texts = {"os.py": (repo / "os.py").read_text() + "\n# frozen buffer\n"}
    if problem := overlay_problem(repo.resolve(), work):
        print(f"  overlay trees do not work here: {problem}")
    rows = {
        "git + changes (copy)": lambda: create_scratch(repo, work / "s", texts=texts, mode="git"),
        "git + changes (overlay)": lambda: create_scratch(
            repo, work / "s", texts=texts, mode="overlay"
        ),
        "plain copy": lambda: create_scratch(plain, work / "s", texts=texts, mode="copy"),
        "plain (overlay)": lambda: create_scratch(plain, work / "s", texts=texts, mode="overlay"),
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeat):  # interleaved, so load changes hit every row alike
        for name, make in rows.items():
            times[name] += timed(make, 1)
    for name, values in times.items():
        print(f"  scratch, {name:24} {fmt(values)}")
    for kind in ("git", "plain"):
        copy = statistics.median(
            times[f"{kind} + changes (copy)" if kind == "git" else "plain copy"]
        )
        over = statistics.median(
            times[f"{kind} + changes (overlay)" if kind == "git" else "plain (overlay)"]
        )
        print(f"  {kind}: overlay / copy = {over / copy:.3f}")
    return repo


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


def bench_sandbox(work: Path, stdlib_repo: Path, repeat: int) -> None:
    folder = create_scratch(stdlib_repo, work / "s", mode="git")
    overlay = create_scratch(stdlib_repo, work / "s", mode="overlay")
    runs = max(5, repeat)
    bare, bound, mounted = [], [], []
    for _ in range(runs):
        bare += timed(lambda: subprocess.run(["true"], check=True), 1)
        bound += timed(lambda: run_sandboxed(["true"], tree=folder, workspace=stdlib_repo), 1)
        mounted += timed(lambda: run_sandboxed(["true"], tree=overlay, workspace=stdlib_repo), 1)
    print(f"sandbox start: bare true          {fmt(bare)}")
    print(f"               sandboxed, folder  {fmt(bound)}")
    print(f"               sandboxed, overlay {fmt(mounted)}")
    folder.remove()
    overlay.remove()


def bench_verify(work: Path, repeat: int) -> None:
    project = work / "proj"
    make_project(project)
    checks, _ = detect_checks(project)
    [check] = checks
    verifiers = {
        "overlay": Verifier(project, checks, scratch_parent=work / "s"),
        "copy": Verifier(project, checks, scratch_parent=work / "s", overlay=False),
    }
    for name, verifier in verifiers.items():
        t0 = time.perf_counter()
        verifier.baseline()
        first = (time.perf_counter() - t0) * 1000
        kind = verifier.tree().kind
        print(
            f"verify: baseline, {name} ({kind} tree: scratch + first sandboxed run) {first:.1f} ms"
        )
    bare_s: list[float] = []
    verify_s: dict[str, list[float]] = {name: [] for name in verifiers}
    text = "def add(a, b):\n    return b + a\n"
    for n in range(max(3, repeat)):
        start = time.perf_counter()
        subprocess.run(list(check.argv), cwd=project, capture_output=True, check=False)
        bare_s.append(time.perf_counter() - start)
        for name, verifier in verifiers.items():
            start = time.perf_counter()
            result = verifier.check({"calc.py": text + f"# {n}\n"})
            verify_s[name].append(time.perf_counter() - start)
            assert result.new_failures == 0, result.failure_text()
    for verifier in verifiers.values():
        verifier.close()
    bare = statistics.median(bare_s)
    print(f"  bare test command      {fmt(bare_s)}")
    for name, values in verify_s.items():
        verify = statistics.median(values)
        print(f"  verify round, {name:8} {fmt(values)}")
        print(
            f"    ratio {verify / bare:.3f}x, overhead {(verify - bare) * 1000:+.1f} ms; "
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
        repo = bench_scratch(work, args.repeat)
        bench_sandbox(work, repo, args.repeat)
        bench_verify(work, args.repeat)
        print(f"load average after: {os.getloadavg()[0]:.1f} (figures are noisy under load)")


if __name__ == "__main__":
    main()
