"""Cuts never hand the model a piece of a secret the redactor cannot recognise.

A focus file larger than the budget is cut at a line boundary, so a key right at the cut is
shown whole (and redacted) or not at all. Parts that show a line without the lines above it
(signatures, diffs, a selection) withhold a value whose name or scheme is on a line not shown.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lsp_agent.config import ContextSettings
from lsp_agent.context.cutsafe import WITHHELD, guard_line
from lsp_agent.context.diffs import compact_diff
from lsp_agent.context.model import Selection
from lsp_agent.context.render import RenderCache, truncate_full
from lsp_agent.context.snapshot import SnapshotBuilder
from lsp_agent.context.tail import selection_block
from lsp_agent.context.tokens import count_tokens
from lsp_agent.index.workspace import WorkspaceIndex
from lsp_agent.redact import Redactor

KEY = "AKIAIOSFODNN7EXAMPLE"
FILLER = [f"setting_{i} = {i}  # an ordinary line of configuration\n" for i in range(300)]
MARKER = re.compile(r"truncated: first (\d+) of (\d+) lines")


def fragments(secret: str, size: int) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def assert_no_piece(text: str, secret: str) -> None:
    """No 8-character piece unless the whole secret is there, and nothing of 5 characters or
    more once redacted (the whole secret becomes a placeholder)."""
    if secret not in text:
        assert not [f for f in fragments(secret, 8) if f in text]
    redacted = Redactor(salt=b"k" * 32).redact(text)
    assert not [f for f in fragments(secret, 5) if f in redacted]


def index_of(root: Path) -> WorkspaceIndex:
    index = WorkspaceIndex(root, cache_path=None)
    index.build(jobs=1)
    return index


def shown_lines(tail: str) -> int:
    match = MARKER.search(tail)
    assert match, "the focus file should be truncated"
    return int(match.group(1))


@pytest.mark.parametrize("layout", ["own line", "end of a long line"])
def test_a_key_at_the_cut_of_a_truncated_focus_file_is_whole_or_absent(
    tmp_path: Path, layout: str
) -> None:
    line = (
        f"aws_key = '{KEY}'\n"
        if layout == "own line"
        else "total = " + " + ".join(f"part_{i}" for i in range(40)) + f"  # {KEY}\n"
    )
    lines = list(FILLER)
    lines[150] = line
    (tmp_path / "big.py").write_text("".join(lines))
    builder = SnapshotBuilder(index_of(tmp_path), ContextSettings(), state_dir=None)
    # Sweep the budget so the cut passes over the key's line: it must land right before it
    # (key hidden) and right after it (key shown) at least once.
    around = set()
    for budget in range(1500, 2600, 4):
        snap = builder.build(budget=budget, focus=["big.py"])
        assert count_tokens(snap.prefix) + count_tokens(snap.tail) <= budget
        shown = shown_lines(snap.tail)
        if shown in (150, 151):
            around.add(shown)
        assert_no_piece(snap.prefix + snap.tail, KEY)
    assert around == {150, 151}


def test_truncation_keeps_whole_lines_only() -> None:
    text = "".join(FILLER[:100]) + "x = '" + KEY * 40 + "'\n" + "".join(FILLER[100:])
    source = text.splitlines(keepends=True)
    for budget in (40, 300, 900, 1400):
        block, tokens = truncate_full("big.py", text, budget)
        assert tokens == count_tokens(block) <= budget
        body = block.splitlines(keepends=True)[1:-2]  # header, then marker and blank line
        assert body == source[: len(body)]
        assert_no_piece(block, KEY)


def test_a_minified_one_line_file_shows_no_part_of_its_key() -> None:
    text = ";".join(f"var a{i}={i}" for i in range(500)) + f";var k='{KEY}';\n"
    block, tokens = truncate_full("app.min.js", text, 200)
    assert "first 0 of 1 lines" in block and tokens <= 200
    assert_no_piece(block, KEY)


SECRET = "hunter2secret9value"
SOURCE = f'''def connect(
    host="db", password=
        "{SECRET}",
):
    return host


def safe(token="{SECRET}"):
    return token
'''


def test_signature_lines_withhold_a_value_named_on_a_line_above(tmp_path: Path) -> None:
    (tmp_path / "db.py").write_text(SOURCE)
    index = index_of(tmp_path)
    entry = index.entries()["db.py"]
    rendered = RenderCache().render(entry, "signatures", lambda: SOURCE) or ""
    # The whole-line signature keeps its secret (the redactor sees the name next to it) ...
    assert f'def safe(token="{SECRET}"):' in rendered
    # ... the continuation line, numbered and without its name, does not.
    assert f'3:         "{WITHHELD}",' in rendered
    redacted = Redactor(salt=b"k" * 32).redact(rendered)
    assert SECRET not in redacted and "«redacted:" in redacted


YAML_OLD = "service:\n  name: shop\n  api_key:\n    abc123old4567xyz\n  port: 80\n"
YAML_NEW = YAML_OLD.replace("abc123old4567xyz", "def456new8901uvw")


def test_a_diff_withholds_old_and_new_values_whose_name_is_above() -> None:
    # Shown whole, the redactor recognises both values (the name is on the line above) ...
    for text, value in ((YAML_OLD, "abc123old4567xyz"), (YAML_NEW, "def456new8901uvw")):
        assert value not in Redactor(salt=b"k" * 32).redact(text)
    # ... in a diff the +/- marks separate them from it.
    diff = compact_diff(YAML_OLD, YAML_NEW)
    assert diff == f"@@ -3,3 +3,3 @@\n   api_key:\n-    {WITHHELD}\n+    {WITHHELD}\n   port: 80\n"


def test_a_diff_without_secrets_is_unchanged() -> None:
    old = "retry_count:\n  12345678901\n"
    new = "retry_count:\n  12345678902\n"  # not a secret: the name is no secret name
    expected = "@@ -1,2 +1,2 @@\n retry_count:\n-  12345678901\n+  12345678902\n"
    assert compact_diff(old, new) == expected


def test_a_selection_starting_below_a_secret_name_withholds_the_value() -> None:
    text = "headers:\n  Authorization: Bearer\n    abcdefghijklmnop\nretries: 3\n"
    assert "abcdefghijklmnop" not in Redactor(salt=b"k" * 32).redact(text)
    block = selection_block(Selection("conf.yaml", 2, 0, 3, 5), text, 1)
    assert f"    {WITHHELD}\nretries: 3\n" in block.text
    assert block.tokens == count_tokens(block.text)
    assert "abcdefghijklmnop" not in Redactor(salt=b"k" * 32).redact(block.text)
    whole = selection_block(Selection("conf.yaml", 1, 0, 3, 5), text, 1)
    assert "Authorization: Bearer\n    abcdefghijklmnop\n" in whole.text  # name in view


def test_guard_line_leaves_self_identifying_and_ordinary_lines_alone() -> None:
    lines = ["password =", f"    '{KEY}'", "api_key:", "    compute_value(x)", "x = 1"]
    assert guard_line(lines[1], lines, 1) == lines[1]  # AKIA… is recognised on its own
    assert guard_line(lines[3], lines, 3) == lines[3]  # no digit: code, not a secret
    assert guard_line(lines[4], lines, 4) == lines[4]
    assert guard_line(lines[0], lines, 0) == lines[0]
