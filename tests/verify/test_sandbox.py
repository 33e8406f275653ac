"""The bubblewrap sandbox, really started: no network, nothing writable but the scratch tree,
and every limit stops what it limits."""

from __future__ import annotations

import http.server
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lsp_agent.verify import sandbox
from lsp_agent.verify.sandbox import Limits, SandboxUnavailable, run_sandboxed
from lsp_agent.verify.scratch import ScratchTree, create_scratch
from tests.verify.conftest import needs_bwrap, tree_digest

pytestmark = needs_bwrap
PY = sys.executable


@pytest.fixture
def tree(project: Path, tmp_path: Path) -> Iterator[ScratchTree]:
    with create_scratch(project, tmp_path / "scratch") as scratch:
        yield scratch


@pytest.fixture
def overlay_tree(project: Path, tmp_path: Path) -> Iterator[ScratchTree]:
    """What verification uses here: nothing copied, the workspace mounted under a layer."""
    with create_scratch(project, tmp_path / "scratch", mode="overlay") as scratch:
        yield scratch


def run(tree: ScratchTree, code: str, **limits: float) -> sandbox.RunOutcome:
    return run_sandboxed(
        [PY, "-c", code], tree=tree.path, workspace=tree.source, limits=Limits(**limits)
    )


@pytest.fixture
def outside_server() -> Iterator[int]:
    """A loopback HTTP server in the test process, outside the sandbox."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_sees_the_scratch_tree_at_the_workspace_path(tree: ScratchTree) -> None:
    tree.write_texts({"calc.py": "VALUE = 'scratch'\n"})
    out = run(tree, "import os, calc; print(os.getcwd(), calc.VALUE)")
    assert out.ok, out.output
    assert out.output.split() == [str(tree.source), "scratch"]


def test_no_network(tree: ScratchTree, outside_server: int) -> None:
    import urllib.request

    urllib.request.urlopen(
        f"http://127.0.0.1:{outside_server}/", timeout=5
    ).close()  # reachable here
    code = (
        "import socket, sys\n"
        "for host, port in [('127.0.0.1', PORT), ('1.1.1.1', 80), ('10.0.0.1', 80)]:\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=3).close()\n"
        "        print('CONNECTED', host)\n"
        "    except OSError as exc:\n"
        "        print('refused', host, exc.errno)\n"
        "print(sorted(n for _, n in socket.if_nameindex()))\n"
    ).replace("PORT", str(outside_server))
    out = run(tree, code)
    assert out.ok, out.output
    assert "CONNECTED" not in out.output
    assert out.output.count("refused") == 3
    assert "['lo']" in out.output


def test_writes_only_inside_the_scratch_tree(
    tree: ScratchTree, project: Path, tmp_path: Path
) -> None:
    before = tree_digest(project)
    repo_probe = Path(__file__).parent / "lsp-agent-probe"
    home = Path(os.environ.get("HOME", "/root"))
    denied = [str(repo_probe), "/var/tmp/lsp-agent-probe", "/usr/lsp-agent-probe"]
    denied.append(str(project / ".venv" / "probe"))
    # /tmp and $HOME are private tmpfs: writes there succeed and vanish with the sandbox.
    private = [str(tmp_path / "outside.txt"), str(home / "lsp-agent-probe")]
    code = (
        "import sys\n"
        "for t in sys.argv[1:]:\n"
        "    try:\n"
        "        open(t, 'w').write('x')\n"
        "        print('WROTE', t)\n"
        "    except OSError as exc:\n"
        "        print('denied', t, exc.strerror)\n"
        "open('written-in-scratch.txt', 'w').write('ok')\n"
    )
    out = run_sandboxed([PY, "-c", code, *denied, *private], tree=tree.path, workspace=tree.source)
    assert out.ok, out.output
    for target in denied:
        assert f"denied {target}" in out.output
    for target in [*denied, *private]:
        assert not Path(target).exists(), target
    assert (tree.path / "written-in-scratch.txt").read_text() == "ok"
    assert tree_digest(project) == before


def test_infinite_loop_is_stopped(tree: ScratchTree) -> None:
    out = run(tree, "while True: pass", wall_seconds=20, cpu_seconds=1)
    assert out.limit in ("cpu time", "wall time")
    assert out.duration_s < 20
    out = run(tree, "import time; time.sleep(60)", wall_seconds=1)
    assert out.limit == "wall time" and out.exit_code is None
    assert out.duration_s < 10


@pytest.mark.parametrize("mechanism", ["cgroup", "rlimit"])
def test_fork_bomb_is_bounded(
    tree: ScratchTree, mechanism: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Both ways of limiting processes, as whoever runs the tests (CI: root, which
    RLIMIT_NPROC alone does not bind): a pids cgroup, and without one RLIMIT_NPROC (as root
    under a fresh uid). Never skipped when the limit is not enforced: that is a failure."""
    if mechanism == "cgroup":
        probe = sandbox.PIDS_CGROUP / "lsp-agent-probe-test"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError:
            pytest.skip("no writable pids cgroup here (the rlimit case still runs)")
    else:
        monkeypatch.setattr(sandbox, "PIDS_CGROUP", tmp_path / "no-cgroup")
    code = (
        "import os, time\n"
        "open('still-writable.txt', 'w').write(str(os.getuid()))\n"
        "n = 0\n"
        "while n < 5000:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30); os._exit(0)\n"
        "        n += 1\n"
        "    except OSError:\n"
        "        print('fork refused after', n, flush=True); break\n"
    )
    out = run(tree, code, wall_seconds=15, processes=64)
    assert "fork refused after" in out.output, (out.output, out.notes)
    forks = int(out.output.split("fork refused after")[1].split()[0])
    assert forks < 64
    assert out.duration_s < 15, "the bomb was refused, not stopped by the wall time"
    # The limited command still wrote the scratch tree (as root: under its fresh uid).
    assert (tree.path / "still-writable.txt").exists()
    if mechanism == "cgroup":
        assert out.limit == "processes"
    elif os.geteuid() == 0:
        assert int((tree.path / "still-writable.txt").read_text()) >= sandbox.SANDBOX_UIDS[0]
        assert any("fresh uid" in note for note in out.notes), out.notes


