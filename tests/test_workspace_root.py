"""The workspace root comes from the PATH arguments: git work tree, project marker, the folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lsp_agent.workspace_root import RootError, choose_root


def git_init(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def test_git_work_tree_of_the_path_not_of_the_current_folder(tmp_path: Path) -> None:
    tool = git_init(tmp_path / "tool")  # where the command runs (lsp-agent's own checkout)
    code = git_init(tmp_path / "code")
    (code / "pkg").mkdir()
    (code / "pkg" / "mod.py").write_text("x = 1\n")
    for arg in (str(code / "pkg"), str(code / "pkg" / "mod.py"), f"{code}/pkg/*.py"):
        chosen = choose_root([arg], tool)
        assert chosen.path == code.resolve()
        assert "git work tree" in chosen.reason
    # relative PATHs are relative to the current folder
    assert choose_root(["../code/pkg"], tool).path == code.resolve()
    # no PATH: the current folder is the PATH
    assert choose_root([], tool / ".").path == tool.resolve()


def test_nearest_project_marker_else_the_folder_itself(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'p'\n")
    (project / "src" / "deep" / "a.py").write_text("")
    chosen = choose_root(["src/deep/a.py"], project)
    assert chosen.path == project.resolve()
    assert "pyproject.toml" in chosen.reason
    plain = tmp_path / "plain" / "lib"
    plain.mkdir(parents=True)
    (plain / "b.py").write_text("")
    assert choose_root([str(plain)], tmp_path).path == plain.resolve()
    assert choose_root([str(plain / "b.py")], tmp_path).path == plain.resolve()


def test_paths_under_two_roots_name_both(tmp_path: Path) -> None:
    a, b = git_init(tmp_path / "a"), git_init(tmp_path / "b")
    with pytest.raises(RootError) as caught:
        choose_root([str(a), str(b)], tmp_path)
    assert str(a.resolve()) in str(caught.value) and str(b.resolve()) in str(caught.value)


def test_explicit_root_and_missing_paths(tmp_path: Path) -> None:
    assert choose_root(["x"], tmp_path, tmp_path).reason == "given as --root"
    with pytest.raises(RootError, match="--root nope: no such directory"):
        choose_root([], tmp_path, "nope")
    with pytest.raises(RootError, match=r"missing\.py: no such file or directory"):
        choose_root(["missing.py"], tmp_path)


@pytest.mark.parametrize("where", ["/", "home", "/proc", "/proc/self"])
def test_filesystem_root_home_and_system_trees_are_refused(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home-of-user"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    target = home if where == "home" else Path(where)
    for attempt in (lambda: choose_root([], target), lambda: choose_root([], home, target)):
        with pytest.raises(RootError) as caught:
            attempt()
        message = str(caught.value)
        assert "will not index" in message and "--root DIR" in message


def test_a_dotfiles_repository_at_home_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = git_init(tmp_path / "home")
    monkeypatch.setenv("HOME", str(home))
    (home / "package.json").write_text("{}")
    code = home / "code" / "thing"
    code.mkdir(parents=True)
    chosen = choose_root([str(code)], tmp_path)
    assert chosen.path == code.resolve()
