"""Run one command inside bubblewrap, with limits, on a scratch tree.

The sandbox (checked recipe in docs/architecture.md, "verify/"):
- the whole filesystem read-only (the toolchain, the interpreter, site-packages), with the
  scratch tree bound read-write *at the workspace's own path*, so absolute paths, editable
  installs and virtual-environment shebangs resolve to the scratch copy and the user's real
  files are not even visible; the workspace's environment folders (``.venv``, ``node_modules``)
  bound read-only over their places in it;
- its own network namespace (loopback only: nothing outside, not even the host's loopback),
  PID namespace, private ``/tmp`` and ``$HOME`` (a tmpfs over the real home), ``/dev`` and
  ``/proc`` of its own;
- limits: wall time (the whole namespace is killed), CPU seconds, address space and file size
  (``prlimit``), processes (a cgroup ``pids.max`` when one can be made, else ``RLIMIT_NPROC``:
  for a non-root user on its own uid; as root, which ``RLIMIT_NPROC`` does not bind, the command
  runs under a fresh unprivileged uid that keeps only the file-access capabilities), and output
  size (the sandbox is killed past ``max_output`` bytes).

Without ``bwrap`` a run raises ``SandboxUnavailable`` naming the package, unless the caller
passes ``sandbox="none"`` (which only the user's own config may ask for).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lsp_agent.verify.scratch import ENVIRONMENT_DIRS, ScratchTree, overlay_prefix

PIDS_CGROUP = Path("/sys/fs/cgroup/pids")
# What a check sees of the caller's environment; everything else (keys, tokens) stays out.
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "SOURCE_DATE_EPOCH")
# Root without a pids cgroup: the command runs under a fresh uid from this range (no account
# has one), so RLIMIT_NPROC counts exactly its own processes. It keeps DAC_OVERRIDE and FOWNER
# (ambient), so it still reads the toolchain and writes the scratch tree as root did.
SANDBOX_UIDS = (1_000_000_000, 2_000_000_000)
KEPT_CAPS = ("dac_override", "fowner")


class SandboxUnavailable(Exception):
    """bubblewrap is missing or does not work here; the message says what to install."""


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 300.0
    cpu_seconds: int = 600
    memory_bytes: int = 4 << 30  # address space per process
    processes: int = 256
    output_bytes: int = 4 << 20  # stdout + stderr together
    file_bytes: int = 1 << 30  # largest file a check may write


@dataclass
class RunOutcome:
    argv: list[str]
    exit_code: int | None  # None when a limit stopped it
    output: str  # stdout and stderr interleaved, at most Limits.output_bytes
    duration_s: float
    limit: str | None = None  # "wall time" | "cpu time" | "output size" | "memory" | "processes"
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.limit is None


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def require_bwrap() -> str:
    path = bwrap_path()
    if path is None:
        raise SandboxUnavailable(
            "verification needs bubblewrap to sandbox the project's checks: install the "
            "'bubblewrap' package (apt-get install bubblewrap, dnf install bubblewrap), or set "
            'verify.sandbox = "none" in your own ~/.config/lsp-agent/config.toml'
        )
    return path


def bwrap_argv(
    tree: Path,
    workspace: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    read_only: Sequence[Path] = (),
) -> list[str]:
    """The bwrap prefix: ``tree`` appears at ``workspace`` (read-write), everything else is
    read-only; environment folders of the workspace and ``read_only`` paths are bound back."""
    workspace = workspace.resolve()
    home = Path(os.environ.get("HOME") or "/root").resolve()
    argv = [require_bwrap(), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    argv += ["--tmpfs", "/tmp"]
    keep: list[Path] = [Path(p).resolve() for p in read_only]
    if home.is_dir() and home not in (Path("/"), workspace) and not home.is_relative_to("/tmp"):
        argv += ["--tmpfs", str(home)]
        keep += _home_toolchains(home, workspace, env)
    argv += ["--bind", str(tree.resolve()), str(workspace)]
    for name in ENVIRONMENT_DIRS:
        if (workspace / name).is_dir():
            keep.append(workspace / name)
    for path in sorted(set(keep)):
        if path.exists():
            argv += ["--ro-bind", str(path), str(path)]
    argv += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts"]
    argv += ["--die-with-parent", "--new-session", "--clearenv"]
    for key, value in _sandbox_env(env, home).items():
        argv += ["--setenv", key, value]
    argv += ["--chdir", str(cwd or workspace)]
    return argv


def _home_toolchains(home: Path, workspace: Path, env: Mapping[str, str] | None) -> list[Path]:
    """Folders under the private home that the toolchain needs back, read-only: the top folder
    (``~/.pyenv``, ``~/.local``, ``~/.cargo``) of every PATH entry and of every workspace
    virtual environment's base interpreter."""
    places: list[Path] = []
    for entry in (env or os.environ).get("PATH", "").split(os.pathsep):
        if entry:
            places += [Path(entry), Path(entry).resolve()]
    for name in ENVIRONMENT_DIRS:
        cfg = workspace / name / "pyvenv.cfg"
        with contextlib.suppress(OSError):
            for line in cfg.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home":
                    places.append(Path(value.strip()).resolve())
    out: list[Path] = []
    for place in places:
        if place.is_relative_to(home) and place != home and not place.is_relative_to(workspace):
            out.append(home / place.relative_to(home).parts[0])
    return out


