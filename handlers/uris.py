"""The one place where ``file://`` URIs meet the engine's root-relative POSIX paths."""

from __future__ import annotations

from pathlib import Path

from pygls.uris import from_fs_path, to_fs_path


def uri_to_path(root: Path, uri: str) -> str:
    """Root-relative POSIX path of ``uri``; ValueError for non-file URIs or paths outside root."""
    fs_path = to_fs_path(uri)
    if fs_path is None:
        raise ValueError(f"not a file URI: {uri!r}")
    resolved = Path(fs_path).resolve()
    try:
        relative = resolved.relative_to(root)
    except ValueError:
        raise ValueError(f"{fs_path} is outside the workspace root {root}") from None
    if not relative.parts:
        raise ValueError(f"{uri!r} is the workspace root, not a file")
    return relative.as_posix()


def path_to_uri(root: Path, path: str) -> str:
    uri = from_fs_path(str(root / path))
    if uri is None:  # only for values that are not paths at all
        raise ValueError(f"cannot make a URI from {path!r}")
    return uri
