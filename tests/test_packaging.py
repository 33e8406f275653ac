"""The fixed layout keeps handlers/ at the repository root, but it must install as
lsp_agent.handlers and never as a generic top-level ``handlers`` module."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PROBE = """
import importlib.util, sys, json
import lsp_agent.handlers
print(json.dumps({
    "handlers_file": lsp_agent.handlers.__file__,
    "top_level_handlers": importlib.util.find_spec("handlers") is not None,
}))
"""


def _probe(cwd: Path, extra_path: Path | None = None) -> dict[str, object]:
    code = (
        PROBE
        if extra_path is None
        else f"import sys; sys.path.insert(0, {str(extra_path)!r})\n" + PROBE
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    import json

    return json.loads(out.stdout)


def test_the_installed_package_has_its_handlers(tmp_path: Path) -> None:
    """Editable (the checkout's handlers/) or not (a copy under site-packages), from outside
    the checkout lsp_agent.handlers imports and no top-level ``handlers`` appears."""
    result = _probe(tmp_path)
    handlers = Path(str(result["handlers_file"])).resolve()
    editable = handlers == REPO_ROOT / "handlers" / "__init__.py"
    assert editable or handlers.parts[-3:] == ("lsp_agent", "handlers", "__init__.py")
    assert result["top_level_handlers"] is False


@pytest.mark.slow
def test_wheel_contains_lsp_agent_handlers_and_no_top_level_handlers(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(REPO_ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("lsp_agent-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lsp_agent/handlers/__init__.py" in names
    assert not [n for n in names if n.startswith("handlers/")]
    assert any(n.startswith("lsp_agent/index/queries/") for n in names) or not list(
        (REPO_ROOT / "lsp_agent" / "index" / "queries").glob("*.scm")
    )

    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    result = _probe(tmp_path, extra_path=site)
    assert Path(str(result["handlers_file"])).is_relative_to(site)
    assert result["top_level_handlers"] is False
    # The checkout shadows the installed package (tests run from it; the server is started
    # with PYTHONPATH pointing at it): lsp_agent.handlers still imports, from the checkout.
    first = f"import sys; sys.path[:0] = [{str(REPO_ROOT)!r}, {str(site)!r}]\n"
    shadowed = subprocess.run(
        [sys.executable, "-S", "-c", first + PROBE],  # -S: no site, no editable finder
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    import json

    found = json.loads(shadowed.stdout)
    # (A top-level ``handlers`` is findable here only because the checkout itself is on
    # sys.path; nothing installs one, as the wheel check above shows.)
    assert Path(found["handlers_file"]).resolve() == REPO_ROOT / "handlers" / "__init__.py"