def test_fresh_uid_still_runs_the_project_tests(
    tree: ScratchTree, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a pids cgroup (root: under a fresh uid) the venv's pytest still runs and
    writes its files in the scratch tree."""
    monkeypatch.setattr(sandbox, "PIDS_CGROUP", tmp_path / "no-cgroup")
    venv_python = str(tree.source / ".venv" / "bin" / "python")
    out = run_sandboxed(
        [venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=report.xml"],
        tree=tree.path,
        workspace=tree.source,
    )
    assert out.exit_code == 1, out.output  # test_known_bug fails before any edit
    assert "1 failed, 2 passed" in out.output
    assert (tree.path / "report.xml").exists()


def test_output_flood_is_stopped(tree: ScratchTree) -> None:
    code = "import sys\nfor _ in range(1600): sys.stdout.write('x' * 65536)\n"  # 100 MiB
    out = run(tree, code, output_bytes=1 << 20)
    assert out.limit == "output size"
    assert len(out.output) <= 1 << 20


def test_memory_limit(tree: ScratchTree) -> None:
    out = run(tree, "b = bytearray(2 << 30)", memory_bytes=512 << 20)
    assert out.exit_code != 0 and "MemoryError" in out.output


def test_no_bwrap_names_the_package(tree: ScratchTree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(SandboxUnavailable, match="bubblewrap"):
        run_sandboxed(["true"], tree=tree.path, workspace=tree.source)


def test_overlay_tree_has_the_same_walls(
    overlay_tree: ScratchTree, project: Path, outside_server: int
) -> None:
    """The per-run mount namespace adds nothing the sandbox lets out: no network, the real
    filesystem read-only, the user's files (the overlay's lower layer) unchanged."""
    before = tree_digest(project)
    code = (
        "import socket, sys\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', PORT), timeout=3).close(); print('CONNECTED')\n"
        "except OSError:\n"
        "    print('refused')\n"
        "for t in sys.argv[1:]:\n"
        "    try:\n"
        "        open(t, 'w').write('x'); print('WROTE', t)\n"
        "    except OSError as exc:\n"
        "        print('denied', t, exc.strerror)\n"
        "open('calc.py', 'w').write('overwritten inside')\n"
    ).replace("PORT", str(outside_server))
    upper_parent = overlay_tree.top / "runs"
    denied = ["/usr/lsp-agent-probe", str(upper_parent / "probe")]
    in_lower = str(project / ".git" / "lsp-agent-probe")
    out = run_sandboxed(
        [PY, "-c", code, *denied, in_lower], tree=overlay_tree, workspace=overlay_tree.source
    )
    assert out.ok, out.output
    assert "refused" in out.output and "CONNECTED" not in out.output
    for target in denied:
        assert f"denied {target}" in out.output, out.output
        assert not Path(target).exists()
    assert f"WROTE {in_lower}" in out.output  # into the run's upper layer
    assert not Path(in_lower).exists()
    assert "overwritten" not in (project / "calc.py").read_text()
    # .git is in the lower layer: a write there lands in the run's upper, never in the repo.
    assert tree_digest(project) == before


def test_fresh_uid_on_an_overlay_tree(
    overlay_tree: ScratchTree, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Root without a pids cgroup, on the tree verification uses: the fork bomb is bounded and
    the command still writes the tree (through the overlay) under its fresh uid."""
    monkeypatch.setattr(sandbox, "PIDS_CGROUP", tmp_path / "no-cgroup")
    code = (
        "import os, time\n"
        "open('calc.py', 'a').write('# written\\n')\n"
        "print('wrote', flush=True)\n"
        "n = 0\n"
        "while n < 5000:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30); os._exit(0)\n"
        "        n += 1\n"
        "    except OSError:\n"
        "        print('fork refused after', n, flush=True); break\n"
    )
    out = run_sandboxed(
        [PY, "-c", code],
        tree=overlay_tree,
        workspace=overlay_tree.source,
        limits=Limits(wall_seconds=15, processes=64),
    )
    assert "wrote" in out.output and "fork refused after" in out.output, out.output
    assert int(out.output.split("fork refused after")[1].split()[0]) < 64
