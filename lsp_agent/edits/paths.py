"""The one inside-the-root check, for the server, the batch applier, the agent tools and the
sandbox alike."""

from __future__ import annotations

from pathlib import Path


def safe_path(root: Path, path: str) -> Path:
    """Resolve ``path`` (relative to ``root``, or absolute) and return it when it stays inside
    the resolved root, symlinks followed. ``ValueError`` otherwise: an absolute path elsewhere,
    a ``..`` escape, a symlink pointing out, the root itself, or an empty path."""
    if not path or not path.strip() or "\x00" in path:
        raise ValueError(f"invalid path {path!r}")
    base = Path(root).resolve()
    candidate = Path(path)
    resolved = (candidate if candidate.is_absolute() else base / candidate).resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise ValueError(f"path {path!r} is outside the workspace root {str(base)!r}")
    return resolved
