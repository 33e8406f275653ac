"""The git operations of a goal run: the workspace as a commit, worktrees, step commits.

Nothing here writes the user's working tree or their index: the workspace's state is captured
through a throw-away index file (``GIT_INDEX_FILE``), and every checkout is a worktree under
the run's own folder. Git's object store and worktree list are shared with the repository, so
the run's branch ``lsp-agent/<run-id>`` is visible to the user as soon as it exists.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from pathlib import Path

STEP_TRAILER = "Lsp-Agent-Step"
RUN_TRAILER = "Lsp-Agent-Run"
# The run's commits are the agent's, whoever runs it; the user's identity is not needed.
IDENTITY = {
    "GIT_AUTHOR_NAME": "lsp-agent",
    "GIT_AUTHOR_EMAIL": "lsp-agent@localhost",
    "GIT_COMMITTER_NAME": "lsp-agent",
    "GIT_COMMITTER_EMAIL": "lsp-agent@localhost",
}


# `git worktree add/remove/prune` rewrite .git/worktrees: two at once in one repository read
# each other's half-made entries ("failed to read .git/worktrees/<name>/commondir").
_WORKTREES = threading.Lock()


class GitError(Exception):
    """A git command failed; the message holds git's own words."""


def git(cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    full_env = {**os.environ, **IDENTITY, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    full_env.pop("GIT_DIR", None)
    full_env.pop("GIT_WORK_TREE", None)
    try:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise GitError("git is not installed (goal runs need git)") from None
    if check and proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(f"git {args[0]}: {message[-1] if message else f'exit {proc.returncode}'}")
    return proc.stdout


def repo_of(root: Path) -> tuple[Path, str]:
    """The repository's top folder and the root's POSIX path inside it ("" at the top)."""
    try:
        top = git(root, "rev-parse", "--show-toplevel").strip()
    except GitError:
        raise GitError(
            f"{root} is not in a git repository: a goal run works on its own branch "
            "(run `git init` and commit first)"
        ) from None
    prefix = git(root, "rev-parse", "--show-prefix").strip().rstrip("/")
    return Path(top), prefix


def head(tree: Path) -> str:
    return git(tree, "rev-parse", "HEAD").strip()


def workspace_commit(repo: Path, message: str) -> str:
    """A commit of the working tree as it is now: HEAD plus every uncommitted change and
    untracked, non-ignored file. HEAD itself when nothing is uncommitted. The user's index and
    files are not touched (a temporary index file takes the staging)."""
    try:
        parent: str | None = head(repo)
    except GitError:
        parent = None  # a repository without commits
    with tempfile.TemporaryDirectory(prefix="lsp-agent-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        if parent:
            git(repo, "read-tree", parent, env=env)
        git(repo, "add", "-A", env=env)
        tree = git(repo, "write-tree", env=env).strip()
    if parent and git(repo, "rev-parse", f"{parent}^{{tree}}").strip() == tree:
        return parent
    args = ["commit-tree", tree, "-m", message]
    if parent:
        args[2:2] = ["-p", parent]
    return git(repo, *args).strip()


def add_worktree(repo: Path, dest: Path, ref: str, *, branch: str | None = None) -> Path:
    """A worktree of ``repo`` at ``dest``: a new ``branch`` at ``ref``, an existing ``branch``
    as it is (a resumed run whose tree was deleted), or detached at ``ref``. New worktrees are
    made by ``verify.scratch.add_worktree``, the one place worktrees are created."""
    from lsp_agent.verify.scratch import ScratchError
    from lsp_agent.verify.scratch import add_worktree as create

    dest.parent.mkdir(parents=True, exist_ok=True)
    with _WORKTREES:
        if branch and git(repo, "branch", "--list", branch).strip():
            git(repo, "worktree", "add", str(dest), branch)
            return dest.resolve()
        try:
            return create(repo, dest, ref=ref, branch=branch)
        except ScratchError as exc:
            raise GitError(str(exc)) from None


def remove_worktree(repo: Path, dest: Path) -> None:
    from lsp_agent.verify.scratch import ScratchError
    from lsp_agent.verify.scratch import remove_worktree as remove

    with _WORKTREES:
        try:
            remove(repo, dest)
        except ScratchError as exc:
            raise GitError(str(exc)) from None


def prune_worktrees(repo: Path) -> None:
    with _WORKTREES:
        git(repo, "worktree", "prune", check=False)


def clean(tree: Path) -> None:
    """Back to the tree's last commit: what a step in flight wrote is dropped (our tree only)."""
    git(tree, "reset", "-q", "--hard", "HEAD")
    git(tree, "clean", "-fdq")


def commit_step(tree: Path, *, run_id: str, key: str, title: str, summary: str) -> str:
    """Commit everything in ``tree`` as the step ``key`` (an empty commit when the step changed
    nothing, so every finished step is a commit the run can find again)."""
    body = summary.strip() or title
    message = f"{title}\n\n{body}\n\n{STEP_TRAILER}: {key}\n{RUN_TRAILER}: {run_id}\n"
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "--allow-empty", "--no-verify", "-m", message)
    return head(tree)


def step_commits(tree: Path, base: str) -> dict[str, str]:
    """Step key -> commit, for the step commits between ``base`` and HEAD (the latest wins)."""
    out = git(tree, "log", "--reverse", "--format=%H%x00%B%x1e", f"{base}..HEAD")
    found: dict[str, str] = {}
    for entry in out.split("\x1e"):
        sha, _, body = entry.strip().partition("\x00")
        for line in body.splitlines():
            if line.startswith(STEP_TRAILER + ":"):
                found[line.split(":", 1)[1].strip()] = sha
    return found


def message_of(tree: Path, commit: str) -> tuple[str, str]:
    """(title, body without trailers) of a commit."""
    text = git(tree, "log", "-1", "--format=%B", commit)
    title, _, rest = text.partition("\n")
    body = [
        line
        for line in rest.splitlines()
        if not line.startswith((STEP_TRAILER + ":", RUN_TRAILER + ":"))
    ]
    return title.strip(), "\n".join(body).strip()


def diff_stat(tree: Path, old: str, new: str) -> str:
    return git(tree, "diff", "--shortstat", old, new).strip()


def changed_files(tree: Path, old: str, new: str) -> list[str]:
    out = git(tree, "diff", "--name-only", "--no-renames", old, new)
    return [line for line in out.splitlines() if line]


def file_at(tree: Path, commit: str, path: str) -> bytes | None:
    proc = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=tree, capture_output=True, check=False
    )
    return proc.stdout if proc.returncode == 0 else None


def bring_in(tree: Path, commit: str) -> bool:
    """Put ``commit`` (made on a worktree forked from an ancestor of HEAD) on top of ``tree``'s
    branch: a fast-forward when HEAD is its parent, else a cherry-pick. False on a conflict,
    with the tree back where it was."""
    before = head(tree)
    if git(tree, "rev-parse", f"{commit}^").strip() == before:
        git(tree, "merge", "-q", "--ff-only", commit)
        return True
    try:
        git(tree, "cherry-pick", "--allow-empty", "--keep-redundant-commits", commit)
    except GitError:
        git(tree, "cherry-pick", "--abort", check=False)
        git(tree, "reset", "-q", "--hard", before)
        return False
    return True
