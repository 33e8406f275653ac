"""The project overview at the top of the prefix: README head, manifests, directory outline.

It depends only on those files' text and on the file set, never on the task, so it is stable
for as long as the prefix is."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import repeat
from operator import itemgetter

from lsp_agent.context.render import block, header

README_NAMES = ("README.md", "README.rst", "README.txt", "README", "readme.md")
MANIFEST_NAMES = (
    "pyproject.toml",
    "setup.cfg",
    "requirements.txt",
    "package.json",
    "Cargo.toml",
    "go.mod",
    "pom.xml",
    "build.gradle",
    "build.gradle.kts",
    "CMakeLists.txt",
    "Gemfile",
)
README_LINES = 60
MANIFEST_LINES = 80
OUTLINE_DEPTH = 3
OUTLINE_LINES = 200
OUTLINE_ROOT_FILES = 60


def overview_files(paths: Iterable[str]) -> list[str]:
    """Root-level README (the first found) and manifests, in a fixed order."""
    present = set(paths)
    chosen = [name for name in README_NAMES if name in present][:1]
    chosen += [name for name in MANIFEST_NAMES if name in present]
    return chosen


def render_overview_file(path: str, text: str) -> str:
    limit = README_LINES if path in README_NAMES else MANIFEST_LINES
    lines = text.splitlines(keepends=True)
    if len(lines) <= limit:
        return block(header(path), "".join(lines))
    note = f"first {limit} of {len(lines)} lines"
    return block(header(path, note), "".join(lines[:limit]))


def render_outline(paths: Iterable[str]) -> str:
    """Directories (to a fixed depth) with the number of files under each, plus root files."""
    # A kernel has 78k files in 5k folders: count once, in C (files at the root count under "")
    ordered = sorted(paths)
    per_folder = Counter(map(itemgetter(0), map(str.rpartition, ordered, repeat("/"))))
    root_files = (
        [path for path in ordered if not path.rpartition("/")[0]] if per_folder.pop("", 0) else []
    )
    counts: dict[str, int] = {}
    for directory, n in per_folder.items():
        parts = directory.split("/")
        for depth in range(1, min(len(parts), OUTLINE_DEPTH) + 1):
            key = "/".join(parts[:depth])
            counts[key] = counts.get(key, 0) + n
    lines = [f"{d}/ ({n} file{'s' if n != 1 else ''})" for d, n in sorted(counts.items())]
    if len(lines) > OUTLINE_LINES:
        hidden = len(lines) - OUTLINE_LINES
        lines = [*lines[:OUTLINE_LINES], f"[... {hidden} more directories]"]
    if root_files:
        shown = root_files[:OUTLINE_ROOT_FILES]
        more = len(root_files) - len(shown)
        lines.append(
            "files at the root: " + ", ".join(shown) + (f", ... {more} more" if more else "")
        )
    if not lines:
        return ""
    return "## Directory outline\n" + "\n".join(lines) + "\n\n"
