"""Once a folder is indexed, the server renders its snapshot prefix before anyone asks."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import pytest

from tests.server.conftest import CALC, make_workspace, server_env
from tests.server.lsp_helpers import start_server, stop_server

pytestmark = pytest.mark.asyncio(loop_scope="function")

STDLIB = Path(sysconfig.get_paths()["stdlib"])


async def test_the_first_request_reuses_a_prefix_rendered_after_indexing(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws", {"calc.py": CALC})
    # real code nobody here wrote, enough of it that the prefix is worth rendering early
    shutil.copytree(STDLIB / "json", root / "json", ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    sut = await start_server(root, env=server_env(tmp_path))
    try:
        await sut.wait_for(lambda: "end" in sut.progress_kinds("lsp-agent/index"), "the index")
        # No request has been made: the prefix, and the ranking under it, are on disk anyway.
        await sut.wait_for(lambda: list(cache.rglob("prefix-*.bin")), "the prefix on disk")
        assert list(cache.rglob("ranks.bin"))
        # and the reference graph, for the first focused request
        await sut.wait_for(lambda: list(cache.rglob("graph.bin")), "the graph on disk")
        manifest = await sut.client.protocol.send_request_async(
            "lspAgent/context", {"uri": sut.uri("calc.py")}
        )
        assert manifest.rebuilt is False  # the request found the prefix ready
        assert manifest.prefix_tokens > 0
        assert any(entry.path == "json/decoder.py" for entry in manifest.files)
    finally:
        await stop_server(sut)
