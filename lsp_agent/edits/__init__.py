"""Everything edit-related, pure and deterministic; import the public names from here.

- ``blocks``: parse SEARCH/REPLACE blocks out of a model's answer (``EditBlock``);
- ``apply_blocks``: blocks -> new text down a ladder of match strategies, and ``rebase_change``;
- ``checks``: refusals wherever a block matches (lazy elision, marker-shaped lines);
- ``text``: LSP text edits in UTF-16 units, unified diffs, three-way rebase, line endings;
- ``paths``: ``safe_path``, the one inside-the-root check.
"""

from lsp_agent.edits.apply_blocks import (
    ApplyError,
    ApplyResult,
    apply_blocks,
    apply_blocks_detailed,
    rebase_change,
)
from lsp_agent.edits.blocks import DECLINE_STATEMENT, EditBlock, decline_reason, parse_edit_blocks
from lsp_agent.edits.paths import safe_path
from lsp_agent.edits.text import (
    Encoding,
    TextEdit,
    apply_text_edits,
    encoded_len,
    map_lines,
    rebase,
    text_edits,
    unified_diff,
    utf16_len,
)

__all__ = [
    "DECLINE_STATEMENT",
    "ApplyError",
    "ApplyResult",
    "EditBlock",
    "Encoding",
    "TextEdit",
    "apply_blocks",
    "apply_blocks_detailed",
    "apply_text_edits",
    "decline_reason",
    "encoded_len",
    "map_lines",
    "parse_edit_blocks",
    "rebase",
    "rebase_change",
    "safe_path",
    "text_edits",
    "unified_diff",
    "utf16_len",
]
