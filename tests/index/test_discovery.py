"""Discovery over real directory trees: ignore rules at every level, and every skip counted."""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

from lsp_agent.index import discovery
from lsp_agent.index.discovery import IgnoreRules, discover, read_source


def write(root: Path, rel: str, content: str | bytes = "x = 1\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def paths(root: Path, extra: tuple[str, ...] = (), max_bytes: int = 1 << 20) -> list[str]:
    return [f.path for f in discover(root, IgnoreRules(root, extra), max_bytes).files]


@pytest.fixture(autouse=True, params=["built", "scandir"])
def lister(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every walk test runs with the C listing (when built) and with its os.scandir twin."""
    if request.param == "scandir":
        monkeypatch.setattr(discovery, "list_folder", discovery._scandir_listing)
    elif discovery.list_folder is discovery._scandir_listing:
        pytest.skip("lsp_agent.index._walk is not built")
    return str(request.param)


def test_the_c_listing_equals_the_scandir_one_on_real_trees(tmp_path: Path) -> None:
    walk = pytest.importorskip("lsp_agent.index._walk")
    write(tmp_path, "file.py")
    write(tmp_path, "dir/inner.py")
    os.symlink("file.py", tmp_path / "to_file")
    os.symlink("dir", tmp_path / "to_dir")
    os.symlink("missing", tmp_path / "dangling")
    os.symlink("loop", tmp_path / "loop")
    os.mkfifo(tmp_path / "fifo")
    listing = walk.list_folder(str(tmp_path))
    assert [(name, kind) for name, kind, _, _ in listing] == [
        ("dangling", discovery.BROKEN),
        ("dir", discovery.DIR),
        ("fifo", discovery.OTHER),
        ("file.py", discovery.FILE),
        ("loop", discovery.BROKEN),
        ("to_dir", discovery.LINK_DIR),
        ("to_file", discovery.LINK_FILE),
    ]
    st = (tmp_path / "file.py").stat()
    assert listing[3][2:] == (st.st_size, st.st_mtime_ns) == listing[6][2:]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    folders = [stdlib, *(stdlib / name for name in ("email", "json", "unittest")), tmp_path]
    for folder in folders:  # names, kinds, sizes, mtimes, order: all of it
        assert walk.list_folder(str(folder)) == discovery._scandir_listing(str(folder)), folder
    with pytest.raises(FileNotFoundError, match="nowhere"):
        walk.list_folder(str(tmp_path / "nowhere"))
    with pytest.raises(NotADirectoryError):
        walk.list_folder(str(tmp_path / "file.py"))
    with pytest.raises(TypeError):
        walk.list_folder(3)


def test_nested_gitignore_applies_relative_to_its_directory(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "*.log\n/build/\n")
    write(tmp_path, "app.py")
    write(tmp_path, "app.log")
    write(tmp_path, "build/out.py")
    write(tmp_path, "src/build/kept.py")  # /build/ is anchored to the root
    write(tmp_path, "src/.gitignore", "generated/\n!keep.log\nlocal.py\n")
    write(tmp_path, "src/keep.log")  # re-included by the deeper file
    write(tmp_path, "src/other.log")
    write(tmp_path, "src/generated/g.py")
    write(tmp_path, "src/local.py")
    write(tmp_path, "local.py")  # src/.gitignore does not reach the parent
    assert paths(tmp_path) == [
        ".gitignore",
        "app.py",
        "local.py",
        "src/.gitignore",
        "src/build/kept.py",
        "src/keep.log",
    ]


def test_the_walk_reads_only_the_ignore_files_it_lists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, ".gitignore", "*.log\n")
    for folder in ("a", "a/b", "a/b/c", "d"):
        write(tmp_path, f"{folder}/x.py")
    write(tmp_path, "a/b/.gitignore", "x.py\n")
    write(tmp_path, "a/b/c/y.log")
    read: list[str] = []
    real = discovery._read_patterns
    monkeypatch.setattr(
        discovery, "_read_patterns", lambda path: read.append(path.name) or real(path)
    )
    rules = IgnoreRules(tmp_path)
    read.clear()  # .git/info/exclude, read when the rules are made
    found = [f.path for f in discover(tmp_path, rules, 1 << 20).files]
    assert found == [".gitignore", "a/b/.gitignore", "a/x.py", "d/x.py"]
    assert read == [".gitignore", ".gitignore"]  # the root's and a/b's, no failed opens
    write(tmp_path, "d/.gitignore", "x.py\n")  # created later: the watcher reloads it
    rules.load_dir("d")
    assert rules.is_ignored("d/x.py")


def test_info_exclude_and_extra_ignore_list(tmp_path: Path) -> None:
    write(tmp_path, ".git/info/exclude", "secret.py\n")
    write(tmp_path, ".git/HEAD", "ref: refs/heads/main\n")
    write(tmp_path, "secret.py")
    write(tmp_path, "vendor/lib.js", "f()\n")
    write(tmp_path, "main.py")
    write(tmp_path, "notes.md", "hi\n")
    result = discover(tmp_path, IgnoreRules(tmp_path, ("vendor/", "*.md")), 1 << 20)
    assert [f.path for f in result.files] == ["main.py"]
    assert result.skipped["ignored"] == 3  # secret.py, vendor/ (pruned whole), notes.md


def test_ignored_directories_are_pruned_not_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, ".gitignore", "node_modules/\n")
    write(tmp_path, "node_modules/.gitignore", "!*\n")  # must never be read
    for i in range(5):
        write(tmp_path, f"node_modules/pkg{i}/index.js", "f()\n")
    write(tmp_path, "index.js", "f()\n")
    listed: list[str] = []
    real_list_folder = discovery.list_folder

    def recording_list_folder(path: str):  # type: ignore[no-untyped-def]
        listed.append(os.path.relpath(path, tmp_path))
        return real_list_folder(path)

    monkeypatch.setattr(discovery, "list_folder", recording_list_folder)
    result = discover(tmp_path, IgnoreRules(tmp_path), 1 << 20)
    assert listed == ["."]
    assert [f.path for f in result.files] == [".gitignore", "index.js"]
    assert dict(result.skipped) == {"ignored": 1}


def test_negation_cannot_reinclude_below_an_ignored_directory(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "logs/\n!logs/important.py\n")
    write(tmp_path, "logs/important.py")
    assert paths(tmp_path) == [".gitignore"]


def test_is_ignored_checks_ancestors(tmp_path: Path) -> None:
    write(tmp_path, ".gitignore", "dist/\n*.tmp\n")
    write(tmp_path, "pkg/.gitignore", "cache/\n")
    rules = IgnoreRules(tmp_path)
    assert rules.is_ignored("dist/a/b.py")
    assert rules.is_ignored("pkg/cache/x.py")
    assert rules.is_ignored("pkg/a.tmp")
    assert rules.is_ignored(".git/config")
    assert not rules.is_ignored("pkg/a.py")
    assert not rules.is_ignored("cache/x.py")


def test_binary_oversized_and_non_utf8_files(tmp_path: Path) -> None:
    write(tmp_path, "image.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    write(tmp_path, "big.py", "x = 1\n" * 200)
    write(tmp_path, "latin1.py", "name = 'caf\xe9'\n".encode("latin-1"))
    write(tmp_path, "ok.py")
    result = discover(tmp_path, IgnoreRules(tmp_path), max_file_bytes=100)
    assert [f.path for f in result.files] == ["image.png", "latin1.py", "ok.py"]
    assert result.skipped["too_large"] == 1
    assert read_source(tmp_path / "image.png", 100) == "binary"
    assert read_source(tmp_path / "latin1.py", 100) == "name = 'caf\xe9'\n".encode("latin-1")
    assert read_source(tmp_path / "missing.py", 100) == "unreadable"
    # The file grew between the walk and the read: caught at read time.
    assert read_source(tmp_path / "big.py", 100) == "too_large"


def test_symlink_loop_and_outside_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    write(outside, "secret.py")
    write(root, "pkg/mod.py")
    os.symlink(root / "pkg", root / "pkg" / "again")  # pkg/again -> pkg: a loop
    os.symlink(outside, root / "elsewhere")  # a directory outside the root
    os.symlink(outside / "secret.py", root / "secret_link.py")
    os.symlink(root / "self_a", root / "self_b")  # self_a -> self_b -> self_a: ELOOP
    os.symlink(root / "self_b", root / "self_a")
    os.symlink(root / "pkg" / "mod.py", root / "alias.py")  # inside the root: kept
    result = discover(root, IgnoreRules(root), 1 << 20)
    assert [f.path for f in result.files] == ["alias.py", "pkg/mod.py"]
    assert result.skipped["symlink_loop"] == 3  # pkg/again, self_a, self_b
    assert result.skipped["outside_root"] == 2


def test_dangling_symlink_is_unreadable(tmp_path: Path) -> None:
    write(tmp_path, "ok.py")
    os.symlink(tmp_path / "gone.py", tmp_path / "dangling.py")
    result = discover(tmp_path, IgnoreRules(tmp_path), 1 << 20)
    assert [f.path for f in result.files] == ["ok.py"]
    assert dict(result.skipped) == {"unreadable": 1}


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file_is_counted_at_read_time(tmp_path: Path) -> None:
    path = write(tmp_path, "locked.py")
    path.chmod(0)
    assert read_source(path, 1 << 20) == "unreadable"


def test_order_is_sorted_and_stable(tmp_path: Path) -> None:
    for rel in ["b/z.py", "a.py", "b/a.py", "B.py", "a/b/c.py"]:
        write(tmp_path, rel)
    first = paths(tmp_path)
    assert first == sorted(first) == ["B.py", "a.py", "a/b/c.py", "b/a.py", "b/z.py"]
    assert paths(tmp_path) == first


def test_a_folder_linked_inside_the_root_is_indexed_under_its_real_path(tmp_path: Path) -> None:
    write(tmp_path, "src/lib/mod.py")
    os.symlink(tmp_path / "src" / "lib", tmp_path / "aaa_link")  # sorts before "src"
    result = discover(tmp_path, IgnoreRules(tmp_path), 1 << 20)
    assert [f.path for f in result.files] == ["src/lib/mod.py"]
    assert dict(result.skipped) == {"symlink_loop": 1}
    # A link to a folder that is not reachable otherwise is followed.
    write(tmp_path, "hidden/.keep", "")
    write(tmp_path, ".gitignore", "hidden/\n")
    write(tmp_path, "hidden/inner/x.py")
    os.symlink(tmp_path / "hidden" / "inner", tmp_path / "visible")
    result = discover(tmp_path, IgnoreRules(tmp_path), 1 << 20)
    assert [f.path for f in result.files] == [".gitignore", "src/lib/mod.py", "visible/x.py"]


def test_read_source_reads_to_the_limit_whatever_stat_says(tmp_path: Path) -> None:
    # The read is sized by the file's stat; the limit still decides, byte for byte.
    write(tmp_path, "exact.py", "x" * 100)
    write(tmp_path, "over.py", "x" * 101)
    assert read_source(tmp_path / "exact.py", 100) == b"x" * 100
    assert read_source(tmp_path / "over.py", 100) == "too_large"
    # A file whose stat says 0 bytes (procfs) is read in full all the same.
    status = Path("/proc/self/status")
    if status.exists():
        data = read_source(status, 1 << 20)
        assert isinstance(data, bytes) and b"Name:" in data and len(data) > 1
        assert read_source(status, 4) == "too_large"