def _sandbox_env(env: Mapping[str, str] | None, home: Path) -> dict[str, str]:
    source = os.environ if env is None else env
    out = {k: source[k] for k in PASSED_ENV if k in source}
    out.update({"HOME": str(home), "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1"})
    out.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    if env is not None:
        out.update({k: v for k, v in env.items() if k not in out or k == "PATH"})
    return out


def run_sandboxed(
    argv: Sequence[str],
    *,
    tree: Path | ScratchTree,
    workspace: Path,
    limits: Limits = Limits(),
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    read_only: Sequence[Path] = (),
    sandbox: str = "bwrap",
    cancel: threading.Event | None = None,
) -> RunOutcome:
    """Run ``argv`` on ``tree`` (seen at ``workspace``) and wait, enforcing ``limits``.
    ``tree`` is a folder, or a ``ScratchTree`` (an overlay tree is mounted for this run over a
    fresh upper folder, removed afterwards). ``sandbox="none"`` runs it directly in the tree's
    folder (the user chose to go without; an overlay tree cannot be run that way)."""
    scratch = tree if isinstance(tree, ScratchTree) else None
    folder = scratch.path if scratch is not None else tree
    overlay = scratch is not None and scratch.kind == "overlay"
    if sandbox == "none" and overlay:
        raise ValueError("an overlay scratch tree runs only in the sandbox")
    with contextlib.ExitStack() as stack:
        outer: list[str] = []
        inner = list(argv)
        if overlay:
            assert scratch is not None
            upper, work = scratch.run_dirs()
            stack.callback(scratch.drop_run_dirs, upper)
            view = upper.parent / "view"
            view.mkdir()
            outer = overlay_prefix([scratch.path, scratch.source], upper, work, view)
            folder = view
            if scratch.deleted:
                # Removed inside the sandbox, where only the view is writable: a symlink in
                # the workspace cannot turn the removal into one of the user's files.
                gone = [str(workspace / rel) for rel in sorted(scratch.deleted)]
                drop = 'while [ "$1" != -- ]; do rm -rf -- "$1"; shift; done; shift; exec "$@"'
                inner = ["sh", "-c", drop, "sh", *gone, "--", *inner]
        return _run(
            inner,
            list(argv),
            outer,
            folder,
            workspace,
            limits,
            cwd,
            env,
            read_only,
            sandbox,
            cancel,
        )


def _run(
    inner: list[str],
    argv: list[str],
    outer: list[str],
    folder: Path,
    workspace: Path,
    limits: Limits,
    cwd: Path | None,
    env: Mapping[str, str] | None,
    read_only: Sequence[Path],
    sandbox: str,
    cancel: threading.Event | None,
) -> RunOutcome:
    if sandbox == "none":
        box: list[str] = []
        run_cwd = cwd or folder
        run_env = {**_sandbox_env(env, Path(os.environ.get("HOME") or "/root"))}
    else:
        box = bwrap_argv(folder, workspace, cwd=cwd, env=env, read_only=read_only)
        run_cwd = folder
        run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    with _process_limit(limits.processes) as (prefix, pids, notes):
        root = os.geteuid() == 0
        nproc = pids is None and (sandbox != "none" or not root)
        if nproc and root and shutil.which("setpriv") is None:
            notes.append("process limit not enforced: no pids cgroup and no setpriv (util-linux)")
        elif nproc and root:
            box, inner = _as_fresh_uid(box, inner)
            notes.append("process limit: RLIMIT_NPROC under a fresh uid (no pids cgroup here)")
        elif pids is None and root:
            notes.append("process limit not enforced: unsandboxed as root without a pids cgroup")
        command = [*prefix, *_prlimit(limits, nproc=nproc), *outer, *box, *inner]
        return _supervise(
            command, argv, run_cwd, run_env, limits, pids, notes, cancel, sandbox != "none"
        )


