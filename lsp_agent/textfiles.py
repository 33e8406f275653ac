"""Text files a user hands us (config files, linter output): UTF-8, or UTF-16 with a BOM.

Windows PowerShell's ``>`` and ``Out-File`` write UTF-16 with a byte-order mark, so a
``ruff ... > diags.json`` made there is not UTF-8; it is still plainly text and is read. Anything
else that is not UTF-8 (binary garbage, a Latin-1 file) is refused with a message naming the
file, never a traceback.
"""

from __future__ import annotations

import codecs
from pathlib import Path

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),  # the codec reads and drops the BOM itself
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class NotText(ValueError):
    """The bytes are neither UTF-8 nor UTF-16 with a BOM; the message names the file."""


def decode_text(data: bytes, name: str) -> str:
    """``data`` as text: UTF-8 (a UTF-8 BOM is dropped) or UTF-16 with a BOM."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise NotText(f"{name}: starts like {encoding} text but is not: {exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotText(
            f"{name}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
            "save it as UTF-8 (or UTF-16 with a BOM)"
        ) from None


def read_text(path: Path) -> str:
    """The file's text (see ``decode_text``); OSError as raised by the read."""
    return decode_text(path.read_bytes(), str(path))