def _as_fresh_uid(box: list[str], inner: list[str]) -> tuple[list[str], list[str]]:
    """``bwrap ...`` + ``ARGV`` -> ``bwrap --cap-add ... ...`` + ``setpriv --reuid N ... --
    ARGV``: root is exempt from RLIMIT_NPROC, so the command drops to an unused uid inside the
    sandbox, keeping only ``KEPT_CAPS`` (ambient, so they survive exec; bash and dash see
    ruid == euid and keep them)."""
    uid = SANDBOX_UIDS[0] + secrets.randbelow(SANDBOX_UIDS[1] - SANDBOX_UIDS[0])
    caps = ",".join(f"+{c}" for c in KEPT_CAPS)
    wanted = ("CAP_SETUID", "CAP_SETGID", *(f"CAP_{c.upper()}" for c in KEPT_CAPS))
    adds = [arg for cap in wanted for arg in ("--cap-add", cap)]
    drop = [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        f"--inh-caps=-all,{caps}",
        f"--ambient-caps={caps}",
        f"--bounding-set=-all,{caps}",
        "--",
    ]
    return [box[0], *adds, *box[1:]], [*drop, *inner]


def _prlimit(limits: Limits, *, nproc: bool) -> list[str]:
    argv = [
        "prlimit",
        # soft:hard — SIGXCPU at the soft limit (reported as "cpu time"), SIGKILL a second on.
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}",
        f"--as={limits.memory_bytes}",
        f"--fsize={limits.file_bytes}",
        "--core=0",
    ]
    if nproc:
        # RLIMIT_NPROC counts every process of the (real) user: for root the command gets a
        # fresh uid of its own (_as_fresh_uid), otherwise allow what runs now plus the limit.
        running = 0 if os.geteuid() == 0 else _user_process_count()
        argv.append(f"--nproc={running + limits.processes}")
    return [*argv, "--"]


def _user_process_count() -> int:
    uid, count = os.getuid(), 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                count += os.stat(f"/proc/{entry}").st_uid == uid
    return count


@contextlib.contextmanager
def _process_limit(maximum: int) -> Iterator[tuple[list[str], Path | None, list[str]]]:
    """A fresh pids cgroup the command joins before it execs (``sh`` writes its own pid)."""
    notes: list[str] = []
    group = PIDS_CGROUP / f"lsp-agent-{uuid.uuid4().hex[:12]}"
    try:
        group.mkdir()
        (group / "pids.max").write_text(f"{maximum}\n")
    except OSError:
        yield [], None, notes
        return
    try:
        join = 'echo $$ > "$0" && exec "$@"'
        yield ["sh", "-c", join, str(group / "cgroup.procs")], group, notes
    finally:
        _empty_cgroup(group)


def _empty_cgroup(group: Path) -> None:
    for _ in range(50):
        try:
            pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        except OSError:
            pids = []
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.02)


def _supervise(
    command: list[str],
    argv: list[str],
    cwd: Path,
    env: Mapping[str, str],
    limits: Limits,
    pids: Path | None,
    notes: list[str],
    cancel: threading.Event | None,
    sandboxed: bool,
) -> RunOutcome:
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise SandboxUnavailable(f"cannot start {command[0]}: {exc}") from None
    assert proc.stdout is not None
    chunks: list[bytes] = []
    size, limit = 0, None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    try:
        while True:
            remaining = limits.wall_seconds - (time.monotonic() - start)
            if remaining <= 0:
                limit = "wall time"
                break
            if cancel is not None and cancel.is_set():
                limit = "cancelled"
                break
            if not selector.select(timeout=min(remaining, 0.1)):
                continue
            data = os.read(proc.stdout.fileno(), 1 << 16)
            if not data:
                break
            take = data[: max(0, limits.output_bytes - size)]
            chunks.append(take)
            size += len(data)
            if size > limits.output_bytes:
                limit = "output size"
                break
    finally:
        selector.close()
        if limit is not None:
            _kill(proc)
        proc.stdout.close()
    code = proc.wait()
    if limit is None:
        # bwrap reports a signalled command as 128 + the signal; unsandboxed it is negative.
        number = -code if code < 0 else code - 128 if code > 128 and sandboxed else 0
        limit = _SIGNAL_LIMITS.get(number)
    if pids is not None and _pids_limit_hit(pids):
        notes.append(f"the process limit ({limits.processes}) was reached")
        limit = limit or "processes"
    output = b"".join(chunks).decode("utf-8", "replace")
    if limit is None and code != 0 and "MemoryError" in output[-4000:]:
        notes.append("the command ran out of its memory limit")
    return RunOutcome(
        argv=argv,
        exit_code=None if limit else code,
        output=output,
        duration_s=time.monotonic() - start,
        limit=limit,
        notes=notes,
    )


_SIGNAL_LIMITS = {signal.SIGXCPU: "cpu time", signal.SIGXFSZ: "file size"}


def _pids_limit_hit(group: Path) -> bool:
    try:
        events = (group / "pids.events").read_text()
    except OSError:
        return False
    return any(line.split()[-1] != "0" for line in events.splitlines() if line.startswith("max"))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # bwrap was started with --die-with-parent on its namespace init, so killing the outer
    # bwrap (and its session) takes down every process of the sandbox.
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()
